package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stackrun/stack/internal/testutil"
)

// TestQuickStart is the README's first command, `make up`, as a new user runs it (with this
// test's roots, project name and a free port, all through the environment the Makefile and
// stack read): the page answers, counts, and keeps its count across down and up.
func TestQuickStart(t *testing.T) {
	testutil.RequireBinary(t, "make")
	e := newEnv(t)
	port := freePort(t)
	bin := filepath.Join("bin", testutil.UniqueName(), "stack") // relative: the Makefile runs ./$(BIN)
	t.Cleanup(func() { os.RemoveAll(filepath.Join(repoRoot(t), filepath.Dir(bin))) })

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "make", "up", "BIN="+bin)
	cmd.Dir = repoRoot(t)
	cmd.Env = append(os.Environ(), "STACK_ROOT="+e.root, "STACK_RUN_ROOT="+e.runRoot,
		"COMPOSE_PROJECT_NAME="+e.project, fmt.Sprintf("WEB_PORT=%d", port))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("make up: %v\n%s", err, out.String())
	}
	fp := e.footprint()
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	for i := 1; i <= 2; i++ {
		if page := get(t, url); !strings.Contains(page, "Hello from stack") || !strings.Contains(page, fmt.Sprintf("visits: %d", i)) {
			t.Fatalf("visit %d: %s", i, page)
		}
	}
	f := []string{"-f", "examples/stack.yaml", "-p", e.project}
	e.extra = []string{fmt.Sprintf("WEB_PORT=%d", port)}
	e.must(append(f, "down")...)
	e.must(append(f, "up", "-d", "--wait")...)
	if page := get(t, url); !strings.Contains(page, "visits: 3") {
		t.Fatalf("after down and up: %s", page)
	}
	more := e.footprint()
	fp.links, fp.addrs = append(fp.links, more.links...), append(fp.addrs, more.addrs...)
	e.must(append(f, "down", "-v")...)
	e.checkGone(fp)
}
