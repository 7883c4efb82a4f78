package runtime

import (
	"fmt"
	"path"
	"path/filepath"
	"strings"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// The rootfs is prepared in two halves. planRootfs (here, pure) turns a config into an ordered
// list of steps; the container init (rootfs_linux.go) carries the steps out, resolving every
// target inside the rootfs at the moment it is used.

// stepKind is what one rootfs step does.
type stepKind int

const (
	stepMount   stepKind = iota // mount Source on Target
	stepDevice                  // mknod Target
	stepSymlink                 // symlink Target -> Source
)

func (k stepKind) String() string {
	switch k {
	case stepMount:
		return "mount"
	case stepDevice:
		return "mknod"
	case stepSymlink:
		return "symlink"
	}
	return fmt.Sprintf("step(%d)", int(k))
}

// step is one thing done to the rootfs before pivot_root. Target is a path inside the
// container; Source is a host path for bind mounts, a link target for symlinks.
type step struct {
	Kind   stepKind `json:"kind"`
	Source string   `json:"source,omitempty"`
	Target string   `json:"target"`
	FSType string   `json:"fstype,omitempty"`
	Flags  uintptr  `json:"flags,omitempty"`
	Data   string   `json:"data,omitempty"`
	// Propagation flags (MS_PRIVATE, MS_SLAVE, ...) applied after the mount, in order.
	Propagation []uintptr `json:"propagation,omitempty"`
	// Remount: a bind mount whose flags (ro, nosuid, ...) need a second, remounting call.
	Remount bool `json:"remount,omitempty"`
	// Device node fields.
	DevType        uint32 `json:"devType,omitempty"`
	Major, Minor   int64  `json:",omitempty"`
	Mode, UID, GID uint32 `json:",omitempty"`
}

func (s step) String() string {
	switch s.Kind {
	case stepMount:
		return fmt.Sprintf("mount %s", s.Target)
	case stepDevice:
		return fmt.Sprintf("mknod %s", s.Target)
	default:
		return fmt.Sprintf("symlink %s", s.Target)
	}
}

// rootfsPlan is everything done to the container's filesystem view, in order.
type rootfsPlan struct {
	Rootfs       string   `json:"rootfs"`      // host path of the rootfs
	Propagation  uintptr  `json:"propagation"` // applied recursively to / first
	Steps        []step   `json:"steps"`       // before pivot_root
	Masked       []string `json:"masked"`      // after pivot_root
	ReadOnly     []string `json:"readonly"`    // after pivot_root
	ReadOnlyRoot bool     `json:"readonlyRoot"`
}

// OCI default masked and read-only paths, used when the config gives none (nil, not empty).
var (
	DefaultMaskedPaths = []string{
		"/proc/acpi", "/proc/asound", "/proc/interrupts", "/proc/kcore", "/proc/keys",
		"/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
		"/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap",
	}
	DefaultReadonlyPaths = []string{
		"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
	}
)

// defaultMounts are the kernel filesystems every container gets unless the config mounts
// something at the same destination.
var defaultMounts = []specs.Mount{
	{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
	{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
	{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
	{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
	{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
	{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
}

// planRootfs computes the rootfs plan for s. bundle resolves relative bind sources; console,
// when not empty, is the host path of the pty slave bound to /dev/console.
func planRootfs(s *specs.Spec, rootfs, bundle, console string) (*rootfsPlan, error) {
	p := &rootfsPlan{Rootfs: rootfs, Propagation: unix.MS_SLAVE | unix.MS_REC}
	if s.Linux.RootfsPropagation != "" {
		f, ok := propagationFlags[s.Linux.RootfsPropagation]
		if !ok {
			return nil, fmt.Errorf("%w: rootfsPropagation %q", ErrInvalid, s.Linux.RootfsPropagation)
		}
		p.Propagation = f
	}
	if s.Root != nil {
		p.ReadOnlyRoot = s.Root.Readonly
	}
	given := map[string]bool{}
	for _, m := range s.Mounts {
		given[path.Clean(m.Destination)] = true
	}
	var mounts []specs.Mount
	for _, m := range defaultMounts {
		if !given[m.Destination] {
			mounts = append(mounts, m)
		}
	}
	mounts = append(mounts, s.Mounts...)
	devTmpfs := false
	for _, m := range mounts {
		st, err := mountStep(m, bundle)
		if err != nil {
			return nil, err
		}
		if st.Target == "/dev" && st.FSType == "tmpfs" {
			devTmpfs = true
		}
		p.Steps = append(p.Steps, st)
	}
	// Device nodes only go into a /dev that is ours (a fresh tmpfs); a bind-mounted /dev is
	// used as given.
	devices := append([]specs.LinuxDevice(nil), s.Linux.Devices...)
	if devTmpfs {
		have := map[string]bool{}
		for _, d := range devices {
			have[path.Clean(d.Path)] = true
		}
		for _, d := range defaultDevices {
			if !have[d.Path] {
				devices = append(devices, d)
			}
		}
	}
	for _, d := range devices {
		st, err := deviceStep(d)
		if err != nil {
			return nil, err
		}
		p.Steps = append(p.Steps, st)
	}
	if devTmpfs {
		for _, l := range [][2]string{
			{"/proc/self/fd", "/dev/fd"}, {"/proc/self/fd/0", "/dev/stdin"},
			{"/proc/self/fd/1", "/dev/stdout"}, {"/proc/self/fd/2", "/dev/stderr"},
			{"pts/ptmx", "/dev/ptmx"},
		} {
			p.Steps = append(p.Steps, step{Kind: stepSymlink, Source: l[0], Target: l[1]})
		}
	}
	if console != "" {
		p.Steps = append(p.Steps, step{Kind: stepMount, Source: console, Target: "/dev/console", Flags: unix.MS_BIND})
	}
	p.Masked = s.Linux.MaskedPaths
	if p.Masked == nil {
		p.Masked = DefaultMaskedPaths
	}
	p.ReadOnly = s.Linux.ReadonlyPaths
	if p.ReadOnly == nil {
		p.ReadOnly = DefaultReadonlyPaths
	}
	for _, l := range [][]string{p.Masked, p.ReadOnly} {
		for _, q := range l {
			if !path.IsAbs(q) {
				return nil, fmt.Errorf("%w: masked/readonly path %q is not absolute", ErrInvalid, q)
			}
		}
	}
	return p, nil
}

var mountFlags = map[string]struct {
	clear bool
	flag  uintptr
}{
	"ro": {false, unix.MS_RDONLY}, "rw": {true, unix.MS_RDONLY},
	"nosuid": {false, unix.MS_NOSUID}, "suid": {true, unix.MS_NOSUID},
	"nodev": {false, unix.MS_NODEV}, "dev": {true, unix.MS_NODEV},
	"noexec": {false, unix.MS_NOEXEC}, "exec": {true, unix.MS_NOEXEC},
	"sync": {false, unix.MS_SYNCHRONOUS}, "async": {true, unix.MS_SYNCHRONOUS},
	"dirsync": {false, unix.MS_DIRSYNC}, "remount": {false, unix.MS_REMOUNT},
	"mand": {false, unix.MS_MANDLOCK}, "nomand": {true, unix.MS_MANDLOCK},
	"atime": {true, unix.MS_NOATIME}, "noatime": {false, unix.MS_NOATIME},
	"diratime": {true, unix.MS_NODIRATIME}, "nodiratime": {false, unix.MS_NODIRATIME},
	"relatime": {false, unix.MS_RELATIME}, "norelatime": {true, unix.MS_RELATIME},
	"strictatime": {false, unix.MS_STRICTATIME}, "nostrictatime": {true, unix.MS_STRICTATIME},
	"bind": {false, unix.MS_BIND}, "rbind": {false, unix.MS_BIND | unix.MS_REC},
}

var propagationFlags = map[string]uintptr{
	"private": unix.MS_PRIVATE, "rprivate": unix.MS_PRIVATE | unix.MS_REC,
	"shared": unix.MS_SHARED, "rshared": unix.MS_SHARED | unix.MS_REC,
	"slave": unix.MS_SLAVE, "rslave": unix.MS_SLAVE | unix.MS_REC,
	"unbindable": unix.MS_UNBINDABLE, "runbindable": unix.MS_UNBINDABLE | unix.MS_REC,
}

// mountStep turns one OCI mount into a step: option words become flags, propagation and
// filesystem data.
func mountStep(m specs.Mount, bundle string) (step, error) {
	if !path.IsAbs(m.Destination) {
		return step{}, fmt.Errorf("%w: mount destination %q is not absolute", ErrInvalid, m.Destination)
	}
	st := step{Kind: stepMount, Source: m.Source, Target: path.Clean(m.Destination), FSType: m.Type}
	var data []string
	for _, o := range m.Options {
		if f, ok := mountFlags[o]; ok {
			if f.clear {
				st.Flags &^= f.flag
			} else {
				st.Flags |= f.flag
			}
			continue
		}
		if f, ok := propagationFlags[o]; ok {
			st.Propagation = append(st.Propagation, f)
			continue
		}
		if o == "tmpcopyup" {
			continue // a podman/crun extension we do not implement; harmless to skip
		}
		data = append(data, o)
	}
	st.Data = strings.Join(data, ",")
	if m.Type == "bind" {
		st.Flags |= unix.MS_BIND
		st.FSType = ""
	}
	if st.Flags&unix.MS_BIND != 0 {
		st.FSType = ""
		if st.Source == "" {
			return step{}, fmt.Errorf("%w: bind mount on %q has no source", ErrInvalid, m.Destination)
		}
		if !filepath.IsAbs(st.Source) {
			st.Source = filepath.Join(bundle, st.Source)
		}
		// A bind mount ignores every flag but MS_BIND|MS_REC on the first call.
		st.Remount = st.Flags&^(unix.MS_BIND|unix.MS_REC|unix.MS_REMOUNT) != 0
	}
	return st, nil
}

func deviceStep(d specs.LinuxDevice) (step, error) {
	if !path.IsAbs(d.Path) || !strings.HasPrefix(path.Clean(d.Path), "/dev/") {
		return step{}, fmt.Errorf("%w: device path %q must be under /dev", ErrInvalid, d.Path)
	}
	st := step{Kind: stepDevice, Target: path.Clean(d.Path), Major: d.Major, Minor: d.Minor, Mode: 0o666}
	switch d.Type {
	case "c", "u":
		st.DevType = unix.S_IFCHR
	case "b":
		st.DevType = unix.S_IFBLK
	case "p":
		st.DevType = unix.S_IFIFO
	default:
		return step{}, fmt.Errorf("%w: device %q has type %q", ErrInvalid, d.Path, d.Type)
	}
	if d.FileMode != nil {
		st.Mode = uint32(*d.FileMode & 0o7777)
	}
	if d.UID != nil {
		st.UID = *d.UID
	}
	if d.GID != nil {
		st.GID = *d.GID
	}
	return st, nil
}
