package testutil

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
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

// BusyboxLayer returns an uncompressed layer holding the host's static busybox as /bin/busybox
// with /bin/sh and /bin/ls linking to it, a minimal /etc/passwd and /etc/group, and /tmp. It
// skips the test when busybox is not installed (busybox-static).
func BusyboxLayer(t testing.TB) []byte {
	t.Helper()
	p := RequireBinary(t, "busybox")
	bin, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return LayerTar(t,
		TarEntry{Name: "bin/"},
		TarEntry{Name: "bin/busybox", Body: string(bin), Mode: 0o755},
		TarEntry{Name: "bin/sh", Type: tar.TypeSymlink, Link: "busybox"},
		TarEntry{Name: "bin/ls", Type: tar.TypeSymlink, Link: "busybox"},
		TarEntry{Name: "etc/"},
		TarEntry{Name: "etc/passwd", Body: "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n"},
		TarEntry{Name: "etc/group", Body: "root:x:0:\napp:x:1000:\n"},
		TarEntry{Name: "tmp/", Mode: 0o1777},
	)
}

// StartRegistry starts Debian's docker-registry on 127.0.0.1 with a free port and its own
// temporary storage, waits until it answers, and stops it (by pid) when the test ends. It
// returns host:port (plain HTTP) and the path of the registry's log, which records every
// request. It skips the test when docker-registry is not installed.
func StartRegistry(t testing.TB) (host, logPath string) {
	t.Helper()
	bin := RequireBinary(t, "docker-registry")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	host = l.Addr().String()
	l.Close()
	dir := t.TempDir()
	cfg := fmt.Sprintf(`version: 0.1
log:
  level: info
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
http:
  addr: %s
`, filepath.Join(dir, "data"), host)
	if err := os.WriteFile(filepath.Join(dir, "config.yml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	logPath = filepath.Join(dir, "registry.log")
	logf, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", filepath.Join(dir, "config.yml"))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("start docker-registry: %v", err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill() //nolint:errcheck // it may have died; Wait reports that
		cmd.Wait()         //nolint:errcheck
		logf.Close()
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := http.Get("http://" + host + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return host, logPath
			}
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(logPath)
			t.Fatalf("docker-registry on %s did not come up: %v\n%s", host, err, b)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
