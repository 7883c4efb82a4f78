package image

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// maxOverlayLayers is overlayfs' limit on lower layers (OVL_MAX_STACK).
const maxOverlayLayers = 500

// LowerDirs returns the unpacked directories of img's layers, top layer first (the order of
// overlayfs' lowerdir option).
func (s *Store) LowerDirs(img *Image) ([]string, error) {
	out := make([]string, 0, len(img.Layers))
	for i := len(img.Layers) - 1; i >= 0; i-- {
		p, err := s.layerPath(img.Layers[i].ChainID)
		if err != nil {
			return nil, err
		}
		d := filepath.Join(p, layerDiff)
		if _, err := os.Stat(d); err != nil {
			return nil, fmt.Errorf("layer %s of image %s: %w", img.Layers[i].Digest, ShortID(img.ID), ErrNotFound)
		}
		out = append(out, d)
	}
	return out, nil
}

// Overlay describes one overlay mount: a container's rootfs.
type Overlay struct {
	Lower  []string // top first
	Upper  string
	Work   string
	Target string
}

// data renders the mount options, naming the lower dirs by lowerNames (the paths themselves, or
// short /proc/self/fd/N aliases of them).
func (o Overlay) data(lowerNames []string) string {
	return "lowerdir=" + strings.Join(lowerNames, ":") + ",upperdir=" + o.Upper + ",workdir=" + o.Work
}

// plan checks o and returns the mount data. The kernel copies at most one page of mount data;
// when the absolute lower paths do not fit (deep images), viaFD is true and the caller opens
// each lower dir and names it /proc/self/fd/N instead (dataFD renders that), which is short
// whatever the depth. Nothing changes the working directory, which a multithreaded Go process
// could not do safely.
func (o Overlay) plan(pageSize int) (data string, viaFD bool, err error) {
	if len(o.Lower) == 0 {
		return "", false, fmt.Errorf("%w: overlay needs at least one lower dir", ErrInvalid)
	}
	if len(o.Lower) > maxOverlayLayers {
		return "", false, fmt.Errorf("%w: %d layers, overlayfs stacks at most %d", ErrInvalid, len(o.Lower), maxOverlayLayers)
	}
	for _, p := range append([]string{o.Upper, o.Work}, o.Lower...) {
		if !filepath.IsAbs(p) || strings.ContainsAny(p, ",:\\\n") {
			return "", false, fmt.Errorf("%w: overlay path %q must be absolute without , : or \\", ErrInvalid, p)
		}
	}
	d := o.data(o.Lower)
	if len(d) < pageSize {
		return d, false, nil
	}
	// Worst case for the fd form: five-digit descriptor numbers.
	worst := make([]string, len(o.Lower))
	for i := range worst {
		worst[i] = "/proc/self/fd/99999"
	}
	if len(o.data(worst)) >= pageSize {
		return "", false, fmt.Errorf("%w: overlay options for %d layers exceed a page even with short names", ErrInvalid, len(o.Lower))
	}
	return "", true, nil
}

// dataFD renders the mount data naming each lower dir by its open descriptor.
func (o Overlay) dataFD(fds []int) string {
	names := make([]string, len(fds))
	for i, fd := range fds {
		names[i] = "/proc/self/fd/" + strconv.Itoa(fd)
	}
	return o.data(names)
}

// Mount performs the overlay mount o describes (root only).
func (o Overlay) Mount() error {
	data, viaFD, err := o.plan(os.Getpagesize())
	if err != nil {
		return fmt.Errorf("mount overlay on %s: %w", o.Target, err)
	}
	if viaFD {
		fds := make([]int, 0, len(o.Lower))
		defer func() {
			for _, fd := range fds {
				unix.Close(fd)
			}
		}()
		for _, l := range o.Lower {
			fd, err := unix.Open(l, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
			if err != nil {
				return fmt.Errorf("mount overlay on %s: open lower dir: %w", o.Target, &os.PathError{Op: "open", Path: l, Err: err})
			}
			fds = append(fds, fd)
		}
		data = o.dataFD(fds)
	}
	if err := unix.Mount("overlay", o.Target, "overlay", 0, data); err != nil {
		return fmt.Errorf("mount overlay on %s (%d layers): %w", o.Target, len(o.Lower), &os.PathError{Op: "mount", Path: o.Target, Err: err})
	}
	return nil
}

// MountRootfs gives a container its copy-on-write rootfs: the image ref's layers under
// containerDir/upper (with containerDir/work), mounted on containerDir/rootfs. It returns the
// rootfs path and a cleanup that unmounts it (upper stays: it is the container's data).
// containerDir must exist or be creatable; it is the caller's. Root only.
func (s *Store) MountRootfs(ctx context.Context, ref, containerDir string) (rootfs string, cleanup func() error, err error) {
	if err := ctx.Err(); err != nil {
		return "", nil, err
	}
	img, err := s.Get(ref)
	if err != nil {
		return "", nil, err
	}
	lower, err := s.LowerDirs(img)
	if err != nil {
		return "", nil, err
	}
	o, err := prepareOverlay(containerDir, lower)
	if err != nil {
		return "", nil, err
	}
	if err := o.Mount(); err != nil {
		return "", nil, err
	}
	return o.Target, func() error { return unmount(o.Target) }, nil
}

// prepareOverlay creates the upper, work and mount point directories in containerDir (an
// image without layers gets an empty lower dir).
func prepareOverlay(containerDir string, lower []string) (Overlay, error) {
	dir, err := filepath.Abs(containerDir)
	if err != nil {
		return Overlay{}, err
	}
	o := Overlay{Lower: lower, Upper: filepath.Join(dir, "upper"), Work: filepath.Join(dir, "work"), Target: filepath.Join(dir, "rootfs")}
	if len(lower) == 0 {
		o.Lower = []string{filepath.Join(dir, "empty")}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return o, err
	}
	// upper becomes the container's "/": 0755 like any root directory.
	for _, d := range []string{o.Upper, o.Work, o.Target, filepath.Join(dir, "empty")} {
		if err := os.Mkdir(d, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			return o, err
		}
		if err := os.Chmod(d, 0o755); err != nil {
			return o, err
		}
	}
	return o, nil
}

func unmount(target string) error {
	err := unix.Unmount(target, 0)
	if errors.Is(err, unix.EBUSY) {
		err = unix.Unmount(target, unix.MNT_DETACH)
	}
	if err != nil && !errors.Is(err, unix.EINVAL) { // EINVAL: not mounted any more
		return fmt.Errorf("unmount rootfs: %w", &os.PathError{Op: "umount", Path: target, Err: err})
	}
	return nil
}
