package image

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/stackrun/stack/state"
)

// flock is a shared or exclusive flock on a file. state.Lock only knows exclusive locks; the
// store needs readers (every pull) and a writer (garbage collection).
type flock struct{ f *os.File }

func sharedLock(path string) (*flock, error) { return takeFlock(path, unix.LOCK_SH) }

func takeFlock(path string, how int) (*flock, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|unix.O_CLOEXEC, state.FileMode)
	if err != nil {
		return nil, err
	}
	for {
		err = unix.Flock(int(f.Fd()), how)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, &os.PathError{Op: "flock", Path: path, Err: err}
	}
	return &flock{f}, nil
}

func (l *flock) Unlock() error { return l.f.Close() }

// Remove removes the image named by ref. When ref is one of several tags of the image, only
// that tag goes. An image a container uses (Store.InUse) is refused with ErrInUse unless force
// is set; forced, it only loses its tags and stays until no container uses it. Layers and
// blobs no image needs any more are freed.
func (s *Store) Remove(ref string, force bool) (*Image, error) {
	l, err := state.WaitLock(filepath.Join(s.root, "store.lock"))
	if err != nil {
		return nil, err
	}
	recs, err := s.records()
	if err != nil {
		l.Unlock()
		return nil, err
	}
	img, err := find(recs, ref)
	if err != nil {
		l.Unlock()
		return nil, err
	}
	err = s.removeLocked(img, ref, force)
	l.Unlock()
	if err != nil {
		return nil, err
	}
	// Collect garbage only if no pull is running right now; otherwise the next prune will.
	if _, err := s.collect(false); err != nil {
		return img, fmt.Errorf("removed image %s, then: %w", img.ID, err)
	}
	return img, nil
}

func (s *Store) removeLocked(img *Image, ref string, force bool) error {
	if canon, err := canonicalRef(ref); err == nil && contains(img.RepoTags, canon) && len(img.RepoTags) > 1 {
		img.RepoTags = without(img.RepoTags, []string{canon})
		return s.writeRecord(img)
	}
	if s.InUse != nil && s.InUse(img.ID) {
		if !force {
			return fmt.Errorf("remove image %s: %w by a container (use -f to untag it)", ShortID(img.ID), ErrInUse)
		}
		img.RepoTags = nil
		return s.writeRecord(img)
	}
	h, err := digestHex(img.ID)
	if err != nil {
		return err
	}
	if err := os.Remove(filepath.Join(s.root, recordsDir, h+".json")); err != nil {
		return fmt.Errorf("remove image %s: %w", img.ID, err)
	}
	return nil
}

// PruneReport says what Prune freed.
type PruneReport struct {
	Images    []string // IDs of removed untagged images
	Layers    int
	Blobs     int
	TempFiles int
}

// Prune removes untagged images no container uses, then every layer, blob and temporary file
// nothing references. It waits for running pulls to finish.
func (s *Store) Prune() (PruneReport, error) {
	var rep PruneReport
	l, err := state.WaitLock(filepath.Join(s.root, "store.lock"))
	if err != nil {
		return rep, err
	}
	recs, err := s.records()
	if err == nil {
		for _, r := range recs {
			if len(r.RepoTags) > 0 || (s.InUse != nil && s.InUse(r.ID)) {
				continue
			}
			if err = s.removeLocked(r, r.ID, false); err != nil {
				break
			}
			rep.Images = append(rep.Images, r.ID)
		}
	}
	l.Unlock()
	if err != nil {
		return rep, err
	}
	g, err := s.collect(true)
	rep.Layers, rep.Blobs, rep.TempFiles = g.Layers, g.Blobs, g.TempFiles
	return rep, err
}

// collect deletes layers and blobs no record references and everything in tmp/. It holds
// gc.lock exclusively, so no pull is between downloading a blob and recording it. With wait
// false it gives up silently when a pull holds the lock.
func (s *Store) collect(wait bool) (PruneReport, error) {
	var rep PruneReport
	how := unix.LOCK_EX
	if !wait {
		how |= unix.LOCK_NB
	}
	gcl, err := takeFlock(filepath.Join(s.root, "gc.lock"), how)
	if errors.Is(err, unix.EWOULDBLOCK) {
		return rep, nil
	}
	if err != nil {
		return rep, err
	}
	defer gcl.Unlock()
	sl, err := state.WaitLock(filepath.Join(s.root, "store.lock"))
	if err != nil {
		return rep, err
	}
	defer sl.Unlock()
	recs, err := s.records()
	if err != nil {
		return rep, err
	}
	blobs, layers := map[string]bool{}, map[string]bool{}
	for _, r := range recs {
		blobs[strings.TrimPrefix(r.ID, "sha256:")] = true
		blobs[strings.TrimPrefix(r.ManifestDigest, "sha256:")] = true
		for _, l := range r.Layers {
			blobs[strings.TrimPrefix(l.Digest, "sha256:")] = true
			layers[strings.TrimPrefix(l.ChainID, "sha256:")] = true
		}
	}
	var errs []error
	sweep := func(dir string, keep map[string]bool, n *int) {
		ents, err := os.ReadDir(dir)
		if err != nil {
			errs = append(errs, err)
			return
		}
		for _, e := range ents {
			if keep != nil && keep[e.Name()] {
				continue
			}
			if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
				errs = append(errs, err)
				continue
			}
			*n++
		}
	}
	sweep(filepath.Join(s.root, layersDir), layers, &rep.Layers)
	sweep(filepath.Join(s.root, blobsDir), blobs, &rep.Blobs)
	sweep(filepath.Join(s.root, tmpDir), nil, &rep.TempFiles)
	// Lock files of blobs and layers: nobody waits on them while gc.lock is exclusive.
	var locks int
	sweep(filepath.Join(s.root, locksDir), nil, &locks)
	return rep, errors.Join(errs...)
}

// ShortID is the 12-hex-digit form of an image ID that `image ls` shows.
func ShortID(id string) string {
	h := strings.TrimPrefix(id, "sha256:")
	if len(h) > 12 {
		h = h[:12]
	}
	return h
}
