// Package runtime runs one container from an OCI runtime-spec config and a rootfs: it clones
// the container's init into new namespaces, places it in its cgroup, prepares the rootfs
// (mounts, devices, pivot_root, masks), drops privileges and execs the configured process. It
// also execs extra processes inside a running container, signals and deletes containers, and
// keeps one state record per container under its state root.
//
// It knows nothing about services, projects or images: callers hand it a bundle directory
// (config.json + rootfs). Privileged work is split in two: pure functions compute what to do
// (the rootfs plan, cgroup device rules, capability sets) and are unit-tested without root;
// the container init (init_linux.go) only carries the plan out.
package runtime
