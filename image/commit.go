package image

import (
	"archive/tar"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"golang.org/x/sys/unix"
)

// CommitOptions describe the image Commit makes.
type CommitOptions struct {
	Ref     string // tag for the new image ("" leaves it untagged)
	Message string // the history entry's comment (docker commit -m)
	Author  string
	// Changes are Dockerfile instructions applied to the config (docker commit -c): CMD,
	// ENTRYPOINT, ENV, WORKDIR, USER, LABEL, EXPOSE, STOPSIGNAL.
	Changes []string
	// CreatedBy is the history entry's created_by; default "stack commit".
	CreatedBy string
	Now       func() time.Time // nil: time.Now
}

// Commit makes a new image from the image baseRef plus the changes a container made, found in
// its overlay upper directory: the upper dir becomes one new layer (overlay whiteouts turned
// into OCI .wh. entries, opaque directories into .wh..wh..opq), appended to the base image's
// layers, which are shared, not copied. The config gets a history entry and opts.Changes.
func (s *Store) Commit(ctx context.Context, baseRef, upperDir string, opts CommitOptions) (*Image, error) {
	base, err := s.Get(baseRef)
	if err != nil {
		return nil, err
	}
	bimg, err := s.V1(base)
	if err != nil {
		return nil, err
	}
	var tags []string
	if opts.Ref != "" {
		r, err := ParseRef(opts.Ref, nil)
		if err != nil {
			return nil, err
		}
		tags = []string{r.Name()}
	}
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	tmp, err := os.CreateTemp(s.root, ".commit-*.tar")
	if err != nil {
		return nil, err
	}
	defer os.Remove(tmp.Name())
	err = LayerFromUpper(ctx, upperDir, tmp)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("commit %s: %w", upperDir, err)
	}
	layer, err := tarball.LayerFromFile(tmp.Name(), tarball.WithCompressedCaching)
	if err != nil {
		return nil, err
	}
	createdBy := opts.CreatedBy
	if createdBy == "" {
		createdBy = "stack commit"
	}
	created := v1.Time{Time: now().UTC().Truncate(time.Second)}
	img, err := mutate.Append(bimg, mutate.Addendum{Layer: layer, History: v1.History{
		Created: created, CreatedBy: createdBy, Comment: opts.Message, Author: opts.Author,
	}})
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.Created = created
	if opts.Author != "" {
		cf.Author = opts.Author
	}
	for _, ch := range opts.Changes {
		if err := applyChange(&cf.Config, ch); err != nil {
			return nil, err
		}
	}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		return nil, err
	}
	rec, err := s.add(ctx, img, addOptions{ref: "commit of " + baseRef, tags: tags})
	if err != nil {
		return nil, fmt.Errorf("commit %s: %w", opts.Ref, err)
	}
	return rec, nil
}

// applyChange applies one Dockerfile instruction to a config. CMD and ENTRYPOINT take the
// JSON form or the shell form (wrapped in /bin/sh -c), as in a Dockerfile.
func applyChange(c *v1.Config, change string) error {
	instr, arg, _ := strings.Cut(strings.TrimSpace(change), " ")
	arg = strings.TrimSpace(arg)
	args := func() []string {
		var list []string
		if strings.HasPrefix(arg, "[") && jsonList(arg, &list) == nil {
			return list
		}
		return []string{"/bin/sh", "-c", arg}
	}
	switch strings.ToUpper(instr) {
	case "CMD":
		c.Cmd = args()
	case "ENTRYPOINT":
		c.Entrypoint = args()
	case "WORKDIR":
		c.WorkingDir = arg
	case "USER":
		c.User = arg
	case "STOPSIGNAL":
		c.StopSignal = arg
	case "ENV":
		k, v, ok := strings.Cut(arg, "=")
		if !ok {
			k, v, _ = strings.Cut(arg, " ")
		}
		k = strings.TrimSpace(k)
		kept := c.Env[:0:0]
		for _, e := range c.Env {
			if !strings.HasPrefix(e, k+"=") {
				kept = append(kept, e)
			}
		}
		c.Env = append(kept, k+"="+strings.Trim(strings.TrimSpace(v), `"`))
	case "LABEL":
		k, v, _ := strings.Cut(arg, "=")
		if c.Labels == nil {
			c.Labels = map[string]string{}
		}
		c.Labels[strings.TrimSpace(k)] = strings.Trim(strings.TrimSpace(v), `"`)
	case "EXPOSE":
		if c.ExposedPorts == nil {
			c.ExposedPorts = map[string]struct{}{}
		}
		for _, p := range strings.Fields(arg) {
			if !strings.Contains(p, "/") {
				p += "/tcp"
			}
			c.ExposedPorts[p] = struct{}{}
		}
	default:
		return fmt.Errorf("%w: commit change %q: only CMD, ENTRYPOINT, ENV, WORKDIR, USER, LABEL, EXPOSE and STOPSIGNAL", ErrInvalid, change)
	}
	return nil
}

// LayerFromUpper writes the overlay upper directory dir to w as an OCI layer tarball: a
// whiteout (a 0/0 character device) becomes an empty .wh.<name> file, an opaque directory
// (trusted.overlay.opaque=y) gets a .wh..wh..opq entry, hard links inside the layer stay
// links, overlay's own xattrs are dropped. Entries are sorted, so the same tree gives the same
// bytes.
func LayerFromUpper(ctx context.Context, dir string, w io.Writer) error {
	tw := tar.NewWriter(w)
	links := map[[2]uint64]string{}
	var walk func(rel string) error
	walk = func(rel string) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		names, err := readDirNames(filepath.Join(dir, rel))
		if err != nil {
			return err
		}
		for _, n := range names {
			childRel := filepath.Join(rel, n)
			p := filepath.Join(dir, childRel)
			var st unix.Stat_t
			if err := unix.Lstat(p, &st); err != nil {
				return &os.PathError{Op: "lstat", Path: p, Err: err}
			}
			name := filepath.ToSlash(childRel)
			if st.Mode&unix.S_IFMT == unix.S_IFCHR && st.Rdev == 0 {
				wh := filepath.ToSlash(filepath.Join(rel, ".wh."+n))
				if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: wh, Mode: 0o600, ModTime: mtime(&st), Format: tar.FormatPAX}); err != nil {
					return err
				}
				continue
			}
			hdr, err := tarHeader(p, name, &st)
			if err != nil {
				return err
			}
			if hdr == nil {
				continue
			}
			if st.Mode&unix.S_IFMT == unix.S_IFREG && st.Nlink > 1 {
				key := [2]uint64{uint64(st.Dev), st.Ino}
				if first, ok := links[key]; ok {
					hdr.Typeflag, hdr.Linkname, hdr.Size = tar.TypeLink, first, 0
				} else {
					links[key] = name
				}
			}
			if err := tw.WriteHeader(hdr); err != nil {
				return err
			}
			switch hdr.Typeflag {
			case tar.TypeReg:
				f, err := os.Open(p)
				if err != nil {
					return err
				}
				_, err = io.CopyN(tw, f, hdr.Size)
				f.Close()
				if err != nil {
					return fmt.Errorf("copy %s into layer: %w", p, err)
				}
			case tar.TypeDir:
				if opaque(p) {
					opq := name + "/.wh..wh..opq"
					if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: opq, Mode: 0o600, ModTime: mtime(&st), Format: tar.FormatPAX}); err != nil {
						return err
					}
				}
				if err := walk(childRel); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if err := walk(""); err != nil {
		return err
	}
	return tw.Close()
}

func readDirNames(p string) ([]string, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	names, err := f.Readdirnames(-1)
	f.Close()
	sort.Strings(names)
	return names, err
}

func mtime(st *unix.Stat_t) time.Time { return time.Unix(st.Mtim.Unix()).UTC() }

func tarHeader(p, name string, st *unix.Stat_t) (*tar.Header, error) {
	h := &tar.Header{Name: name, Mode: int64(st.Mode & 0o7777), Uid: int(st.Uid), Gid: int(st.Gid), ModTime: mtime(st), Format: tar.FormatPAX}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		h.Typeflag, h.Size = tar.TypeReg, st.Size
	case unix.S_IFDIR:
		h.Typeflag, h.Name = tar.TypeDir, name+"/"
	case unix.S_IFLNK:
		target, err := os.Readlink(p)
		if err != nil {
			return nil, err
		}
		h.Typeflag, h.Linkname = tar.TypeSymlink, target
	case unix.S_IFCHR, unix.S_IFBLK:
		h.Typeflag = tar.TypeChar
		if st.Mode&unix.S_IFMT == unix.S_IFBLK {
			h.Typeflag = tar.TypeBlock
		}
		h.Devmajor, h.Devminor = int64(unix.Major(st.Rdev)), int64(unix.Minor(st.Rdev))
	case unix.S_IFIFO:
		h.Typeflag = tar.TypeFifo
	default:
		return nil, nil // sockets do not go into layers
	}
	return h, nil
}

// opaque reports whether overlayfs marked directory p opaque (its lower contents hidden).
func opaque(p string) bool {
	buf := make([]byte, 8)
	for _, attr := range []string{"trusted.overlay.opaque", "user.overlay.opaque"} {
		if n, err := unix.Lgetxattr(p, attr, buf); err == nil && n == 1 && buf[0] == 'y' {
			return true
		}
	}
	return false
}

func jsonList(s string, out *[]string) error { return json.Unmarshal([]byte(s), out) }
