package volumes

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeRootfs builds a rootfs in a temp dir: dirs end in "/", symlinks are "name -> target",
// anything else is an empty file.
func fakeRootfs(t *testing.T, entries ...string) string {
	t.Helper()
	root := t.TempDir()
	for _, e := range entries {
		if name, target, ok := strings.Cut(e, " -> "); ok {
			p := filepath.Join(root, name)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(target, p); err != nil {
				t.Fatal(err)
			}
			continue
		}
		p := filepath.Join(root, e)
		if strings.HasSuffix(e, "/") {
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func TestResolveTarget(t *testing.T) {
	root := fakeRootfs(t,
		"etc/", "run/", "srv/data/", "usr/share/zoneinfo/UTC",
		"var/run -> /run",
		"etc/localtime -> /usr/share/zoneinfo/UTC",
		"rel -> srv/data",
		"up -> ../../../../../../../../srv/data",
		"data -> /etc",
		"dangling -> /nonexistent",
		"hop -> rel2", "rel2 -> /etc",
		"loop1 -> loop2", "loop2 -> loop1",
		"file",
		"self -> .", "up-self -> srv/..",
	)
	for _, tc := range []struct {
		target string
		want   string // below root; "" when refused
		is     error
	}{
		{"/new/dir", "new/dir", nil},
		{"/srv/data/", "srv/data", nil},
		{"/var/run/docker.sock", "run/docker.sock", nil},  // absolute symlink above the target: in scope
		{"/etc/localtime", "usr/share/zoneinfo/UTC", nil}, // absolute symlink to an image file
		{"/rel", "srv/data", nil},                         // relative symlink inside the rootfs
		{"/rel/x", "srv/data/x", nil},
		{"/file/x", "file/x", nil}, // runtime reports the not-a-directory
		{"/data", "", ErrRefused},  // symlink to /etc
		{"/up", "", ErrRefused},    // climbs out with ..
		{"/dangling", "", ErrRefused},
		{"/hop", "", ErrRefused}, // a chain that ends outside
		{"/loop1", "", nil},
		{"/self", "", ErrRefused},
		{"/up-self", "", ErrRefused},
		{"relative", "", ErrInvalid},
		{"/", "", ErrInvalid},
	} {
		got, err := ResolveTarget(root, tc.target)
		if tc.want != "" {
			if err != nil || got != filepath.Join(root, tc.want) {
				t.Errorf("ResolveTarget(%s) = %q, %v; want %q", tc.target, got, err, filepath.Join(root, tc.want))
			}
			continue
		}
		if err == nil {
			t.Errorf("ResolveTarget(%s) = %q, want an error", tc.target, got)
			continue
		}
		if tc.is != nil && !errors.Is(err, tc.is) {
			t.Errorf("ResolveTarget(%s) = %v, want %v", tc.target, err, tc.is)
		}
	}
	_, err := ResolveTarget(root, "/data")
	for _, s := range []string{"mount target /data", `/data is a symlink to "/etc"`, "out of the container's rootfs"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not say %q", err, s)
		}
	}
}
