package local

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/stackrun/stack/engine"
	"github.com/stackrun/stack/runtime/cgroups"
	"github.com/stackrun/stack/runtime/monitor"
	"github.com/stackrun/stack/spec"
)

// ContainerDir is the directory of container id under the state root (bundle, rootfs mount,
// upper dir, monitor records).
func (h *Host) ContainerDir(id string) string { return h.containerDir(id) }

// Rootfs is the mount point of container id's overlay rootfs (mounted while it exists).
func (h *Host) Rootfs(id string) string { return filepath.Join(h.containerDir(id), "rootfs") }

// UpperDir is container id's own layer: every change it made to its image's files.
func (h *Host) UpperDir(id string) string { return filepath.Join(h.containerDir(id), "upper") }

// NetnsPath is the bind-mounted network namespace of container id.
func (h *Host) NetnsPath(id string) string { return h.netnsPath(id) }

// ImageID is the id of the image container id was created from.
func (h *Host) ImageID(id string) (string, error) {
	var rec launchRecord
	if err := readJSON(filepath.Join(h.containerDir(id), "local.json"), &rec); err != nil {
		return "", err
	}
	return rec.ImageID, nil
}

// ContainerInfo is everything stack knows about one container, for `stack inspect` (JSON,
// version 1). Times are UTC; fields that do not apply are omitted.
type ContainerInfo struct {
	ID          string    `json:"id"`
	Name        string    `json:"name"`
	Project     string    `json:"project"`
	Service     string    `json:"service"`
	Number      int       `json:"number"`
	OneOff      bool      `json:"one_off,omitempty"`
	Image       string    `json:"image"`
	ImageID     string    `json:"image_id,omitempty"`
	ImageDigest string    `json:"image_digest,omitempty"`
	ConfigHash  string    `json:"config_hash"`
	Created     time.Time `json:"created"`
	// Labels are the container's labels (project, service, number, config hash, one-off).
	Labels map[string]string `json:"labels,omitempty"`
	// Config is the full resolved service the container was created from.
	Config *spec.Service `json:"config,omitempty"`
	State  StateInfo     `json:"state"`
	// Process is what runs as the container's init: argv, env, cwd, user.
	Process *ProcessInfo `json:"process,omitempty"`
	Mounts  []MountInfo  `json:"mounts"`
	// Networks are the container's interfaces, sorted by network name.
	Networks []NetworkInfo `json:"networks"`
	Ports    []string      `json:"ports,omitempty"`
	// Cgroup is the container's cgroup path relative to the cgroup of the stack process that
	// created it; CgroupPaths maps each controller to its absolute directory ("" for v2).
	Cgroup      string            `json:"cgroup,omitempty"`
	CgroupPaths map[string]string `json:"cgroup_paths,omitempty"`
	MonitorPid  int               `json:"monitor_pid,omitempty"`
	LogPath     string            `json:"log_path"`
	Bundle      string            `json:"bundle"`
	Rootfs      string            `json:"rootfs"`
	UpperDir    string            `json:"upper_dir"`
	NetNS       string            `json:"netns,omitempty"`
}

// StateInfo is the live state of a container: the monitor's record checked against the
// system (see monitor.Inspect).
type StateInfo struct {
	// Status is created, running, restarting, exited, stopped or unsupervised.
	Status       string               `json:"status"`
	Running      bool                 `json:"running"`
	Pid          int                  `json:"pid,omitempty"`
	ExitCode     int                  `json:"exit_code"`
	Signal       int                  `json:"signal,omitempty"`
	OOMKilled    bool                 `json:"oom_killed"`
	StartedAt    time.Time            `json:"started_at,omitzero"`
	FinishedAt   time.Time            `json:"finished_at,omitzero"`
	RestartCount int                  `json:"restart_count"`
	Health       *monitor.HealthState `json:"health,omitempty"`
	Error        string               `json:"error,omitempty"`
}

// ProcessInfo is the container's init process as configured.
type ProcessInfo struct {
	Args []string `json:"args"`
	Env  []string `json:"env,omitempty"`
	Cwd  string   `json:"cwd"`
	UID  uint32   `json:"uid"`
	GID  uint32   `json:"gid"`
}

// MountInfo is one mount of the container's OCI config.
type MountInfo struct {
	Type        string   `json:"type"`
	Source      string   `json:"source,omitempty"`
	Destination string   `json:"destination"`
	Options     []string `json:"options,omitempty"`
}

// NetworkInfo is the container's interface on one network.
type NetworkInfo struct {
	Network string   `json:"network"`
	IfName  string   `json:"ifname"`
	IPv4    string   `json:"ipv4"`
	MAC     string   `json:"mac,omitempty"`
	Gateway string   `json:"gateway,omitempty"`
	Aliases []string `json:"aliases,omitempty"`
}

// Inspect gathers what the records and the live system say about the container of rec.
func (h *Host) Inspect(ctx context.Context, rec *engine.Record) (*ContainerInfo, error) {
	id := rec.ID
	ci := &ContainerInfo{
		ID: id, Name: rec.Name, Project: rec.Project, Service: rec.Service, Number: rec.Number,
		OneOff: rec.Labels[engine.LabelOneOff] != "", Image: rec.Image, ImageDigest: rec.ImageDigest,
		ConfigHash: rec.Hash, Created: rec.Created.UTC(), Labels: rec.Labels, Config: rec.Config,
		LogPath: h.LogPath(id), Bundle: h.containerDir(id), Rootfs: h.Rootfs(id), UpperDir: h.UpperDir(id),
		Mounts: []MountInfo{}, Networks: []NetworkInfo{},
	}
	ci.ImageID, _ = h.ImageID(id)
	if _, err := os.Stat(h.netnsPath(id)); err == nil {
		ci.NetNS = h.netnsPath(id)
	}
	ci.State.Status = "created"
	st, err := h.Status(id)
	switch {
	case err == nil:
		ci.State = stateInfo(st)
		if st.State != monitor.StateExited && st.State != monitor.StateStopped && !st.Unsupervised {
			ci.MonitorPid = st.MonitorPid
		}
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, monitor.ErrNoRecord):
	default:
		return nil, err
	}
	var cfg specs.Spec
	if err := readJSON(filepath.Join(h.containerDir(id), "config.json"), &cfg); err == nil {
		if p := cfg.Process; p != nil {
			ci.Process = &ProcessInfo{Args: p.Args, Env: p.Env, Cwd: p.Cwd, UID: p.User.UID, GID: p.User.GID}
		}
		for _, m := range cfg.Mounts {
			ci.Mounts = append(ci.Mounts, MountInfo{Type: m.Type, Source: m.Source, Destination: m.Destination, Options: m.Options})
		}
		if cfg.Linux != nil && cfg.Linux.CgroupsPath != "" {
			ci.Cgroup = strings.TrimLeft(cfg.Linux.CgroupsPath, "/")
		}
	}
	if rs, err := h.ContainerRuntime(id).State(ctx, id); err == nil && len(rs.CgroupPaths) > 0 {
		ci.CgroupPaths = rs.CgroupPaths
	} else if ci.Cgroup != "" {
		if drv, err := cgroups.New(""); err == nil {
			ci.CgroupPaths = drv.Paths(ci.Cgroup)
		}
	}
	if atts, err := h.Networks.Attachments(id); err == nil {
		for _, a := range atts {
			n := NetworkInfo{Network: a.Network, IfName: a.IfName, IPv4: a.IPv4.String(), MAC: a.MAC, Aliases: a.Aliases}
			if a.Gateway.IsValid() {
				n.Gateway = a.Gateway.String()
			}
			ci.Networks = append(ci.Networks, n)
		}
		sort.Slice(ci.Networks, func(i, j int) bool { return ci.Networks[i].Network < ci.Networks[j].Network })
	}
	if b, err := h.Networks.Bindings(id); err == nil {
		for _, x := range b {
			ci.Ports = append(ci.Ports, x.String())
		}
	}
	return ci, nil
}

// stateInfo turns the monitor's record into StateInfo.
func stateInfo(st *monitor.Status) StateInfo {
	s := StateInfo{
		Status: string(st.State), ExitCode: st.ExitCode, Signal: st.Signal, OOMKilled: st.OOMKilled,
		StartedAt: st.StartedAt, FinishedAt: st.FinishedAt, RestartCount: st.RestartCount, Health: st.Health, Error: st.Error,
	}
	switch {
	case st.Unsupervised:
		s.Status, s.Running, s.Pid = "unsupervised", true, st.ContainerPid
	case st.State == monitor.StateRunning:
		s.Running, s.Pid = true, st.ContainerPid
	}
	return s
}

// HostInfo describes this host as stack sees it, for `stack info` (JSON, version 1).
type HostInfo struct {
	Kernel        string `json:"kernel"` // uname release
	OS            string `json:"os"`     // uname sysname
	Architecture  string `json:"architecture"`
	Hostname      string `json:"hostname"`
	CPUs          int    `json:"cpus"`
	MemoryBytes   uint64 `json:"memory_bytes"`
	CgroupVersion int    `json:"cgroup_version"` // 1 (legacy or hybrid) or 2 (unified)
	CgroupDriver  string `json:"cgroup_driver"`  // always cgroupfs: there is no systemd driver
	Runtime       string `json:"runtime"`        // builtin, or the external runc-compatible binary
	StorageRoot   string `json:"storage_root"`
	RunRoot       string `json:"run_root"`
	// StorageBytes is the disk space used under StorageRoot (apparent sizes of regular files,
	// hard links counted once); ImagesBytes, ContainersBytes and VolumesBytes split it.
	StorageBytes    int64    `json:"storage_bytes"`
	ImagesBytes     int64    `json:"images_bytes"`
	ContainersBytes int64    `json:"containers_bytes"`
	VolumesBytes    int64    `json:"volumes_bytes"`
	Images          int      `json:"images"`
	Containers      int      `json:"containers"`
	Running         int      `json:"containers_running"`
	Networks        int      `json:"networks"`
	Volumes         int      `json:"volumes"`
	Projects        []string `json:"projects"`
}

// Info gathers HostInfo.
func (h *Host) Info(ctx context.Context) (*HostInfo, error) {
	hi := &HostInfo{CgroupDriver: "cgroupfs", Runtime: h.Runtime, StorageRoot: h.Root, RunRoot: h.RunRoot, Projects: []string{}}
	var u unix.Utsname
	if err := unix.Uname(&u); err == nil {
		hi.Kernel, hi.OS, hi.Architecture = unix.ByteSliceToString(u.Release[:]), unix.ByteSliceToString(u.Sysname[:]), unix.ByteSliceToString(u.Machine[:])
		hi.Hostname = unix.ByteSliceToString(u.Nodename[:])
	}
	var si unix.Sysinfo_t
	if unix.Sysinfo(&si) == nil {
		hi.MemoryBytes = uint64(si.Totalram) * uint64(si.Unit)
	}
	var set unix.CPUSet
	if unix.SchedGetaffinity(0, &set) == nil {
		hi.CPUs = set.Count()
	}
	if drv, err := cgroups.New(""); err == nil {
		hi.CgroupVersion = 1
		if _, v2 := drv.Paths("x")[""]; v2 {
			hi.CgroupVersion = 2
		}
	}
	imgs, err := h.Images.List()
	if err != nil {
		return nil, err
	}
	hi.Images = len(imgs)
	ents, err := os.ReadDir(filepath.Join(h.Root, "containers"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		hi.Containers++
		if st, err := h.Status(e.Name()); err == nil && (st.State == monitor.StateRunning || st.State == monitor.StateRestarting || st.Unsupervised) {
			hi.Running++
		}
	}
	nets, err := h.Networks.List()
	if err != nil {
		return nil, err
	}
	hi.Networks = len(nets)
	vols, err := h.Volumes.List()
	if err != nil {
		return nil, err
	}
	hi.Volumes = len(vols)
	if hi.Projects, err = engine.Projects(h.Root); err != nil {
		return nil, err
	}
	if hi.Projects == nil {
		hi.Projects = []string{}
	}
	usage := diskUsage(h.Root, map[string]*int64{
		filepath.Join(h.Root, "images"):     &hi.ImagesBytes,
		filepath.Join(h.Root, "containers"): &hi.ContainersBytes,
		h.Volumes.Root():                    &hi.VolumesBytes,
	})
	hi.StorageBytes = usage
	return hi, nil
}

// diskUsage sums the sizes of regular files under root without crossing into other file
// systems (a container's mounted rootfs would count its image twice) and counting each hard
// link once; the part under each directory of parts is added to its counter as well.
func diskUsage(root string, parts map[string]*int64) int64 {
	var rootSt unix.Stat_t
	if unix.Lstat(root, &rootSt) != nil {
		return 0
	}
	type inode struct{ dev, ino uint64 }
	seen := map[inode]bool{}
	var total int64
	var walk func(dir string, counter *int64)
	walk = func(dir string, counter *int64) {
		ents, err := os.ReadDir(dir)
		if err != nil {
			return
		}
		for _, e := range ents {
			p := filepath.Join(dir, e.Name())
			c := counter
			if pc, ok := parts[p]; ok {
				c = pc
			}
			var st unix.Stat_t
			if unix.Lstat(p, &st) != nil || st.Dev != rootSt.Dev {
				continue
			}
			switch st.Mode & unix.S_IFMT {
			case unix.S_IFDIR:
				walk(p, c)
			case unix.S_IFREG:
				k := inode{uint64(st.Dev), st.Ino}
				if seen[k] {
					continue
				}
				seen[k] = true
				total += st.Size
				if c != nil {
					*c += st.Size
				}
			}
		}
	}
	walk(root, nil)
	return total
}
