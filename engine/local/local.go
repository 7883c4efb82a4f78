// Package local owns the real implementations of the engine's interfaces on this host: it
// joins the image store, the volumes store, the network manager, the OCI config builder and the
// per-container monitor into "create, start, stop, remove a container of a service". It keeps
// the on-host layout of a container (bundle, rootfs mount, /etc files, netns file, monitor
// directories) and nothing else: what to do, and in which order, is the engine's.
//
// Layout, for container id under the state root R and run root V:
//
//	R/containers/<id>/config.json   OCI bundle (rootfs/ is the overlay mount, upper/ work/ its dirs)
//	R/containers/<id>/etc/          hosts, resolv.conf, hostname bind-mounted into the container
//	R/containers/<id>/monitor/      the monitor's status record and the container log
//	R/containers/<id>/local.json    what Start needs to launch the monitor
//	V/c/<id[:16]>/                  the monitor's socket, lock and FIFOs; the runtime's state
//	V/netns/<id>                    the container's network namespace, bind-mounted
package local

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"sync"

	"github.com/stackrun/stack/image"
	"github.com/stackrun/stack/network"
	"github.com/stackrun/stack/network/enginenet"
	"github.com/stackrun/stack/runtime"
	"github.com/stackrun/stack/spec"
	"github.com/stackrun/stack/volumes"
)

// Host holds the stores and paths every adapter shares.
type Host struct {
	Root    string // state root
	RunRoot string // volatile root
	Runtime string // "builtin" (default), or a runc-compatible binary
	Log     *slog.Logger

	Images   *image.Store
	Volumes  *volumes.Store
	Networks *network.Manager

	// Stack is the desired stack when a stack file was loaded (up, plan); nil for commands
	// that work from records alone (down -p, ps). Create needs it for top-level volumes.
	Stack *spec.Stack

	// held are the sockets reserving containers' published ports, from the network attach
	// (Publish) until Start hands them to the container's monitor.
	heldMu sync.Mutex
	held   map[string][]*os.File
}

// hold keeps the sockets reserving container id's published ports until Start takes them.
func (h *Host) hold(id string, files []*os.File) {
	h.heldMu.Lock()
	defer h.heldMu.Unlock()
	if h.held == nil {
		h.held = map[string][]*os.File{}
	}
	for _, f := range h.held[id] {
		f.Close() // published again: the new sockets replace these
	}
	h.held[id] = files
}

// takeHeld returns and forgets the sockets held for container id; the caller closes them.
func (h *Host) takeHeld(id string) []*os.File {
	h.heldMu.Lock()
	defer h.heldMu.Unlock()
	files := h.held[id]
	delete(h.held, id)
	return files
}

// Open opens the stores under root and runRoot.
func Open(root, runRoot string, log *slog.Logger) (*Host, error) {
	if log == nil {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	for _, d := range []string{root, runRoot} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
	}
	imgs, err := image.Open(filepath.Join(root, "images"))
	if err != nil {
		return nil, err
	}
	vols, err := volumes.Open(filepath.Join(root, volumes.Dir))
	if err != nil {
		return nil, err
	}
	h := &Host{
		Root: root, RunRoot: runRoot, Runtime: "builtin", Log: log,
		Images: imgs, Volumes: vols,
		Networks: network.New(filepath.Join(root, "networks"), log, network.WithTable(TableFor(root))),
	}
	imgs.InUse = h.imageInUse
	return h, nil
}

func (h *Host) containerDir(id string) string { return filepath.Join(h.Root, "containers", id) }

// runDir is short on purpose: the monitor's unix socket lives there, and a socket path is
// limited to 107 bytes; 16 hex digits of a random id are unique on one host.
func (h *Host) runDir(id string) string     { return filepath.Join(h.RunRoot, "c", id[:min(16, len(id))]) }
func (h *Host) netnsPath(id string) string  { return filepath.Join(h.RunRoot, "netns", id) }
func (h *Host) monitorDir(id string) string { return filepath.Join(h.containerDir(id), "monitor") }
func (h *Host) etcDir(id string) string     { return filepath.Join(h.containerDir(id), "etc") }

// LogPath is the log file of container id, for `stack logs`.
func (h *Host) LogPath(id string) string { return filepath.Join(h.monitorDir(id), "container.log") }

// imageInUse reports whether any container on this host was created from image id.
func (h *Host) imageInUse(imageID string) bool {
	ents, _ := os.ReadDir(filepath.Join(h.Root, "containers"))
	for _, e := range ents {
		var rec launchRecord
		if err := readJSON(filepath.Join(h.containerDir(e.Name()), "local.json"), &rec); err == nil && rec.ImageID == imageID {
			return true
		}
	}
	return false
}

// MonitorDirs are the state and run directories of container id's monitor, for the readers
// and controls in runtime/monitor (logs, stop, kill, inspect).
func (h *Host) MonitorDirs(id string) (stateDir, runDir string) {
	return h.monitorDir(id), h.runDir(id)
}

// ContainerRuntime is the runtime instance that holds container id (exec, stats, pids).
func (h *Host) ContainerRuntime(id string) *runtime.Runtime {
	return runtime.New(runtime.Options{Root: filepath.Join(h.runDir(id), "runtime"), Helper: ShimPath()})
}

// EngineNetworks is the engine's view of the network manager, writing each container's
// hosts and resolv.conf where its OCI config bind-mounts them.
func (h *Host) EngineNetworks() *enginenet.Networks {
	var nets map[string]*spec.Network
	if h.Stack != nil {
		nets = h.Stack.Networks
	}
	return &enginenet.Networks{
		M: h.Networks, Stack: nets,
		NameFiles: func(id string) (string, string) {
			return filepath.Join(h.etcDir(id), "hosts"), filepath.Join(h.etcDir(id), "resolv.conf")
		},
		Hold: h.hold,
	}
}

// Reconcile frees what containers that no longer exist on this host still hold: network
// addresses, veths and published ports, and their use of volumes (after a kill -9 between a
// container's removal and the release of its resources). A container exists while its
// directory under the state root does: Create makes it first, Remove deletes it last.
func (h *Host) Reconcile(ctx context.Context) error {
	ents, err := os.ReadDir(filepath.Join(h.Root, "containers"))
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	live := map[string]bool{}
	for _, e := range ents {
		live[e.Name()] = true
	}
	return errors.Join(h.Networks.Reconcile(ctx, live), h.Volumes.Reconcile(live))
}

// DefaultRoot is the state root stack uses unless told otherwise.
const DefaultRoot = "/var/lib/stack"

// TableFor is the nftables table of the stacks under state root: "stack" for the default
// root, "stack-<8 hex of the root's path hash>" for any other, so installs with different
// roots on one host (tests beside a user's stacks) never touch each other's rules.
func TableFor(root string) string {
	abs, err := filepath.Abs(root)
	if err == nil && filepath.Clean(abs) == DefaultRoot {
		return network.TableName
	}
	sum := sha256.Sum256([]byte(abs))
	return network.TableName + "-" + hex.EncodeToString(sum[:4])
}
