package runtime

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// checkID accepts what a container id may look like: it becomes a directory and a cgroup
// name, so letters, digits, '_', '.', '-', not starting with a punctuation mark.
func checkID(id string) error {
	ok := len(id) > 0 && len(id) <= 128
	for i := 0; ok && i < len(id); i++ {
		c := id[i]
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		ok = alnum || i > 0 && (c == '_' || c == '.' || c == '-')
	}
	if !ok {
		return fmt.Errorf("container id %q: %w: want letters, digits, '_', '.', '-' (at most 128)", id, ErrInvalid)
	}
	return nil
}

// LoadBundle reads and validates bundle/config.json. The returned rootfs is absolute.
func LoadBundle(bundle string) (*specs.Spec, string, error) {
	b, err := os.ReadFile(filepath.Join(bundle, "config.json"))
	if err != nil {
		return nil, "", fmt.Errorf("read bundle config: %w", err)
	}
	var s specs.Spec
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, "", fmt.Errorf("decode %s: %w: %w", filepath.Join(bundle, "config.json"), ErrInvalid, err)
	}
	if err := validateSpec(&s); err != nil {
		return nil, "", fmt.Errorf("bundle %s: %w", bundle, err)
	}
	root := s.Root.Path
	if !filepath.IsAbs(root) {
		root = filepath.Join(bundle, root)
	}
	return &s, root, nil
}

// validateSpec rejects configs this runtime cannot honour, before anything is created.
func validateSpec(s *specs.Spec) error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, a...))
	}
	if s.Root == nil || s.Root.Path == "" {
		return bad("root.path is required")
	}
	if s.Process == nil || len(s.Process.Args) == 0 {
		return bad("process.args is required")
	}
	if s.Linux == nil {
		return bad("linux section is required")
	}
	if _, err := resolveCaps(s.Process.Capabilities); err != nil {
		return err
	}
	if _, err := cloneFlags(s); err != nil {
		return err
	}
	if _, err := checkSysctls(s); err != nil {
		return err
	}
	if _, err := compileSeccomp(s); err != nil {
		return err
	}
	for _, rl := range s.Process.Rlimits {
		if _, ok := rlimitNames[rl.Type]; !ok {
			return bad("unknown rlimit %q", rl.Type)
		}
	}
	return nil
}

// nsFlags maps OCI namespace types to clone flags. The user namespace is not supported yet.
var nsFlags = map[specs.LinuxNamespaceType]uintptr{
	specs.PIDNamespace:     unix.CLONE_NEWPID,
	specs.MountNamespace:   unix.CLONE_NEWNS,
	specs.UTSNamespace:     unix.CLONE_NEWUTS,
	specs.IPCNamespace:     unix.CLONE_NEWIPC,
	specs.NetworkNamespace: unix.CLONE_NEWNET,
	specs.CgroupNamespace:  unix.CLONE_NEWCGROUP,
}

// nsPlan says which namespaces the init is cloned into and which existing ones it joins.
type nsPlan struct {
	Clone  uintptr           // namespaces created at clone time
	Join   map[string]string // OCI type -> path joined with setns by the init
	Cgroup bool              // unshare the cgroup namespace after joining the cgroup
}

func cloneFlags(s *specs.Spec) (nsPlan, error) {
	p := nsPlan{Join: map[string]string{}}
	seen := map[specs.LinuxNamespaceType]bool{}
	for _, ns := range s.Linux.Namespaces {
		f, ok := nsFlags[ns.Type]
		if !ok {
			return p, fmt.Errorf("%w: namespace %q is not supported", ErrInvalid, ns.Type)
		}
		if seen[ns.Type] {
			return p, fmt.Errorf("%w: namespace %q given twice", ErrInvalid, ns.Type)
		}
		seen[ns.Type] = true
		switch {
		case ns.Path != "" && (ns.Type == specs.PIDNamespace || ns.Type == specs.MountNamespace):
			return p, fmt.Errorf("%w: joining an existing %s namespace is not supported", ErrInvalid, ns.Type)
		case ns.Path != "":
			p.Join[string(ns.Type)] = ns.Path
		case ns.Type == specs.CgroupNamespace:
			// Unshared by the init once it sits in its cgroup, so the namespace root is the
			// container's cgroup rather than ours.
			p.Cgroup = true
		default:
			p.Clone |= f
		}
	}
	if !seen[specs.MountNamespace] || p.Clone&unix.CLONE_NEWNS == 0 {
		return p, fmt.Errorf("%w: a new mount namespace is required", ErrInvalid)
	}
	return p, nil
}

// checkSysctls accepts only namespaced sysctls, and net.* only with a network namespace of
// the container's own, as setting others would change the host.
func checkSysctls(s *specs.Spec) (map[string]string, error) {
	ownNet := false
	for _, ns := range s.Linux.Namespaces {
		if ns.Type == specs.NetworkNamespace {
			ownNet = true
		}
	}
	for k := range s.Linux.Sysctl {
		switch {
		case strings.HasPrefix(k, "net."):
			if !ownNet {
				return nil, fmt.Errorf("%w: sysctl %q needs a network namespace of the container's own", ErrInvalid, k)
			}
		case strings.HasPrefix(k, "fs.mqueue."), strings.HasPrefix(k, "kernel.shm"),
			strings.HasPrefix(k, "kernel.msg"), k == "kernel.sem", k == "kernel.domainname":
		default:
			return nil, fmt.Errorf("%w: sysctl %q is not namespaced", ErrInvalid, k)
		}
		if strings.Contains(k, "/") || strings.Contains(k, "..") {
			return nil, fmt.Errorf("%w: sysctl %q", ErrInvalid, k)
		}
	}
	return s.Linux.Sysctl, nil
}

var rlimitNames = map[string]int{
	"RLIMIT_AS": unix.RLIMIT_AS, "RLIMIT_CORE": unix.RLIMIT_CORE, "RLIMIT_CPU": unix.RLIMIT_CPU,
	"RLIMIT_DATA": unix.RLIMIT_DATA, "RLIMIT_FSIZE": unix.RLIMIT_FSIZE, "RLIMIT_LOCKS": unix.RLIMIT_LOCKS,
	"RLIMIT_MEMLOCK": unix.RLIMIT_MEMLOCK, "RLIMIT_MSGQUEUE": unix.RLIMIT_MSGQUEUE,
	"RLIMIT_NICE": unix.RLIMIT_NICE, "RLIMIT_NOFILE": unix.RLIMIT_NOFILE, "RLIMIT_NPROC": unix.RLIMIT_NPROC,
	"RLIMIT_RSS": unix.RLIMIT_RSS, "RLIMIT_RTPRIO": unix.RLIMIT_RTPRIO, "RLIMIT_RTTIME": unix.RLIMIT_RTTIME,
	"RLIMIT_SIGPENDING": unix.RLIMIT_SIGPENDING, "RLIMIT_STACK": unix.RLIMIT_STACK,
}

// defaultDevices are the device nodes every container gets in its /dev (and may use, through
// the device cgroup), as in the OCI runtime spec's default devices.
var defaultDevices = []specs.LinuxDevice{
	{Path: "/dev/null", Type: "c", Major: 1, Minor: 3},
	{Path: "/dev/zero", Type: "c", Major: 1, Minor: 5},
	{Path: "/dev/full", Type: "c", Major: 1, Minor: 7},
	{Path: "/dev/random", Type: "c", Major: 1, Minor: 8},
	{Path: "/dev/urandom", Type: "c", Major: 1, Minor: 9},
	{Path: "/dev/tty", Type: "c", Major: 5, Minor: 0},
}

// Resources returns the cgroup resources to apply for s: the config's limits, with the devices
// the config creates added to its device allowlist. The cgroup driver puts the allowlist
// between "deny all" and the default devices.
func Resources(s *specs.Spec) *specs.LinuxResources {
	var r specs.LinuxResources
	if s.Linux != nil && s.Linux.Resources != nil {
		r = *s.Linux.Resources
	}
	r.Devices = append([]specs.LinuxDeviceCgroup(nil), r.Devices...)
	if s.Linux != nil {
		for _, d := range s.Linux.Devices {
			typ := d.Type
			if typ == "u" {
				typ = "c"
			}
			major, minor := d.Major, d.Minor
			r.Devices = append(r.Devices, specs.LinuxDeviceCgroup{Allow: true, Type: typ, Major: &major, Minor: &minor, Access: "rwm"})
		}
	}
	return &r
}
