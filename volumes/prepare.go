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
// sources replaced by their resolved paths. On failure it releases the volumes it recorded c in
// (not those c already used, e.g. on a restart).
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
		if err := checkTarget(c.Rootfs, out, m.Destination); err != nil {
			return undo(err)
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
			added, err := s.use(v.Name, c.ID)
			if err != nil {
				return undo(fmt.Errorf("mount %s: %w", m.Destination, err))
			}
			if added {
				used = append(used, v.Name) // a user recorded before this call stays on failure
			}
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

// prepareBindSource resolves the source's symlinks on the host and checks the result again (a
// project-relative ./data that is a symlink to / is as dangerous as / itself), then creates a
// missing source when the plan allows it. The check comes first, on the longest existing part of
// the path, so that a refused source is not created either.
func prepareBindSource(p Planned) (string, error) {
	src := p.Mount.Source
	resolved, missing, err := resolveExisting(src)
	if err != nil {
		return "", fmt.Errorf("bind source %s: %w", src, err)
	}
	if err := checkResolved(p, src, resolved); err != nil {
		return "", err
	}
	if missing {
		if !p.CreateSource {
			return "", fmt.Errorf("bind source %s: %w: it does not exist (long syntax without create_host_path: true does not create it)", src, ErrNotFound)
		}
		if err := os.MkdirAll(resolved, bindSourceMode); err != nil {
			return "", fmt.Errorf("create bind source: %w", err)
		}
		// Resolve once more: something may have appeared between the check and the mkdir.
		again, err := filepath.EvalSymlinks(src)
		if err != nil {
			return "", fmt.Errorf("bind source %s: %w", src, err)
		}
		if err := checkResolved(p, src, again); err != nil {
			return "", err
		}
		resolved = again
	}
	return resolved, nil
}

// resolveExisting resolves the symlinks of the longest existing prefix of p (absolute, clean) and
// appends the rest; missing reports whether p itself does not exist.
func resolveExisting(p string) (resolved string, missing bool, err error) {
	return resolveExistingHops(p, 0)
}

func resolveExistingHops(p string, hops int) (string, bool, error) {
	if hops > maxSymlinks {
		return "", false, errTooManyLinks
	}
	existing, rest := p, ""
	for {
		_, err := os.Lstat(existing)
		if err == nil {
			break
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return "", false, err
		}
		rest = filepath.Join(filepath.Base(existing), rest)
		existing = filepath.Dir(existing)
	}
	r, err := filepath.EvalSymlinks(existing)
	if errors.Is(err, fs.ErrNotExist) {
		// A dangling symlink: what it points to would be created; follow it as far as it exists.
		target, err := os.Readlink(existing)
		if err != nil {
			return "", false, err
		}
		if !filepath.IsAbs(target) {
			target = filepath.Join(filepath.Dir(existing), target)
		}
		r, _, err := resolveExistingHops(filepath.Clean(target), hops+1)
		if err != nil {
			return "", false, err
		}
		return filepath.Join(r, rest), true, nil
	}
	if err != nil {
		return "", false, err
	}
	return filepath.Join(r, rest), rest != "", nil
}

func checkResolved(p Planned, src, resolved string) error {
	if p.AllowHost {
		return nil
	}
	var prot []string
	for _, r := range p.Protected {
		// The roots may be reached through symlinks as well (/var/lib -> /data/lib).
		if rr, err := filepath.EvalSymlinks(r); err == nil && rr != r {
			prot = append(prot, rr)
		}
		prot = append(prot, r)
	}
	if err := checkHostSource(resolved, prot); err != nil {
		if resolved != src {
			return fmt.Errorf("%s resolves to %s: %w", src, resolved, err)
		}
		return err
	}
	if p.Confine != "" {
		dir := p.Confine
		if d, err := filepath.EvalSymlinks(dir); err == nil {
			dir = d // the project directory itself may be reached through a symlink
		}
		if !within(dir, resolved) {
			return fmt.Errorf("%w: bind source %s is inside the project directory %s but resolves through a symlink to %s, outside it; "+
				"write the real path in the stack file, or set the label %s=true on the service",
				ErrRefused, src, p.Confine, resolved, LabelAllowHostMount)
		}
	}
	return nil
}

// checkTarget runs ResolveTarget where the mount will really land: below an earlier mount of the
// same container (a volume at /data, then a bind at /data/conf) that is the earlier mount's
// source, whose content a container may have written (a planted conf -> /etc); otherwise the
// rootfs. A tmpfs parent is empty, so nothing below it needs checking.
func checkTarget(rootfs string, earlier []specs.Mount, dest string) error {
	var parent *specs.Mount
	for i := range earlier {
		e := &earlier[i]
		if e.Destination != dest && within(e.Destination, dest) && (parent == nil || len(e.Destination) > len(parent.Destination)) {
			parent = e
		}
	}
	switch {
	case parent == nil:
		if rootfs == "" {
			return nil
		}
		_, err := ResolveTarget(rootfs, dest)
		return err
	case parent.Type == "tmpfs":
		return nil
	default:
		if _, err := ResolveTarget(parent.Source, "/"+rel(parent.Destination, dest)); err != nil {
			return fmt.Errorf("below the mount at %s: %w", parent.Destination, err)
		}
		return nil
	}
}
