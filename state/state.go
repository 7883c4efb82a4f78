// Package state owns stack's on-disk records: atomic file writes (temp file, fsync, rename,
// fsync of the directory), JSON records, and advisory locks (flock) that serialize work on one
// project or one store. It caches nothing the kernel can tell; callers read records back.
package state

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// Directory and file modes for everything under the state and run roots: not readable or
// traversable by other users, so nobody else can reach a container's rootfs or a record.
const (
	DirMode  fs.FileMode = 0o700
	FileMode fs.FileMode = 0o600
)

// WriteFile writes data to path atomically: readers see the old content or the new, never a
// mix, and a crash leaves no partial file under path.
func WriteFile(path string, data []byte, perm fs.FileMode) (err error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, DirMode); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			os.Remove(tmp)
		}
	}()
	if _, err = f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = f.Chmod(perm); err != nil {
		f.Close()
		return err
	}
	if err = f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync %s: %w", path, err)
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp, path); err != nil {
		return err
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

// WriteJSON marshals v (indented) and writes it atomically with FileMode.
func WriteJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encode %s: %w", path, err)
	}
	return WriteFile(path, append(b, '\n'), FileMode)
}

// ReadJSON reads a record written by WriteJSON. A missing file is reported with an error that
// satisfies errors.Is(err, fs.ErrNotExist).
func ReadJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("decode %s: %w", path, err)
	}
	return nil
}

// Exists reports whether path exists (false on any error other than "exists").
func Exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

// IsNotExist is errors.Is(err, fs.ErrNotExist), for callers that read records.
func IsNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }

// Lock is an exclusive advisory lock held on a file (flock). The lock is released by Unlock or
// when the process dies, so a SIGKILLed command never leaves a project locked.
type Lock struct{ f *os.File }

// TryLock takes the lock at path without waiting; ok is false when another process holds it.
func TryLock(path string) (l *Lock, ok bool, err error) {
	return lock(path, unix.LOCK_EX|unix.LOCK_NB)
}

// WaitLock takes the lock at path, waiting as long as another process holds it.
func WaitLock(path string) (*Lock, error) {
	l, _, err := lock(path, unix.LOCK_EX)
	return l, err
}

func lock(path string, how int) (*Lock, bool, error) {
	if err := os.MkdirAll(filepath.Dir(path), DirMode); err != nil {
		return nil, false, err
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|unix.O_CLOEXEC, FileMode)
	if err != nil {
		return nil, false, err
	}
	for {
		err = unix.Flock(int(f.Fd()), how)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if errors.Is(err, unix.EWOULDBLOCK) {
		f.Close()
		return nil, false, nil
	}
	if err != nil {
		f.Close()
		return nil, false, &os.PathError{Op: "flock", Path: path, Err: err}
	}
	return &Lock{f: f}, true, nil
}

// File is the open file the lock is held on: a process that replaces itself (execve) keeps
// the lock by keeping this file open across the exec and taking it back with HeldLock.
func (l *Lock) File() *os.File { return l.f }

// HeldLock takes back a lock this process already holds on f (see File).
func HeldLock(f *os.File) *Lock { return &Lock{f: f} }

// Unlock releases the lock. It is safe to call on a nil Lock.
func (l *Lock) Unlock() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := l.f.Close() // closing the only fd releases the flock
	l.f = nil
	return err
}
