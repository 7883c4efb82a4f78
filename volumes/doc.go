// Package volumes owns the storage a container mounts: named volumes under the state root
// (records, in-use tracking, copy-up of image content into an empty volume), bind mounts (source
// resolution, missing-source rules, refusal of host paths that would hand a container the host)
// and tmpfs mounts.
//
// Work is split as everywhere in stack: Plan turns a service's mounts into a []Planned, pure data
// with the OCI mounts the runtime will receive; Store.Prepare does the host side (ensures the
// volumes, records the container as a user, copies image content up, creates or checks bind
// sources) and returns the final []specs.Mount. ResolveTarget checks a mount target against the
// container's rootfs before the container starts.
//
// Layout: <stateRoot>/volumes/<name>/_data holds a volume's data, <name>/volume.json its record
// (name, project, key, labels, driver "local", created, copy-up, users). Records are written
// atomically and changed under one flock, so separate stack processes agree on who uses what.
//
// Refused unless the service carries the label io.stackrun.allow-host-mount=true: bind sources
// that are the host's /, /proc or anything in it, /sys, /dev, the state or run root or anything
// inside or above them, and sources inside the project directory that resolve (through a
// symlink a container could have planted there) to somewhere outside it. These are checked on
// the written path by Plan and again on the resolved path by Prepare.
//
// The package must not know about networks, images or the runtime: it takes a rootfs path and
// returns OCI mounts; performing the mounts is the runtime's job.
package volumes
