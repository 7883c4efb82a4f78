package build

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/stackrun/stack/image"
	"github.com/stackrun/stack/state"
)

// A step's cache key is the sha256 of its parent's key, the instruction as expanded (and, for
// COPY and ADD from the context, the content of what it copies). Its record is the image state
// the step produced: the config and the layers. Records live under the store (BuildCacheDir),
// so they survive across runs; one whose layers were garbage-collected is a miss.

// cacheRecord is the state after one step.
type cacheRecord struct {
	Config *v1.ConfigFile `json:"config"`
	Layers []image.Layer  `json:"layers"`
}

// stepKey derives a step's key from its parent's and the parts that determine its result.
func stepKey(parent string, parts ...string) string {
	h := sha256.New()
	h.Write([]byte(parent))
	for _, p := range parts {
		h.Write([]byte{0})
		h.Write([]byte(p))
	}
	return hex.EncodeToString(h.Sum(nil))
}

func jsonString(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return ""
	}
	return string(b)
}

func cachePath(store *image.Store, key string) string {
	return filepath.Join(store.BuildCacheDir(), key+".json")
}

// lookup returns the record of key when it exists and its layers are all in the store.
func lookup(store *image.Store, key string) (*cacheRecord, bool) {
	var rec cacheRecord
	if err := state.ReadJSON(cachePath(store, key), &rec); err != nil || rec.Config == nil {
		return nil, false
	}
	if !store.HasLayers(rec.Layers) {
		return nil, false
	}
	return &rec, true
}

func record(store *image.Store, key string, cfg *v1.ConfigFile, layers []image.Layer) error {
	return state.WriteJSON(cachePath(store, key), cacheRecord{Config: cfg, Layers: layers})
}

// PruneCache removes the build cache records whose layers are no longer in the store (after
// an image prune, say) and returns how many it removed. Records are otherwise kept: they are
// small, and each one saves a step.
func PruneCache(store *image.Store) (int, error) {
	ents, err := os.ReadDir(store.BuildCacheDir())
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	n := 0
	var errs []error
	for _, e := range ents {
		key, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok {
			continue
		}
		if _, ok := lookup(store, key); ok {
			continue
		}
		if err := os.Remove(filepath.Join(store.BuildCacheDir(), e.Name())); err != nil {
			errs = append(errs, err)
			continue
		}
		n++
	}
	return n, errors.Join(errs...)
}
