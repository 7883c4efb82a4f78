package volumes

import (
	"errors"
	"fmt"

	"github.com/stackrun/stack/spec"
)

// The engine works per project (observe, `down -v`); these map its view onto the store. A volume
// belongs to the project recorded when it was created, never to whoever guesses its name.

// SpecFor is the Spec of a top-level volume of project: its actual name (v.Name, or
// `<project>_<key>` when empty), labels, and whether it is external. An external volume is not
// recorded as the project's: `down -v` must not remove it.
func SpecFor(project string, v *spec.Volume) Spec {
	sp := Spec{Name: v.Name, Project: project, Key: v.Key, Labels: v.Labels, External: v.External}
	if sp.Name == "" {
		sp.Name = Name(project, v.Key)
	}
	if v.External {
		sp.Project = ""
	}
	return sp
}

// ListProject returns the volumes recorded as project's (anonymous ones included), by name.
func (s *Store) ListProject(project string) ([]*Volume, error) {
	all, err := s.List()
	if err != nil {
		return nil, err
	}
	var out []*Volume
	for _, v := range all {
		if v.Project == project {
			out = append(out, v)
		}
	}
	return out, nil
}

// RemoveOwned removes volume name for project (`down -v`): a volume that is not recorded as the
// project's (external, or another project's) is refused with ErrInvalid; one in use with
// ErrInUse; a missing one is not an error.
func (s *Store) RemoveOwned(project, name string) error {
	v, err := s.Inspect(name)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if v.Project != project {
		owner := "no project (external or created with `stack volume create`)"
		if v.Project != "" {
			owner = "project " + v.Project
		}
		return fmt.Errorf("remove volume %q for project %s: %w: it belongs to %s", name, project, ErrInvalid, owner)
	}
	err = s.Remove(name, false)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	return err
}
