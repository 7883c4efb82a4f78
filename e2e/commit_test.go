package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stackrun/stack/image"
)

const commitStack = `
services:
  app:
    image: stack-example:latest
    command: ["sleep", "3600"]
`

const derivedStack = commitStack + `
  derived:
    image: stack-committed:1
`

// TestCommit: after exec touches a file and removes one of the image's, commit makes an image
// whose first layers are the base's (shared: one more unpacked layer on disk, no copy), whose
// new layer has the file and the removal, with the message and the CMD change; a service
// using it starts and sees both changes.
func TestCommit(t *testing.T) {
	e := newEnv(t)
	e.exampleImage()
	f := e.stackFile(commitStack)
	e.must(append(f, "up", "-d", "--wait")...)
	e.must(append(f, "exec", "app", "/bin/busybox", "sh", "-c", "echo new > /newfile; /bin/busybox rm /bin/hostname; /bin/busybox mkdir -p /srv/d")...)
	layersBefore, _ := os.ReadDir(filepath.Join(e.root, "images", "layers"))

	id := strings.TrimSpace(e.must(append(f, "commit", "-m", "added newfile", "-c", `CMD ["sleep", "3601"]`, "app", "stack-committed:1")...))
	var imgs []image.Inspect
	e.decode(&imgs, "image", "inspect", "stack-example:latest", "stack-committed:1")
	base, derived := imgs[0], imgs[1]
	if derived.Image.ID != id || len(derived.Image.Layers) != len(base.Image.Layers)+1 {
		t.Fatalf("committed image %s: %+v", id, derived.Image)
	}
	for i, l := range base.Image.Layers {
		if derived.Image.Layers[i].Digest != l.Digest {
			t.Errorf("layer %d not shared: %s vs %s", i, derived.Image.Layers[i].Digest, l.Digest)
		}
	}
	if c := derived.Config; strings.Join(c.Config.Cmd, " ") != "sleep 3601" || len(c.History) == 0 || c.History[len(c.History)-1].Comment != "added newfile" {
		t.Errorf("committed config: cmd %v history %+v", c.Config.Cmd, c.History)
	}
	layersAfter, _ := os.ReadDir(filepath.Join(e.root, "images", "layers"))
	if len(layersAfter) != len(layersBefore)+1 {
		t.Errorf("unpacked layers: %d before, %d after the commit", len(layersBefore), len(layersAfter))
	}

	f = e.stackFile(derivedStack)
	e.must(append(f, "up", "-d", "--wait")...)
	out, err := e.run(append(f, "exec", "derived", "/bin/busybox", "sh", "-c", "cat /newfile; ls /srv; ls /bin/hostname")...)
	if err == nil || !strings.HasPrefix(out, "new\nd\n") || !strings.Contains(out, "No such file") {
		t.Errorf("derived container: %v\n%s", err, out)
	}
	var ps psOut
	e.decode(&ps, append(f, "ps", "--format", "json")...)
	states := map[string]string{}
	for _, c := range ps.Containers {
		states[c.Service] = c.State
	}
	if states["derived"] != "running" || states["app"] != "running" {
		t.Errorf("ps: %+v", ps)
	}
}
