package volumes

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/stackrun/stack/spec"
)

// LabelAllowHostMount, set to "true" on a service, allows bind mounts of host paths that are
// refused otherwise: the host's /, /proc (and anything in it), /sys, /dev, and the state or run
// root (or anything inside or above them). The prefix is the one of the engine's labels.
const LabelAllowHostMount = "io.stackrun.allow-host-mount"

// Labels of an anonymous volume: the container it belongs to and where it is mounted.
const (
	LabelContainer = "io.stackrun.container"
	LabelTarget    = "io.stackrun.target"
)

// Propagation modes accepted for bind mounts; rprivate is the default, as in Docker.
var propagations = map[string]bool{
	"private": true, "rprivate": true, "shared": true, "rshared": true, "slave": true, "rslave": true,
}

// PlanOptions is what Plan needs besides the mounts. Plan does no I/O: everything it needs to
// know about the host comes in here.
type PlanOptions struct {
	Project    string
	Container  string // container name; anonymous volumes are named from it and the target
	ProjectDir string // relative bind sources are resolved against it (absolute)
	HomeDir    string // `~` in bind sources expands to it; empty makes such a source an error
	StateRoot  string // named volumes live in <StateRoot>/volumes; binds of it are refused
	RunRoot    string // binds of it are refused too (empty: not checked)
	// Volumes are the stack's top-level volumes by key (spec.Stack.Volumes): actual names,
	// external, labels.
	Volumes map[string]*spec.Volume
	// AllowHostMounts lifts the refusal of dangerous bind sources (LabelAllowHostMount).
	AllowHostMounts bool
}

// Planned is one mount of a container, described before anything on the host is touched.
type Planned struct {
	Type spec.MountType
	// Mount is the OCI mount the runtime receives. For a bind its Source is the path as planned;
	// Prepare replaces it with the path after resolving host symlinks.
	Mount specs.Mount
	// Volume is the volume to ensure (volume mounts only).
	Volume *Spec
	// NoCopy turns copy-up off for this mount (volume mounts only).
	NoCopy bool
	// CreateSource makes Prepare create a missing bind source directory, as Compose does for the
	// short syntax and for create_host_path; otherwise a missing source is an error.
	CreateSource bool
	// Protected are the host paths a bind source must not be, be inside or be above (besides /,
	// /proc, /sys and /dev); Prepare checks them again after resolving symlinks. Empty when
	// AllowHost is set.
	Protected []string
	// Confine is set for a bind source inside the project directory (the directory): the source
	// must still be inside it after host symlinks are resolved. A container that can write to a
	// bind-mounted project directory could otherwise plant a symlink there (./shared/sub -> /etc)
	// and send another container's bind mount anywhere on the host. Empty when AllowHost is set.
	Confine   string
	AllowHost bool
}

// PlanService plans the mounts of one container of svc, filling Project, ProjectDir, Volumes and
// AllowHostMounts (from LabelAllowHostMount) in o from the stack and the service.
func PlanService(st *spec.Stack, svc *spec.Service, o PlanOptions) ([]Planned, error) {
	o.Project = st.Name
	o.ProjectDir = st.WorkingDir
	o.Volumes = st.Volumes
	o.AllowHostMounts = o.AllowHostMounts || AllowHostMounts(svc.Labels)
	return Plan(svc.Mounts, o)
}

// AllowHostMounts reports whether labels carry LabelAllowHostMount=true.
func AllowHostMounts(labels map[string]string) bool {
	v, err := strconv.ParseBool(labels[LabelAllowHostMount])
	return err == nil && v
}

// Plan turns a service's mounts into the mounts of one container: OCI mounts with their options,
// the volumes to ensure, the bind sources to create or check. It does no I/O. Mounts are ordered
// so that a mount comes after any mount of a parent directory (stable otherwise). Every problem
// is reported, joined.
func Plan(mounts []spec.Mount, o PlanOptions) ([]Planned, error) {
	var (
		out     []Planned
		errs    []error
		targets = map[string]bool{}
	)
	for i, m := range mounts {
		p, err := planOne(m, o)
		if err != nil {
			errs = append(errs, fmt.Errorf("mount %d (%s -> %s): %w", i+1, describeSource(m), m.Target, err))
			continue
		}
		if targets[p.Mount.Destination] {
			errs = append(errs, fmt.Errorf("mount %d (%s -> %s): %w: duplicate mount target %s", i+1, describeSource(m), m.Target, ErrInvalid, p.Mount.Destination))
			continue
		}
		targets[p.Mount.Destination] = true
		out = append(out, p)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	sort.SliceStable(out, func(i, j int) bool { return depth(out[i].Mount.Destination) < depth(out[j].Mount.Destination) })
	return out, nil
}

func describeSource(m spec.Mount) string {
	switch {
	case m.Type == spec.MountTmpfs:
		return "tmpfs"
	case m.Source == "":
		return string(m.Type)
	default:
		return m.Source
	}
}

func depth(p string) int { return strings.Count(p, "/") }

func planOne(m spec.Mount, o PlanOptions) (Planned, error) {
	dest, err := cleanTarget(m.Target)
	if err != nil {
		return Planned{}, err
	}
	switch m.Type {
	case spec.MountVolume:
		return planVolume(m, dest, o)
	case spec.MountBind:
		return planBind(m, dest, o)
	case spec.MountTmpfs:
		return planTmpfs(m, dest)
	default:
		return Planned{}, fmt.Errorf("%w: mount type %q is not supported (volume, bind, tmpfs)", ErrInvalid, m.Type)
	}
}

func cleanTarget(t string) (string, error) {
	if t == "" {
		return "", fmt.Errorf("%w: empty mount target", ErrInvalid)
	}
	if !filepath.IsAbs(t) {
		return "", fmt.Errorf("%w: mount target %q must be an absolute path", ErrInvalid, t)
	}
	c := filepath.Clean(t)
	if c == "/" {
		return "", fmt.Errorf("%w: cannot mount over the container's /", ErrInvalid)
	}
	return c, nil
}

func planVolume(m spec.Mount, dest string, o PlanOptions) (Planned, error) {
	var sp Spec
	if m.Source == "" {
		if o.Container == "" {
			return Planned{}, fmt.Errorf("%w: anonymous volume needs the container name", ErrInvalid)
		}
		sp = Spec{
			Name:      AnonymousName(o.Project, o.Container, dest),
			Project:   o.Project,
			Anonymous: true,
			Labels:    map[string]string{LabelContainer: o.Container, LabelTarget: dest},
		}
	} else {
		v := o.Volumes[m.Source]
		if v == nil {
			return Planned{}, fmt.Errorf("%w: volume %q is not declared in the top-level volumes", ErrInvalid, m.Source)
		}
		vv := *v
		vv.Key = m.Source
		sp = SpecFor(o.Project, &vv)
		if d := v.Driver; d != "" && d != DriverLocal {
			return Planned{}, fmt.Errorf("%w: volume %q uses driver %q; only %q is supported", ErrInvalid, m.Source, d, DriverLocal)
		}
	}
	if err := ValidateName(sp.Name); err != nil {
		return Planned{}, err
	}
	if o.StateRoot == "" {
		return Planned{}, fmt.Errorf("%w: no state root to keep volume %q in", ErrInvalid, sp.Name)
	}
	opts := []string{"rbind", "rprivate"}
	if m.ReadOnly {
		opts = append(opts, "ro")
	}
	return Planned{
		Type: spec.MountVolume,
		Mount: specs.Mount{
			Destination: dest,
			Type:        "bind",
			Source:      filepath.Join(o.StateRoot, Dir, sp.Name, dataDir),
			Options:     opts,
		},
		Volume: &sp,
		NoCopy: m.NoCopy,
	}, nil
}

// AnonymousName names the anonymous volume at target of a container: derived from project,
// container name and target, so that a recreated container gets its data back (as Compose
// carries anonymous volumes over on recreate) and two replicas get two volumes.
func AnonymousName(project, container, target string) string {
	sum := sha256.Sum256([]byte("stack-anonymous-volume\x00" + project + "\x00" + container + "\x00" + target))
	return hex.EncodeToString(sum[:])
}

func planBind(m spec.Mount, dest string, o PlanOptions) (Planned, error) {
	src, err := bindSource(m.Source, o)
	if err != nil {
		return Planned{}, err
	}
	prot := protectedRoots(o)
	if !o.AllowHostMounts {
		if err := checkHostSource(src, prot); err != nil {
			return Planned{}, err
		}
	}
	prop := m.Propagation
	if prop == "" {
		prop = "rprivate"
	}
	if !propagations[prop] {
		return Planned{}, fmt.Errorf("%w: bind propagation %q (want one of private, rprivate, shared, rshared, slave, rslave)", ErrInvalid, m.Propagation)
	}
	opts := []string{"rbind", prop}
	if m.ReadOnly {
		opts = append(opts, "ro")
	}
	p := Planned{
		Type:         spec.MountBind,
		Mount:        specs.Mount{Destination: dest, Type: "bind", Source: src, Options: opts},
		CreateSource: m.CreateHostPath,
		AllowHost:    o.AllowHostMounts,
	}
	if !o.AllowHostMounts {
		p.Protected = prot
		if pd := filepath.Clean(o.ProjectDir); filepath.IsAbs(o.ProjectDir) && pd != "/" && within(pd, src) {
			p.Confine = pd
		}
	}
	return p, nil
}

// bindSource makes a bind source absolute: `~` and `~/...` expand to the home directory, a
// relative path is taken relative to the project directory (as Compose does; it may lead out of
// it with "..", Compose allows that too).
func bindSource(s string, o PlanOptions) (string, error) {
	if s == "" {
		return "", fmt.Errorf("%w: bind mount without a source", ErrInvalid)
	}
	if s == "~" || strings.HasPrefix(s, "~/") {
		if o.HomeDir == "" {
			return "", fmt.Errorf("%w: bind source %q: no home directory to expand ~", ErrInvalid, s)
		}
		s = filepath.Join(o.HomeDir, strings.TrimPrefix(s, "~"))
	} else if strings.HasPrefix(s, "~") {
		return "", fmt.Errorf("%w: bind source %q: ~user is not supported, only ~ and ~/", ErrInvalid, s)
	}
	if !filepath.IsAbs(s) {
		if !filepath.IsAbs(o.ProjectDir) {
			return "", fmt.Errorf("%w: relative bind source %q needs an absolute project directory (got %q)", ErrInvalid, s, o.ProjectDir)
		}
		s = filepath.Join(o.ProjectDir, s)
	}
	return filepath.Clean(s), nil
}

func protectedRoots(o PlanOptions) []string {
	var out []string
	for _, r := range []string{o.StateRoot, o.RunRoot} {
		if r != "" && filepath.IsAbs(r) {
			out = append(out, filepath.Clean(r))
		}
	}
	return out
}

// checkHostSource refuses bind sources that hand the container the host: /, /proc and anything
// in it (/proc/1/root is the host's /), /sys and /dev themselves, and the state and run roots,
// anything in them (other containers' rootfs and records) or above them. src must be clean and
// absolute.
func checkHostSource(src string, protected []string) error {
	refuse := func(what string) error {
		return fmt.Errorf("%w: bind source %s is %s; to mount it anyway, set the label %s=true on the service",
			ErrRefused, src, what, LabelAllowHostMount)
	}
	switch {
	case src == "/":
		return refuse("the host's root directory")
	case within("/proc", src):
		return refuse("the host's /proc or inside it")
	case src == "/sys" || src == "/dev":
		return refuse("the host's " + src)
	}
	for _, r := range protected {
		switch {
		case within(r, src):
			return refuse("stack's state directory " + r + " or inside it")
		case within(src, r):
			return refuse("a parent of stack's state directory " + r)
		}
	}
	return nil
}

func planTmpfs(m spec.Mount, dest string) (Planned, error) {
	opts, err := tmpfsOptions(m.ReadOnly, m.TmpfsSize, m.TmpfsMode, m.Options)
	if err != nil {
		return Planned{}, err
	}
	return Planned{
		Type:  spec.MountTmpfs,
		Mount: specs.Mount{Destination: dest, Type: "tmpfs", Source: "tmpfs", Options: opts},
	}, nil
}

// tmpfsFlagOpposites maps each flag a tmpfs short syntax may give to the default it cancels.
var tmpfsFlagOpposites = map[string]string{
	"exec": "noexec", "noexec": "exec", "suid": "nosuid", "nosuid": "suid", "dev": "nodev", "nodev": "dev",
	"ro": "rw", "rw": "ro", "atime": "noatime", "noatime": "atime", "diratime": "nodiratime", "nodiratime": "diratime",
}

// tmpfsOptions are the mount options of a tmpfs: Docker's defaults (no set-uid programs, no
// devices, no executables), then the flags given (extra: exec lifts noexec, and so on; uid= and
// gid= pass through), then size= and mode=.
func tmpfsOptions(readOnly bool, size int64, mode uint32, extra []string) ([]string, error) {
	opts := []string{"nosuid", "nodev", "noexec"}
	if readOnly {
		opts = append(opts, "ro")
	}
	for _, o := range extra {
		name, _, _ := strings.Cut(o, "=")
		switch {
		case tmpfsFlagOpposites[o] != "":
			opts = slices.DeleteFunc(opts, func(x string) bool { return x == tmpfsFlagOpposites[o] || x == o })
			if o != "rw" {
				opts = append(opts, o)
			}
		case name == "uid" || name == "gid":
			opts = append(opts, o)
		default:
			return nil, fmt.Errorf("%w: tmpfs option %q", ErrInvalid, o)
		}
	}
	if size < 0 {
		return nil, fmt.Errorf("%w: tmpfs size %d", ErrInvalid, size)
	}
	if size > 0 {
		opts = append(opts, "size="+strconv.FormatInt(size, 10))
	}
	if mode&^0o7777 != 0 {
		return nil, fmt.Errorf("%w: tmpfs mode %o", ErrInvalid, mode)
	}
	if mode != 0 {
		opts = append(opts, "mode="+strconv.FormatUint(uint64(mode), 8))
	}
	return opts, nil
}
