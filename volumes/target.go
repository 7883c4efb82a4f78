package volumes

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	securejoin "github.com/cyphar/filepath-securejoin"
)

// maxSymlinks bounds the symlinks followed for one target, like the kernel's MAXSYMLINKS.
const maxSymlinks = 40

// ResolveTarget returns the host path where a mount at target (an absolute path inside the
// container) lands in rootfs, or an error (ErrRefused) when the image uses a symlink to send the
// mount somewhere else than where it seems to go.
//
// Directories above the target are resolved inside rootfs, as the runtime does with securejoin:
// an absolute symlink there means the same path inside the container (Debian's /var/run -> /run,
// so /var/run/docker.sock works). The target itself is held to more: if it is a symlink whose
// value points out of the rootfs as the host reads it (absolute, or climbing above the root with
// ".."), it is refused unless, resolved inside the rootfs, it names an existing non-directory.
// That keeps the common file case (a bind of the host's /etc/localtime over an image whose
// /etc/localtime -> /usr/share/zoneinfo/UTC) and refuses an image whose /data -> /etc: a
// directory mount there would hide the container's /etc and, with any runtime that follows the
// link on the host, cover the host's /etc.
func ResolveTarget(rootfs, target string) (string, error) {
	if !filepath.IsAbs(target) {
		return "", fmt.Errorf("mount target %q: %w: must be an absolute path", target, ErrInvalid)
	}
	cur := filepath.Clean(target)
	if cur == "/" {
		return "", fmt.Errorf("mount target %q: %w: cannot mount over the container's /", target, ErrInvalid)
	}
	root, err := filepath.Abs(rootfs)
	if err != nil {
		return "", fmt.Errorf("mount target %s: rootfs %s: %w", target, rootfs, err)
	}
	for hops := 0; ; hops++ {
		if hops > maxSymlinks {
			return "", fmt.Errorf("mount target %s in rootfs %s: %w", target, root, &os.PathError{Op: "resolve", Path: target, Err: errTooManyLinks})
		}
		parent, err := securejoin.SecureJoin(root, filepath.Dir(cur))
		if err != nil {
			return "", fmt.Errorf("mount target %s: resolve in rootfs %s: %w", target, root, err)
		}
		host := filepath.Join(parent, filepath.Base(cur))
		fi, err := os.Lstat(host)
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
			return host, nil // the runtime creates the mount point, inside the rootfs
		}
		if err != nil {
			return "", fmt.Errorf("mount target %s in rootfs %s: %w", target, root, err)
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			return host, nil
		}
		link, err := os.Readlink(host)
		if err != nil {
			return "", fmt.Errorf("mount target %s in rootfs %s: %w", target, root, err)
		}
		next := filepath.Join(parent, link)
		if filepath.IsAbs(link) || !within(root, next) {
			if ok, resolved := inScopeNonDir(root, cur); ok {
				return resolved, nil
			}
			return "", fmt.Errorf("mount target %s: %w: in the image, %s is a symlink to %q, which leads out of the container's rootfs; "+
				"a mount there would not land where the stack file says (remove the symlink from the image or mount elsewhere)",
				target, ErrRefused, "/"+rel(root, host), link)
		}
		cur = "/" + rel(root, next)
		if cur == "/" {
			return "", fmt.Errorf("mount target %s: %w: in the image, %s is a symlink to the container's /", target, ErrRefused, "/"+rel(root, host))
		}
	}
}

var errTooManyLinks = errors.New("too many levels of symbolic links")

// inScopeNonDir reports whether p, resolved inside root, is an existing file (not a directory).
func inScopeNonDir(root, p string) (bool, string) {
	resolved, err := securejoin.SecureJoin(root, p)
	if err != nil {
		return false, ""
	}
	fi, err := os.Lstat(resolved)
	if err != nil || fi.IsDir() || fi.Mode()&fs.ModeSymlink != 0 {
		return false, ""
	}
	return true, resolved
}

// within reports whether p is root or below it (lexically; both clean and absolute).
func within(root, p string) bool {
	if p == root {
		return true
	}
	if root == "/" {
		return strings.HasPrefix(p, "/")
	}
	return strings.HasPrefix(p, root+"/")
}

// rel is p relative to root, both clean and p within root, as a container path without the slash.
func rel(root, p string) string {
	r, err := filepath.Rel(root, p)
	if err != nil || r == "." {
		return ""
	}
	return r
}
