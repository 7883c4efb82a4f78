package state

import (
	"os"
	"path/filepath"
	"sort"
)

// Cache is a directory of derived data that can always be made again (loaded stack files): a
// file per key, written whole by rename but not synced, since a lost or torn entry is only a
// miss for the reader, which checks what it reads.
type Cache struct{ Dir string }

// Get returns the entry stored under key.
func (c Cache) Get(key string) ([]byte, bool) {
	b, err := os.ReadFile(filepath.Join(c.Dir, key))
	return b, err == nil
}

// Put stores data under key, replacing what was there.
func (c Cache) Put(key string, data []byte) error {
	if err := os.MkdirAll(c.Dir, DirMode); err != nil {
		return err
	}
	f, err := os.CreateTemp(c.Dir, ".tmp-*")
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), filepath.Join(c.Dir, key))
	}
	if err != nil {
		os.Remove(f.Name())
		return err
	}
	c.trim()
	return nil
}

// maxCacheEntries bounds a cache directory; past it, the least recently written half goes.
const maxCacheEntries = 128

func (c Cache) trim() {
	ents, err := os.ReadDir(c.Dir)
	if err != nil || len(ents) <= maxCacheEntries {
		return
	}
	type aged struct {
		name string
		mod  int64
	}
	var all []aged
	for _, e := range ents {
		if fi, err := e.Info(); err == nil {
			all = append(all, aged{e.Name(), fi.ModTime().UnixNano()})
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i].mod < all[j].mod })
	for _, a := range all[:len(all)-maxCacheEntries/2] {
		os.Remove(filepath.Join(c.Dir, a.name))
	}
}
