// Package engine owns observing a project on the host, executing a planner.Plan and the
// ordering, parallelism and progress events of that execution. It keeps one record per
// container (the container's project, service, replica number, config hash and full resolved
// service) under <root>/projects/<project>/containers/, written through package state before the
// next step starts, and serializes commands on one project with a lock. It reaches the host only
// through the small interfaces below (containers, networks, volumes, images), so it is tested
// with the in-memory fakes in engine/enginetest; it knows no file formats of those parts.
package engine

import (
	"context"
	"errors"
	"time"

	"github.com/stackrun/stack/planner"
	"github.com/stackrun/stack/spec"
)

// Error categories, checked with errors.Is.
var (
	ErrNotFound = errors.New("not found")                    // implementations wrap it for unknown ids
	ErrLocked   = errors.New("project is locked")            // another command holds the project lock (no-wait)
	ErrStale    = errors.New("plan is out of date")          // the host changed since the plan was made
	ErrInvalid  = errors.New("invalid")                      // a malformed plan or configuration
	ErrFailed   = errors.New("dependency condition not met") // a depends_on condition can no longer be met
	ErrInUse    = errors.New("in use")                       // Images.Remove: a container uses the image
)

// Labels every container carries, so observation never depends on names.
const (
	LabelProject    = "io.stackrun.project"
	LabelService    = "io.stackrun.service"
	LabelNumber     = "io.stackrun.number"
	LabelConfigHash = "io.stackrun.config-hash"
)

// ContainerSpec is what Containers.Create gets: everything about one container of a service.
type ContainerSpec struct {
	ID          string // chosen by the engine, unique
	Name        string // <project>-<service>-<number>, or container_name
	Project     string
	Service     *spec.Service // full resolved service
	Number      int
	Image       string
	ImageDigest string
	Labels      map[string]string
}

// ContainerState is the live state of one container.
type ContainerState struct {
	Status     planner.ContainerStatus
	ExitCode   int
	Health     string // "", "starting", "healthy", "unhealthy"
	OOMKilled  bool
	Pid        int    // of the container's init, 0 when not running
	NetNS      string // path of its network namespace; "" means /proc/<Pid>/ns/net
	StartedAt  time.Time
	FinishedAt time.Time
}

// Containers creates and drives supervised containers. The real implementation launches one
// monitor per container (stack re-executed in monitor mode), which creates the container through
// the runtime from an OCI config built from the service and image, applies the restart policy and
// runs healthchecks.
type Containers interface {
	// Create prepares the container (rootfs, config, monitor) without starting the user
	// process. After it returns, Inspect reports StatusCreated and the Pid of the (waiting) init,
	// so its namespaces exist for Networks.Attach.
	Create(ctx context.Context, c *ContainerSpec) error
	// Start starts the user process of a created or exited container.
	Start(ctx context.Context, id string) error
	// Stop signals the container (stop_signal), waits up to timeout, then kills it. Stopping a
	// container that is not running is not an error.
	Stop(ctx context.Context, id string, timeout time.Duration) error
	// Remove deletes a stopped container and everything it owns on the host (rootfs, cgroup,
	// anonymous volumes, logs).
	Remove(ctx context.Context, id string) error
	// Inspect reports the live state; an unknown id is an error wrapping ErrNotFound.
	Inspect(ctx context.Context, id string) (ContainerState, error)
}

// StopToRemover is implemented by Containers that can stop a container more cheaply when it is
// removed right after: Remove then clears what the stop would have cleared for a later start
// (the runtime's record of the exited container).
type StopToRemover interface {
	StopToRemove(ctx context.Context, id string, timeout time.Duration) error
}

// Endpoint is one container joining its networks.
type Endpoint struct {
	ContainerID string
	Name        string        // container name (hosts entries)
	Service     *spec.Service // its networks, aliases, fixed addresses and published ports
	Number      int
	NetNS       string // path of the container's network namespace (Attach only)
}

// Networks owns the project's networks (bridges, addresses, name resolution, published ports).
// Networks are recorded with the project label; List returns only those of the project.
type Networks interface {
	List(ctx context.Context, project string) ([]planner.Network, error)
	Ensure(ctx context.Context, project string, n *spec.Network) error
	Remove(ctx context.Context, project string, n *spec.Network) error
	// Attach gives the container an interface and address on each of its networks and writes
	// its hosts/resolv.conf. Called after Containers.Create (the namespaces exist), before Start.
	Attach(ctx context.Context, project string, e Endpoint) error
	// Publish reserves and publishes the container's ports on the host (idempotent). Called
	// right before every Containers.Start, so a replacement container takes its ports only after
	// the old one is gone (create before destroy works with fixed host ports).
	Publish(ctx context.Context, project string, e Endpoint) error
	// Detach releases everything Attach and Publish took; detaching an unknown container is
	// not an error.
	Detach(ctx context.Context, project string, containerID string) error
}

// Volumes owns the project's named volumes.
type Volumes interface {
	List(ctx context.Context, project string) ([]planner.Volume, error)
	Ensure(ctx context.Context, project string, v *spec.Volume) error
	Remove(ctx context.Context, project string, v *spec.Volume) error
}

// Images owns the local image store.
type Images interface {
	// List returns the images present: reference -> digest.
	List(ctx context.Context) (map[string]string, error)
	// Pull fetches ref and returns the digest of the local image.
	Pull(ctx context.Context, ref string) (digest string, err error)
	// Build builds s.Build and tags it s.Image, returning the digest.
	Build(ctx context.Context, s *spec.Service) (digest string, err error)
	// Remove removes the reference (the image itself once no reference is left); an unknown
	// ref wraps ErrNotFound, an image a container uses wraps ErrInUse and stays.
	Remove(ctx context.Context, ref string) error
}
