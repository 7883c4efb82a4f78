// Package oci owns one translation: a service of the stack file, together with what the engine
// resolved for it (the process from the image config, the planned mounts, the network namespace,
// the /etc files), into an OCI runtime-spec config that the runtime runs. It is pure: it touches
// no host state, so every default and every limit it sets is unit-tested here.
//
// Defaults follow Docker's (capabilities, masked and read-only paths, devices, seccomp through
// runtime/seccomp.Default), except where this host cannot honour them (rlimits are inherited
// rather than raised: root may lack CAP_SYS_RESOURCE) and where stack adds a guard Docker lacks
// (DefaultPidsLimit).
package oci

import (
	"fmt"
	"maps"
	"slices"
	"strconv"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/stackrun/stack/runtime/seccomp"
	"github.com/stackrun/stack/spec"
)

// DefaultPidsLimit caps the processes of a container whose service sets no pids_limit, so a fork
// bomb in one container cannot exhaust the host's pid space. Set pids_limit: -1 to lift it.
// 2048 as Podman's current default: at 4096 a fork bomb kept a 2-core host barely usable for
// minutes (the limit caps the count, not the fork/exit churn every process shares); at 2048 the
// host stayed responsive (docs/security.md).
const DefaultPidsLimit = 2048

// DefaultShmSize is the size of /dev/shm when shm_size is not set (Docker's 64 MiB).
const DefaultShmSize = 64 << 20

// Process is the container's process as resolved from the image config and the service.
type Process struct {
	Args           []string
	Env            []string
	Cwd            string
	UID, GID       uint32
	AdditionalGids []uint32
}

// EtcFiles are host paths of files the engine wrote for the container, bind-mounted over the
// image's; empty fields are not mounted.
type EtcFiles struct {
	Hosts, Resolv, Hostname string
}

// Input is everything Build needs.
type Input struct {
	Service     *spec.Service
	Process     Process
	Rootfs      string
	NetnsPath   string // the network namespace to join; "" gives the container a new, empty one
	Mounts      []specs.Mount
	Etc         EtcFiles
	CgroupsPath string
	Hostname    string // default hostname when the service sets none (Docker: the container id)
	Annotations map[string]string
	// RlimitHard returns the host's hard limit of an rlimit, for the check that a ulimit asked
	// for can be set; nil skips the check.
	RlimitHard func(resource int) (uint64, bool)
}

// Build returns the OCI runtime config for in, or an error naming the service key at fault.
func Build(in Input) (*specs.Spec, error) {
	s := in.Service
	if s == nil {
		return nil, fmt.Errorf("build OCI config: no service")
	}
	hostname := s.Hostname
	if hostname == "" {
		hostname = in.Hostname
	}
	caps, err := capabilities(s)
	if err != nil {
		return nil, fmt.Errorf("service %s: %w", s.Name, err)
	}
	rlimits, err := rlimits(s, in.RlimitHard)
	if err != nil {
		return nil, fmt.Errorf("service %s: %w", s.Name, err)
	}
	cwd := in.Process.Cwd
	if cwd == "" {
		cwd = "/"
	}
	oomAdj := 0
	proc := &specs.Process{
		Terminal:        s.Tty,
		User:            specs.User{UID: in.Process.UID, GID: in.Process.GID, AdditionalGids: in.Process.AdditionalGids},
		Args:            in.Process.Args,
		Env:             in.Process.Env,
		Cwd:             cwd,
		Capabilities:    caps,
		Rlimits:         rlimits,
		NoNewPrivileges: !s.Privileged,
		OOMScoreAdj:     &oomAdj,
	}
	if len(proc.Args) == 0 {
		return nil, fmt.Errorf("service %s: no command: neither the service nor its image sets one", s.Name)
	}
	cfg := &specs.Spec{
		Version:     specs.Version,
		Process:     proc,
		Root:        &specs.Root{Path: in.Rootfs, Readonly: s.ReadOnly},
		Hostname:    hostname,
		Domainname:  s.Domainname,
		Mounts:      append(defaultMounts(s), etcMounts(in.Etc)...),
		Annotations: maps.Clone(in.Annotations),
		Linux: &specs.Linux{
			CgroupsPath: in.CgroupsPath,
			Namespaces:  namespaces(in.NetnsPath),
			Resources:   resources(s),
			Sysctl:      maps.Clone(s.Sysctls),
		},
	}
	cfg.Mounts = append(cfg.Mounts, in.Mounts...)
	if !s.Privileged {
		cfg.Linux.MaskedPaths = slices.Clone(maskedPaths)
		cfg.Linux.ReadonlyPaths = slices.Clone(readonlyPaths)
		// Docker's default seccomp behaviour, following the capabilities the service keeps:
		// cap_add: [SYS_ADMIN] lets mount, unshare and setns through, as in Docker. The stack
		// file model carries no security_opt, so privileged is the only way to turn it off.
		cfg.Linux.Seccomp = seccomp.Default(caps.Bounding)
	}
	return cfg, nil
}

func namespaces(netns string) []specs.LinuxNamespace {
	return []specs.LinuxNamespace{
		{Type: specs.PIDNamespace},
		{Type: specs.MountNamespace},
		{Type: specs.UTSNamespace},
		{Type: specs.IPCNamespace},
		{Type: specs.NetworkNamespace, Path: netns},
		{Type: specs.CgroupNamespace},
	}
}

// The OCI/Docker defaults: paths of /proc and /sys that leak host information or allow host
// changes, hidden or made read-only in every unprivileged container.
var (
	maskedPaths = []string{
		"/proc/asound", "/proc/acpi", "/proc/interrupts", "/proc/kcore", "/proc/keys",
		"/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
		"/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap",
	}
	readonlyPaths = []string{
		"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
	}
)

func defaultMounts(s *spec.Service) []specs.Mount {
	shm := int64(DefaultShmSize)
	if s.ShmSize > 0 {
		shm = s.ShmSize
	}
	sysOpts := []string{"nosuid", "noexec", "nodev", "ro"}
	if s.Privileged {
		sysOpts = sysOpts[:3]
	}
	return []specs.Mount{
		{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
		{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
		{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=" + strconv.FormatInt(shm, 10)}},
		{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: sysOpts},
		{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"nosuid", "noexec", "nodev", "relatime", "ro"}},
	}
}

func etcMounts(e EtcFiles) []specs.Mount {
	var out []specs.Mount
	for _, f := range []struct{ src, dst string }{{e.Hosts, "/etc/hosts"}, {e.Resolv, "/etc/resolv.conf"}, {e.Hostname, "/etc/hostname"}} {
		if f.src != "" {
			out = append(out, specs.Mount{Destination: f.dst, Type: "bind", Source: f.src, Options: []string{"rbind", "rprivate"}})
		}
	}
	return out
}
