package engine

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/stackrun/stack/planner"
	"github.com/stackrun/stack/spec"
	"github.com/stackrun/stack/state"
)

// Config says which project an Engine works on, where its records live, and how it reaches
// the host.
type Config struct {
	Project string
	Root    string // state root: records under <Root>/projects/<project>/
	RunRoot string // volatile root: the project lock under <RunRoot>/locks/; "" uses Root

	Containers Containers
	Networks   Networks
	Volumes    Volumes
	Images     Images

	Now   func() time.Time // nil: time.Now
	NewID func() string    // nil: 32 random bytes, hex
}

// Engine observes one project and applies plans to it.
type Engine struct {
	cfg Config
}

// New checks cfg and returns an Engine.
func New(cfg Config) (*Engine, error) {
	if cfg.Project == "" || strings.ContainsAny(cfg.Project, "/\x00") || cfg.Project == "." || cfg.Project == ".." {
		return nil, fmt.Errorf("%w: project name %q", ErrInvalid, cfg.Project)
	}
	if cfg.Root == "" {
		return nil, fmt.Errorf("%w: no state root", ErrInvalid)
	}
	if cfg.Containers == nil || cfg.Networks == nil || cfg.Volumes == nil || cfg.Images == nil {
		return nil, fmt.Errorf("%w: engine needs containers, networks, volumes and images", ErrInvalid)
	}
	if cfg.RunRoot == "" {
		cfg.RunRoot = cfg.Root
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.NewID == nil {
		cfg.NewID = randomID
	}
	return &Engine{cfg: cfg}, nil
}

// idPrefixLen is how much of a container id names its cgroup (stack/<project>/<id[:12]>):
// newContainerID keeps it unique among the project's containers. (Run directories take 16
// characters, across projects: 64 random bits.)
const idPrefixLen = 12

// newContainerID returns a fresh id whose first idPrefixLen characters no recorded container
// of the project shares, so the names made from the prefix never collide.
func (e *Engine) newContainerID() string {
	var taken map[string]bool
	if ents, err := os.ReadDir(e.containersDir()); err == nil {
		taken = map[string]bool{}
		for _, ent := range ents {
			if n := strings.TrimSuffix(ent.Name(), ".json"); len(n) >= idPrefixLen {
				taken[n[:idPrefixLen]] = true
			}
		}
	}
	id := e.cfg.NewID()
	for i := 0; i < 1000 && len(id) >= idPrefixLen && taken[id[:idPrefixLen]]; i++ {
		id = e.cfg.NewID()
	}
	return id
}

func randomID() string {
	b := make([]byte, 32)
	rand.Read(b) // never fails (crypto/rand panics on a broken source)
	return hex.EncodeToString(b)
}

// Record phases: what the engine last did to a container. A record is written before the
// host step (creating) and after each step, so a killed command leaves a record that says how
// far it got, and Observe pairs it with what the runtime reports.
const (
	RecordCreating = "creating"
	RecordCreated  = "created"
	RecordStarted  = "started"
	RecordStopped  = "stopped"
)

// RecordVersion is the version of the container record format.
const RecordVersion = 1

// Record is the engine's record of one container, <root>/projects/<project>/containers/<id>.json.
// Commands other than up (ps, logs, down -p) work from these records alone.
type Record struct {
	Version     int               `json:"version"`
	ID          string            `json:"id"`
	Name        string            `json:"name"`
	Project     string            `json:"project"`
	Service     string            `json:"service"`
	Number      int               `json:"number"`
	Hash        string            `json:"config_hash"`
	Image       string            `json:"image"`
	ImageDigest string            `json:"image_digest"`
	Labels      map[string]string `json:"labels"`
	Config      *spec.Service     `json:"config"`
	Phase       string            `json:"phase"`
	Created     time.Time         `json:"created"`
	Started     time.Time         `json:"started,omitzero"`
	Stopped     time.Time         `json:"stopped,omitzero"`
}

func (e *Engine) containersDir() string {
	return filepath.Join(e.cfg.Root, "projects", e.cfg.Project, "containers")
}

func (e *Engine) recordPath(id string) string {
	return filepath.Join(e.containersDir(), id+".json")
}

func (e *Engine) writeRecord(r *Record) error {
	if err := state.WriteJSON(e.recordPath(r.ID), r); err != nil {
		return fmt.Errorf("record container %s: %w", r.ID, err)
	}
	return nil
}

// pruneDirs removes the project's record directories once they are empty (after a down), so
// nothing of the project is left under the state root. Directories that are not empty stay.
func (e *Engine) pruneDirs() {
	dir := e.containersDir()
	os.Remove(dir)               // fails, harmlessly, unless empty
	os.Remove(filepath.Dir(dir)) // likewise for <root>/projects/<project>
}

func (e *Engine) deleteRecord(id string) error {
	err := os.Remove(e.recordPath(id))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("delete record of container %s: %w", id, err)
	}
	return nil
}

// Records reads the container records of the project, sorted by service, number and id.
// Records that do not carry the project (copied or foreign files) are skipped.
func (e *Engine) Records() ([]*Record, error) { return readRecords(e.cfg.Root, e.cfg.Project) }

// Projects lists the projects that have a record directory under the state root, sorted
// (`stack ls`). A down removes the directory of a project it emptied.
func Projects(root string) ([]string, error) {
	entries, err := os.ReadDir(filepath.Join(root, "projects"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list projects: %w", err)
	}
	var out []string
	for _, ent := range entries {
		if ent.IsDir() && !strings.HasPrefix(ent.Name(), ".") {
			out = append(out, ent.Name())
		}
	}
	return out, nil
}

// ImagesInUse returns the image digests recorded for every container of every project, for
// the image store's in-use check.
func ImagesInUse(root string) (map[string]bool, error) {
	projects, err := Projects(root)
	if err != nil {
		return nil, err
	}
	used := map[string]bool{}
	for _, p := range projects {
		recs, err := readRecords(root, p)
		if err != nil {
			return nil, err
		}
		for _, r := range recs {
			if r.ImageDigest != "" {
				used[r.ImageDigest] = true
			}
		}
	}
	return used, nil
}

// imageUsers names the containers of other projects recorded with image digest:
// "web-1 (project shop)". Containers of this project do not count: down removes them first.
func (e *Engine) imageUsers(digest string) ([]string, error) {
	if digest == "" {
		return nil, nil
	}
	projects, err := Projects(e.cfg.Root)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, p := range projects {
		if p == e.cfg.Project {
			continue
		}
		recs, err := readRecords(e.cfg.Root, p)
		if err != nil {
			return nil, err
		}
		for _, r := range recs {
			if r.ImageDigest == digest {
				out = append(out, r.Name+" (project "+p+")")
			}
		}
	}
	return out, nil
}

// RecordsOf reads the container records of project under root without an Engine (for ps,
// logs and down -p, which need no host interfaces to list).
func RecordsOf(root, project string) ([]*Record, error) { return readRecords(root, project) }

func readRecords(root, project string) ([]*Record, error) {
	dir := filepath.Join(root, "projects", project, "containers")
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read records of project %s: %w", project, err)
	}
	var out []*Record
	for _, ent := range entries {
		name := ent.Name()
		if !strings.HasSuffix(name, ".json") || strings.HasPrefix(name, ".") {
			continue
		}
		var r Record
		if err := state.ReadJSON(filepath.Join(dir, name), &r); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue // removed while we listed
			}
			return nil, err
		}
		if r.Project != project || r.Labels[LabelProject] != project || r.ID+".json" != name {
			continue
		}
		out = append(out, &r)
	}
	slices.SortFunc(out, func(a, b *Record) int {
		if c := strings.Compare(a.Service, b.Service); c != 0 {
			return c
		}
		if a.Number != b.Number {
			return a.Number - b.Number
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out, nil
}

// Observe reads the project's records back and asks the host for the live state of each
// container, the project's networks and volumes, and the images present.
func (e *Engine) Observe(ctx context.Context) (planner.Observed, error) {
	obs := planner.Observed{Project: e.cfg.Project}
	recs, err := e.Records()
	if err != nil {
		return obs, err
	}
	for _, r := range recs {
		if oneOff(r) {
			continue // not a replica: the planner never sees it (see LabelOneOff)
		}
		c := planner.Container{
			ID: r.ID, Project: r.Project, Service: r.Service, Number: r.Number, Hash: r.Hash,
			Config: r.Config, ImageDigest: r.ImageDigest, Created: r.Created,
		}
		if r.Config != nil {
			c.Restart = r.Config.Restart
		}
		st, err := e.cfg.Containers.Inspect(ctx, r.ID)
		switch {
		case errors.Is(err, ErrNotFound):
			c.Status = planner.StatusMissing
		case err != nil:
			return obs, fmt.Errorf("inspect container %s (%s): %w", r.ID, r.Name, err)
		default:
			c.Status, c.ExitCode, c.Health = st.Status, st.ExitCode, st.Health
		}
		obs.Containers = append(obs.Containers, c)
	}
	if obs.Networks, err = e.cfg.Networks.List(ctx, e.cfg.Project); err != nil {
		return obs, fmt.Errorf("list networks of project %s: %w", e.cfg.Project, err)
	}
	if obs.Volumes, err = e.cfg.Volumes.List(ctx, e.cfg.Project); err != nil {
		return obs, fmt.Errorf("list volumes of project %s: %w", e.cfg.Project, err)
	}
	if obs.Images, err = e.cfg.Images.List(ctx); err != nil {
		return obs, fmt.Errorf("list images: %w", err)
	}
	return obs, nil
}

// LockOptions says what to do when another command holds the project lock.
type LockOptions struct {
	NoWait  bool          // fail with ErrLocked instead of waiting
	OnWait  func(string)  // told once, with a message, when the lock is busy and we wait
	Poll    time.Duration // how often to retry while waiting; 0: 50ms
	Timeout time.Duration // give up waiting after this long; 0: until ctx is done
}

// Lock takes the project lock (<RunRoot>/locks/<project>.lock), which serializes up, down and
// restart of one project across processes. The lock dies with the process.
func (e *Engine) Lock(ctx context.Context, o LockOptions) (*state.Lock, error) {
	path := filepath.Join(e.cfg.RunRoot, "locks", e.cfg.Project+".lock")
	poll := o.Poll
	if poll <= 0 {
		poll = 50 * time.Millisecond
	}
	var deadline <-chan time.Time
	if o.Timeout > 0 {
		t := time.NewTimer(o.Timeout)
		defer t.Stop()
		deadline = t.C
	}
	told := false
	for {
		l, ok, err := state.TryLock(path)
		if err != nil {
			return nil, fmt.Errorf("lock project %s: %w", e.cfg.Project, err)
		}
		if ok {
			return l, nil
		}
		if o.NoWait {
			return nil, fmt.Errorf("lock project %s: %w: another stack command is working on it (%s)", e.cfg.Project, ErrLocked, path)
		}
		if !told && o.OnWait != nil {
			o.OnWait(fmt.Sprintf("waiting for another stack command working on project %s", e.cfg.Project))
			told = true
		}
		// flock has no timeout; polling TryLock keeps the wait cancellable.
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("lock project %s: %w", e.cfg.Project, ctx.Err())
		case <-deadline:
			return nil, fmt.Errorf("lock project %s: %w: gave up waiting after %s", e.cfg.Project, ErrLocked, o.Timeout)
		case <-time.After(poll):
		}
	}
}
