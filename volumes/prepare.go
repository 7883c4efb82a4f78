package volumes

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/stackrun/stack/spec"
)

// bindSourceMode is the mode of a bind source directory created because it was missing.
const bindSourceMode fs.FileMode = 0o755

// Container is the container Prepare works for.
type Container struct {
	// ID is recorded as a user of each volume the container mounts (Use), so that `volume rm`
	// refuses them until the container is removed (ReleaseContainer).
	ID string
	// Rootfs is the container's root filesystem before any mount: the copy-up source and where
	// targets are checked (ResolveTarget). Empty skips both.
	Rootfs string
}

// Prepare does the host side of a plan for container c, in plan order: checks each target
// against the rootfs, ensures each volume (creating it on first use), records c as its user and
// copies image content up into it; creates missing bind sources where allowed and checks bind
// sources again after resolving host symlinks. It returns the OCI mounts for the runtime, bind
// sources replaced by their resolved paths. On failure it releases the volumes it recorded c in.
func (s *Store) Prepare(ctx context.Context, c Container, plan []Planned) ([]specs.Mount, error) {
	if c.ID == "" {
		return nil, fmt.Errorf("prepare mounts: %w: empty container id", ErrInvalid)
	}
	var (
		out  []specs.Mount
		used []string
	)
	undo := func(err error) ([]specs.Mount, error) {
		errs := []error{fmt.Errorf("prepare mounts of container %s: %w", c.ID, err)}
		for _, name := range used {
			if rerr := s.Release(name, c.ID); rerr != nil {
				errs = append(errs, fmt.Errorf("undo: %w", rerr))
			}
		}
		return nil, errors.Join(errs...)
	}
	for _, p := range plan {
		m := p.Mount
		m.Options = append([]string(nil), p.Mount.Options...)
		if c.Rootfs != "" {
			if _, err := ResolveTarget(c.Rootfs, m.Destination); err != nil {
				return undo(err)
			}
		}
		switch p.Type {
		case spec.MountVolume:
			if p.Volume == nil {
				return undo(fmt.Errorf("mount %s: %w: volume mount without a volume", m.Destination, ErrInvalid))
			}
			v, err := s.Ensure(ctx, *p.Volume)
			if err != nil {
				return undo(fmt.Errorf("mount %s: %w", m.Destination, err))
			}
			if err := s.Use(v.Name, c.ID); err != nil {
				return undo(fmt.Errorf("mount %s: %w", m.Destination, err))
			}
			used = append(used, v.Name)
			if !p.NoCopy && c.Rootfs != "" {
				if _, err := s.CopyUp(ctx, v.Name, c.Rootfs, m.Destination, c.ID); err != nil {
					return undo(fmt.Errorf("mount %s: %w", m.Destination, err))
				}
			}
			m.Source = v.Mountpoint
		case spec.MountBind:
			src, err := prepareBindSource(p)
			if err != nil {
				return undo(fmt.Errorf("mount %s: %w", m.Destination, err))
			}
			m.Source = src
		case spec.MountTmpfs:
		default:
			return undo(fmt.Errorf("mount %s: %w: mount type %q", m.Destination, ErrInvalid, p.Type))
		}
		out = append(out, m)
	}
	return out, nil
}

// prepareBindSource creates a missing source when the plan allows it, then resolves the source's
// symlinks on the host and checks the result again: a project-relative ./data that is a symlink to
// / is as dangerous as / itself.
func prepareBindSource(p Planned) (string, error) {
	src := p.Mount.Source
	if _, err := os.Stat(src); err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("bind source: %w", err)
		}
		if !p.CreateSource {
			return "", fmt.Errorf("bind source %s: %w: it does not exist (long syntax without create_host_path: true does not create it)", src, ErrNotFound)
		}
		if err := os.MkdirAll(src, bindSourceMode); err != nil {
			return "", fmt.Errorf("create bind source: %w", err)
		}
	}
	resolved, err := filepath.EvalSymlinks(src)
	if err != nil {
		return "", fmt.Errorf("bind source %s: %w", src, err)
	}
	if !p.AllowHost {
		var prot []string
		for _, r := range p.Protected {
			// The roots may be reached through symlinks as well (/var/lib -> /data/lib).
			if rr, err := filepath.EvalSymlinks(r); err == nil {
				prot = append(prot, rr)
			}
			prot = append(prot, r)
		}
		if err := checkHostSource(resolved, prot); err != nil {
			if resolved != src {
				return "", fmt.Errorf("%s resolves to %s: %w", src, resolved, err)
			}
			return "", err
		}
	}
	return resolved, nil
}
