package volumes

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/stackrun/stack/spec"
	"github.com/stackrun/stack/state"
)

// Dir is the directory of the volume store below the state root.
const Dir = "volumes"

// DriverLocal is the only driver: a directory on the host.
const DriverLocal = "local"

// Layout of one volume below the store root: <root>/<name>/_data holds the data (the name Docker
// uses, so people find their way), <root>/<name>/volume.json the record.
const (
	dataDir    = "_data"
	recordFile = "volume.json"
	storeLock  = ".lock"
	locksDir   = ".locks"     // per-volume copy-up locks, kept out of the volume directories
	trashPre   = ".removing-" // a volume being removed is renamed to this prefix first
)

// dataMode is the mode of a fresh, empty volume; copy-up replaces it with the image directory's.
const dataMode fs.FileMode = 0o755

// Volume is the record of one named volume, as stored in volume.json and shown by inspect.
type Volume struct {
	Name    string            `json:"name"`
	Driver  string            `json:"driver"`
	Project string            `json:"project,omitempty"` // empty for volumes made by `stack volume create`
	Key     string            `json:"key,omitempty"`     // key in the stack file's volumes:
	Labels  map[string]string `json:"labels,omitempty"`
	// Anonymous is set for volumes without a key (a bare `- /data` in volumes:).
	Anonymous bool      `json:"anonymous,omitempty"`
	Created   time.Time `json:"created"`
	// Mountpoint is the host directory holding the data; computed from the store root on read.
	Mountpoint string `json:"mountpoint"`
	// CopyUp is set once image content was copied into the volume; it is never copied again.
	CopyUp *CopyUp `json:"copy_up,omitempty"`
	// CopyingUp is set while a copy-up runs; found set by the next copy-up, it means a copy was
	// cut short (crash), and the partial content is discarded.
	CopyingUp bool `json:"copying_up,omitempty"`
	// Users are the ids of containers that mount the volume, sorted.
	Users []string `json:"users,omitempty"`
}

// CopyUp records the copy of image content into a volume.
type CopyUp struct {
	At        time.Time `json:"at"`
	Target    string    `json:"target"`              // the path inside the container it came from
	Container string    `json:"container,omitempty"` // the container it was copied for
}

// Spec asks for a volume. Name is the actual volume name; when empty it is Name(Project, Key).
type Spec struct {
	Name      string
	Project   string
	Key       string
	Labels    map[string]string
	External  bool // must already exist; never created
	Anonymous bool
}

// Name is the actual name of the volume a project declares under key: `<project>_<key>`, as
// Compose names it (the spec model computes the same for declared volumes).
func Name(project, key string) string {
	if project == "" {
		return key
	}
	return project + "_" + key
}

// ValidateName reports whether name can be a volume name: it becomes a directory name, so it
// must not contain a slash or start with a dot, and it is bounded (spec.MaxNameLen, the rule
// spec checks with positions) so that the removal directory, ".removing-<name>-<random>",
// stays a legal file name.
func ValidateName(name string) error {
	if !spec.IsObjectName(name) {
		return fmt.Errorf("volume name %q: %w: must match %s and be at most %d characters long", name, ErrInvalid, "^[a-zA-Z0-9][a-zA-Z0-9_.-]*$", spec.MaxNameLen)
	}
	return nil
}

// RandomName returns a fresh name like Docker's anonymous volume names (64 hex digits).
func RandomName() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("random volume name: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// Store is the volume store at <stateRoot>/volumes.
type Store struct {
	root string
	now  func() time.Time
	// afterCopyEntry, when set, runs after each entry copy-up copies (a test seam: a test
	// stops a copy midway to kill its process).
	afterCopyEntry func()
}

// Open opens (creating it, mode 0700) the volume store at root, normally <stateRoot>/volumes.
func Open(root string) (*Store, error) {
	if root == "" {
		return nil, fmt.Errorf("open volume store: %w: empty root", ErrInvalid)
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("open volume store %s: %w", root, err)
	}
	if err := os.MkdirAll(abs, state.DirMode); err != nil {
		return nil, fmt.Errorf("open volume store: %w", err)
	}
	return &Store{root: abs, now: time.Now}, nil
}

// Root is the store's directory.
func (s *Store) Root() string { return s.root }

// DataPath is the host directory holding the data of volume name (whether or not it exists).
func (s *Store) DataPath(name string) string { return filepath.Join(s.root, name, dataDir) }

func (s *Store) recordPath(name string) string { return filepath.Join(s.root, name, recordFile) }

// lock serializes changes to records (create, users, copy-up record, remove) across processes.
func (s *Store) lock() (*state.Lock, error) {
	l, err := state.WaitLock(filepath.Join(s.root, storeLock))
	if err != nil {
		return nil, fmt.Errorf("lock volume store %s: %w", s.root, err)
	}
	return l, nil
}

func (s *Store) read(name string) (*Volume, error) {
	var v Volume
	if err := state.ReadJSON(s.recordPath(name), &v); err != nil {
		if state.IsNotExist(err) {
			return nil, fmt.Errorf("volume %q: %w", name, ErrNotFound)
		}
		return nil, fmt.Errorf("read volume %q: %w", name, err)
	}
	v.Mountpoint = s.DataPath(v.Name)
	return &v, nil
}

func (s *Store) write(v *Volume) error {
	v.Mountpoint = s.DataPath(v.Name)
	sort.Strings(v.Users)
	if err := state.WriteJSON(s.recordPath(v.Name), v); err != nil {
		return fmt.Errorf("write volume %q: %w", v.Name, err)
	}
	return nil
}

// Ensure returns the volume sp asks for, creating it on first use. An external volume must exist:
// it is an error (ErrNotFound) when it does not. An existing volume is returned as it is.
func (s *Store) Ensure(ctx context.Context, sp Spec) (*Volume, error) {
	name := sp.Name
	if name == "" {
		name = Name(sp.Project, sp.Key)
	}
	if err := ValidateName(name); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("ensure volume %q: %w", name, err)
	}
	l, err := s.lock()
	if err != nil {
		return nil, err
	}
	defer l.Unlock()

	v, err := s.read(name)
	if err == nil {
		return v, nil
	}
	if !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	if sp.External {
		return nil, fmt.Errorf("external volume %q: %w: it is declared external, so stack does not create it; create it with `stack volume create %s`", name, ErrNotFound, name)
	}
	// Directories first, record last: a record always means a complete volume; a crash in between
	// leaves a directory without a record, which List ignores and the next Ensure completes.
	data := s.DataPath(name)
	if err := os.MkdirAll(filepath.Dir(data), state.DirMode); err != nil {
		return nil, fmt.Errorf("create volume %q: %w", name, err)
	}
	if err := os.Mkdir(data, dataMode); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("create volume %q: %w", name, err)
	}
	v = &Volume{
		Name:      name,
		Driver:    DriverLocal,
		Project:   sp.Project,
		Key:       sp.Key,
		Labels:    copyLabels(sp.Labels),
		Anonymous: sp.Anonymous,
		Created:   s.now().UTC(),
	}
	if err := s.write(v); err != nil {
		return nil, err
	}
	return v, nil
}

func copyLabels(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// Inspect returns the record of volume name (ErrNotFound when there is none).
func (s *Store) Inspect(name string) (*Volume, error) {
	if err := ValidateName(name); err != nil {
		return nil, err
	}
	return s.read(name)
}

// List returns every volume of the store, sorted by name.
func (s *Store) List() ([]*Volume, error) {
	entries, err := os.ReadDir(s.root)
	if err != nil {
		return nil, fmt.Errorf("list volumes in %s: %w", s.root, err)
	}
	var out []*Volume
	for _, e := range entries {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		v, err := s.read(e.Name())
		if errors.Is(err, ErrNotFound) {
			continue // half-created (crash before the record was written)
		}
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Remove deletes volume name and its data. A volume with recorded users is refused (ErrInUse)
// unless force is set; force also makes a missing volume not an error. Use force only when the
// recorded users are known to be gone (Reconcile drops those that are).
func (s *Store) Remove(name string, force bool) error {
	if err := ValidateName(name); err != nil {
		return err
	}
	l, err := s.lock()
	if err != nil {
		return err
	}
	defer l.Unlock()
	v, err := s.read(name)
	if err != nil {
		if force && errors.Is(err, ErrNotFound) {
			return nil
		}
		return fmt.Errorf("remove %w", err)
	}
	if len(v.Users) > 0 && !force {
		return fmt.Errorf("remove volume %q: %w by container(s) %s", name, ErrInUse, strings.Join(v.Users, ", "))
	}
	return s.removeLocked(name)
}

// removeLocked renames the volume directory away first, so that the volume disappears at once
// even if deleting a large data directory is interrupted; Prune finishes such leftovers.
func (s *Store) removeLocked(name string) error {
	trash, err := os.MkdirTemp(s.root, trashPre+name+"-")
	if err != nil {
		return fmt.Errorf("remove volume %q: %w", name, err)
	}
	dst := filepath.Join(trash, name)
	if err := os.Rename(filepath.Join(s.root, name), dst); err != nil {
		return errors.Join(fmt.Errorf("remove volume %q: %w", name, err), os.Remove(trash))
	}
	os.Remove(filepath.Join(s.root, locksDir, name+".lock"))
	if err := os.RemoveAll(trash); err != nil {
		return fmt.Errorf("remove volume %q: delete data: %w", name, err)
	}
	return nil
}

// Prune removes every volume without users for which match returns true (all of them when match
// is nil), and finishes removals that were interrupted. It returns the names removed.
func (s *Store) Prune(match func(*Volume) bool) ([]string, error) {
	l, err := s.lock()
	if err != nil {
		return nil, err
	}
	defer l.Unlock()
	entries, err := os.ReadDir(s.root)
	if err != nil {
		return nil, fmt.Errorf("prune volumes in %s: %w", s.root, err)
	}
	var errs []error
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), trashPre) {
			if err := os.RemoveAll(filepath.Join(s.root, e.Name())); err != nil {
				errs = append(errs, fmt.Errorf("prune: finish removal %s: %w", e.Name(), err))
			}
		}
	}
	vols, err := s.List()
	if err != nil {
		return nil, err
	}
	var removed []string
	for _, v := range vols {
		if len(v.Users) > 0 || (match != nil && !match(v)) {
			continue
		}
		if err := s.removeLocked(v.Name); err != nil {
			errs = append(errs, fmt.Errorf("prune: %w", err))
			continue
		}
		removed = append(removed, v.Name)
	}
	return removed, errors.Join(errs...)
}
