package testutil

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
)

// TarEntry is one entry of a layer tarball built by LayerTar. Type defaults to a regular file
// (or a directory when Name ends in "/"); Mode defaults to 0644 for files, 0755 for dirs.
type TarEntry struct {
	Name    string
	Type    byte
	Body    string
	Mode    int64
	UID     int
	GID     int
	Link    string // symlink or hard link target
	ModTime time.Time
	Xattrs  map[string]string
	Major   int64
	Minor   int64
	// ClaimSize, when non-zero, is written as the header's size while only Body is written,
	// which truncates the archive (for tests of lying headers). It must be the last entry.
	ClaimSize int64
}

// FixedTime is the default mtime of LayerTar entries, so tarballs are reproducible.
var FixedTime = time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)

// LayerTar builds an uncompressed layer tarball from entries, in order.
func LayerTar(t testing.TB, entries ...TarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.Name, Typeflag: e.Type, Mode: e.Mode, Uid: e.UID, Gid: e.GID,
			Linkname: e.Link, ModTime: e.ModTime, Devmajor: e.Major, Devminor: e.Minor, Format: tar.FormatPAX}
		if h.Typeflag == 0 {
			h.Typeflag = tar.TypeReg
			if len(e.Name) > 0 && e.Name[len(e.Name)-1] == '/' {
				h.Typeflag = tar.TypeDir
			}
		}
		if h.Mode == 0 {
			h.Mode = 0o644
			if h.Typeflag == tar.TypeDir {
				h.Mode = 0o755
			}
		}
		if h.ModTime.IsZero() {
			h.ModTime = FixedTime
		}
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(e.Body))
		}
		if len(e.Xattrs) > 0 {
			h.PAXRecords = map[string]string{}
			for k, v := range e.Xattrs {
				h.PAXRecords["SCHILY.xattr."+k] = v
			}
		}
		if e.ClaimSize != 0 {
			h.Size = e.ClaimSize
			if err := tw.WriteHeader(h); err != nil {
				t.Fatalf("tar header %s: %v", e.Name, err)
			}
			if _, err := tw.Write([]byte(e.Body)); err != nil {
				t.Fatalf("tar body %s: %v", e.Name, err)
			}
			tw.Flush() //nolint:errcheck // the entry is short on purpose
			return buf.Bytes()
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatalf("tar header %s: %v", e.Name, err)
		}
		if h.Typeflag == tar.TypeReg {
			if _, err := tw.Write([]byte(e.Body)); err != nil {
				t.Fatalf("tar body %s: %v", e.Name, err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatalf("close tar: %v", err)
	}
	return buf.Bytes()
}

// Gzip compresses b.
func Gzip(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// Zstd compresses b.
func Zstd(t testing.TB, b []byte) []byte {
	t.Helper()
	zw, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer zw.Close()
	return zw.EncodeAll(b, nil)
}
