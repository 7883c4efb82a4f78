package state

import (
	"fmt"
	"os"
	"testing"
)

func TestCache(t *testing.T) {
	c := Cache{Dir: t.TempDir() + "/cache"}
	if _, ok := c.Get("k"); ok {
		t.Fatal("hit in an empty cache")
	}
	if err := c.Put("k", []byte("v1")); err != nil {
		t.Fatal(err)
	}
	if err := c.Put("k", []byte("v2")); err != nil {
		t.Fatal(err)
	}
	if b, ok := c.Get("k"); !ok || string(b) != "v2" {
		t.Fatalf("Get = %q %v, want v2", b, ok)
	}
	if fi, err := os.Stat(c.Dir); err != nil || fi.Mode().Perm() != DirMode {
		t.Fatalf("cache dir mode: %v %v", fi.Mode(), err)
	}
	for i := 0; i < maxCacheEntries+10; i++ {
		if err := c.Put(fmt.Sprint("e", i), []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	ents, err := os.ReadDir(c.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) > maxCacheEntries {
		t.Fatalf("%d entries kept, want at most %d", len(ents), maxCacheEntries)
	}
	if _, ok := c.Get(fmt.Sprint("e", maxCacheEntries+9)); !ok {
		t.Fatal("the newest entry was trimmed")
	}
}
