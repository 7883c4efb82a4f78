package volumes

import (
	"errors"
	"fmt"
	"slices"
)

// In-use tracking lives in the volume's record, not in a daemon's memory: `stack volume rm` in
// another process sees the users a `stack up` recorded, and Reconcile repairs what a crash left.

// Use records container id as a user of volume name. Recording the same user twice is a no-op.
func (s *Store) Use(name, containerID string) error {
	_, err := s.use(name, containerID)
	return err
}

// use is Use that reports whether the user was added (false: it was recorded already).
func (s *Store) use(name, containerID string) (added bool, err error) {
	if containerID == "" {
		return false, fmt.Errorf("use volume %q: %w: empty container id", name, ErrInvalid)
	}
	if err := ValidateName(name); err != nil {
		return false, err
	}
	err = s.update(name, func(v *Volume) bool {
		if slices.Contains(v.Users, containerID) {
			return false
		}
		v.Users = append(v.Users, containerID)
		added = true
		return true
	})
	return added, err
}

// Release drops container id from the users of volume name. Releasing a volume that no longer
// exists, or a user that is not recorded, is not an error: removal of a container must not fail
// on it.
func (s *Store) Release(name, containerID string) error {
	if err := ValidateName(name); err != nil {
		return err
	}
	err := s.update(name, func(v *Volume) bool { return dropUsers(v, func(id string) bool { return id == containerID }) })
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	return err
}

// ReleaseContainer drops container id from the users of every volume.
func (s *Store) ReleaseContainer(containerID string) error {
	return s.updateAll(func(v *Volume) bool { return dropUsers(v, func(id string) bool { return id == containerID }) })
}

// Reconcile drops every recorded user that is not in live (the ids of containers that still
// exist, running or not), e.g. after a crash between a container's removal and its Release.
func (s *Store) Reconcile(live map[string]bool) error {
	return s.updateAll(func(v *Volume) bool { return dropUsers(v, func(id string) bool { return !live[id] }) })
}

func dropUsers(v *Volume, drop func(string) bool) bool {
	n := len(v.Users)
	v.Users = slices.DeleteFunc(v.Users, drop)
	return len(v.Users) != n
}

// update applies change to the record of volume name under the store lock and writes it back
// when change reports a modification.
func (s *Store) update(name string, change func(*Volume) bool) error {
	l, err := s.lock()
	if err != nil {
		return err
	}
	defer l.Unlock()
	v, err := s.read(name)
	if err != nil {
		return err
	}
	if !change(v) {
		return nil
	}
	return s.write(v)
}

func (s *Store) updateAll(change func(*Volume) bool) error {
	l, err := s.lock()
	if err != nil {
		return err
	}
	defer l.Unlock()
	vols, err := s.List()
	if err != nil {
		return err
	}
	var errs []error
	for _, v := range vols {
		if change(v) {
			if err := s.write(v); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}
