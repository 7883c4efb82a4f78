package e2e

import (
	"os"
	"strings"
	"testing"

	"github.com/stackrun/stack/image"
	"github.com/stackrun/stack/internal/testutil"
)

// blobPuts counts the blob uploads the registry completed, from its access log.
func blobPuts(t *testing.T, logPath string) int {
	b, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, "PUT /v2/") && strings.Contains(l, "/blobs/uploads/") {
			n++
		}
	}
	return n
}

// TestPush: image push to the local registry uploads the layers and config, a second push
// uploads nothing (the registry's log agrees), stack push pushes a service's image, and a pull
// under a new state root gives the same digests; a committed image pushed on top of its base
// uploads only its own layer.
func TestPush(t *testing.T) {
	host, logPath := testutil.StartRegistry(t)
	e := newEnv(t)
	e.exampleImage()
	ref := host + "/stack/example:e2e"
	e.must("image", "tag", "stack-example:latest", ref)

	var first image.PushReport
	e.decode(&first, "image", "push", "--format", "json", ref)
	var local []image.Inspect
	e.decode(&local, "image", "inspect", ref)
	if want := len(local[0].Image.Layers) + 1; len(first.Uploaded) != want || first.ManifestDigest != local[0].Image.ManifestDigest {
		t.Fatalf("first push: %+v, want %d blobs and manifest %s", first, want, local[0].Image.ManifestDigest)
	}
	puts := blobPuts(t, logPath)
	if puts != len(first.Uploaded) {
		t.Errorf("registry saw %d blob uploads, stack reports %d", puts, len(first.Uploaded))
	}
	var second image.PushReport
	e.decode(&second, "image", "push", "--format", "json", ref)
	if len(second.Uploaded) != 0 || blobPuts(t, logPath) != puts || second.ManifestDigest != first.ManifestDigest {
		t.Errorf("second push uploaded %v (registry log: %d uploads before, %d after)", second.Uploaded, puts, blobPuts(t, logPath))
	}

	// stack push: the services' images.
	f := e.stackFile("services:\n  app:\n    image: " + ref + "\n    command: [\"sleep\", \"3600\"]\n")
	if out := e.must(append(f, "push")...); !strings.Contains(out, "pushed "+ref) || !strings.Contains(out, "(0 blobs uploaded)") {
		t.Errorf("stack push:\n%s", out)
	}

	// A commit pushed to the same repository: only its new layer and config travel.
	e.must(append(f, "up", "-d", "--wait")...)
	e.must(append(f, "exec", "app", "/bin/busybox", "touch", "/committed")...)
	ref2 := host + "/stack/example:committed"
	e.must(append(f, "commit", "app", ref2)...)
	var third image.PushReport
	e.decode(&third, "image", "push", "--format", "json", ref2)
	if len(third.Uploaded) != 2 {
		t.Errorf("push of a commit uploaded %d blobs, want its layer and config", len(third.Uploaded))
	}

	// search through the registry's catalog.
	var found []image.SearchResult
	e.decode(&found, "image", "search", "--registry", host, "--format", "json", "examp")
	if len(found) != 1 || found[0].Name != host+"/stack/example" || strings.Join(found[0].Tags, ",") != "committed,e2e" {
		t.Errorf("search: %+v", found)
	}
	e.decode(&found, "image", "search", "--registry", host, "--format", "json", "nomatch")
	if len(found) != 0 {
		t.Errorf("search nomatch: %+v", found)
	}

	// Pull back under a new root: the same digests.
	e2 := newEnv(t)
	e2.must("image", "pull", ref)
	var pulled []image.Inspect
	e2.decode(&pulled, "image", "inspect", ref)
	a, b := local[0].Image, pulled[0].Image
	if a.ID != b.ID || a.ManifestDigest != b.ManifestDigest || len(a.Layers) != len(b.Layers) {
		t.Fatalf("pulled %+v, pushed %+v", b, a)
	}
	for i := range a.Layers {
		if a.Layers[i].Digest != b.Layers[i].Digest || a.Layers[i].DiffID != b.Layers[i].DiffID {
			t.Errorf("layer %d: pushed %+v, pulled %+v", i, a.Layers[i], b.Layers[i])
		}
	}
}
