package image

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sys/unix"

	"github.com/stackrun/stack/internal/testutil"
)

// TestLayerFromUpper builds an upper dir as overlayfs leaves it (a whiteout device, an opaque
// directory, a hard link, a symlink) and checks the OCI entries the layer gets.
func TestLayerFromUpper(t *testing.T) {
	testutil.RequireRoot(t)
	dir := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(dir, "etc"), 0o755))
	must(os.WriteFile(filepath.Join(dir, "etc/new"), []byte("hello"), 0o640))
	must(os.Link(filepath.Join(dir, "etc/new"), filepath.Join(dir, "etc/new-link")))
	must(os.Symlink("new", filepath.Join(dir, "etc/sym")))
	must(unix.Mknod(filepath.Join(dir, "etc/gone"), unix.S_IFCHR|0o000, 0))
	must(os.Mkdir(filepath.Join(dir, "opq"), 0o755))
	must(unix.Setxattr(filepath.Join(dir, "opq"), "trusted.overlay.opaque", []byte("y"), 0))
	var buf bytes.Buffer
	must(LayerFromUpper(context.Background(), dir, &buf))
	var got []string
	tr := tar.NewReader(&buf)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		must(err)
		e := h.Name
		switch h.Typeflag {
		case tar.TypeLink:
			e += " link " + h.Linkname
		case tar.TypeSymlink:
			e += " -> " + h.Linkname
		case tar.TypeReg:
			b, _ := io.ReadAll(tr)
			e += " " + string(b)
		}
		for k := range h.PAXRecords {
			if strings.Contains(k, "overlay") {
				t.Errorf("%s keeps overlay xattr %s", h.Name, k)
			}
		}
		got = append(got, e)
	}
	want := "etc/|etc/.wh.gone |etc/new hello|etc/new-link link etc/new|etc/sym -> new|opq/|opq/.wh..wh..opq "
	if g := strings.Join(got, "|"); g != want {
		t.Errorf("layer entries:\n got %s\nwant %s", g, want)
	}
}

func TestApplyChange(t *testing.T) {
	tests := []struct {
		change string
		check  func(c v1.Config) bool
	}{
		{`CMD ["/app", "serve"]`, func(c v1.Config) bool { return strings.Join(c.Cmd, " ") == "/app serve" }},
		{`CMD echo hi`, func(c v1.Config) bool { return strings.Join(c.Cmd, "|") == "/bin/sh|-c|echo hi" }},
		{`ENTRYPOINT ["tini"]`, func(c v1.Config) bool { return c.Entrypoint[0] == "tini" }},
		{`ENV A=1`, func(c v1.Config) bool { return c.Env[len(c.Env)-1] == "A=1" && len(c.Env) == 2 }},
		{`WORKDIR /srv`, func(c v1.Config) bool { return c.WorkingDir == "/srv" }},
		{`LABEL k="v"`, func(c v1.Config) bool { return c.Labels["k"] == "v" }},
		{`EXPOSE 80 53/udp`, func(c v1.Config) bool {
			_, a := c.ExposedPorts["80/tcp"]
			_, b := c.ExposedPorts["53/udp"]
			return a && b
		}},
	}
	for _, tc := range tests {
		c := v1.Config{Env: []string{"PATH=/bin", "A=0"}}
		if err := applyChange(&c, tc.change); err != nil || !tc.check(c) {
			t.Errorf("%s: %v %+v", tc.change, err, c)
		}
	}
	if err := applyChange(&v1.Config{}, "RUN make"); err == nil {
		t.Error("RUN accepted")
	}
}
