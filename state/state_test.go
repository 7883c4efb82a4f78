package state

import (
	"os"
	"path/filepath"
	"testing"
)

func TestWriteJSONRoundTripAndMode(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "a", "rec.json")
	in := map[string]int{"x": 1}
	if err := WriteJSON(p, in); err != nil {
		t.Fatal(err)
	}
	var out map[string]int
	if err := ReadJSON(p, &out); err != nil {
		t.Fatal(err)
	}
	if out["x"] != 1 {
		t.Fatalf("got %v", out)
	}
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != FileMode {
		t.Fatalf("mode %v, want %v", fi.Mode().Perm(), FileMode)
	}
	ents, _ := os.ReadDir(filepath.Dir(p))
	if len(ents) != 1 {
		t.Fatalf("temp files left: %v", ents)
	}
	if err := ReadJSON(filepath.Join(dir, "missing"), &out); !IsNotExist(err) {
		t.Fatalf("missing record: got %v", err)
	}
}

func TestTryLockExcludes(t *testing.T) {
	p := filepath.Join(t.TempDir(), "lock")
	l1, ok, err := TryLock(p)
	if err != nil || !ok {
		t.Fatalf("first lock: ok=%v err=%v", ok, err)
	}
	// flock locks belong to the open file description, so a second open in this process conflicts.
	if _, ok, err := TryLock(p); err != nil || ok {
		t.Fatalf("second lock while held: ok=%v err=%v", ok, err)
	}
	if err := l1.Unlock(); err != nil {
		t.Fatal(err)
	}
	l2, ok, err := TryLock(p)
	if err != nil || !ok {
		t.Fatalf("lock after unlock: ok=%v err=%v", ok, err)
	}
	l2.Unlock()
}
