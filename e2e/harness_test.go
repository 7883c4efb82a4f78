package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stackrun/stack/internal/testutil"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
	imageOnce sync.Map // root -> image built
)

func repoRoot(t testing.TB) string {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Dir(wd)
}

// TestMain removes the binaries stackBinary built once every test has run.
func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

// stackBinary builds cmd/stack once per test run.
func stackBinary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "stk-t-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "stack")
		// stack-shim, stack-monitor and stack-load next to stack, as make build installs them:
		// monitors run from stack-monitor (pure Go, as make build makes it), container inits and
		// the runtime helper from stack-shim, compose-go from stack-load.
		for _, b := range [][2]string{{binPath, "./cmd/stack"}, {filepath.Join(dir, "stack-shim"), "./cmd/stack-shim"},
			{filepath.Join(dir, "stack-monitor"), "./cmd/stack-monitor"}, {filepath.Join(dir, "stack-load"), "./cmd/stack-load"}} {
			// The tag of make build (Makefile TAGS): the binaries under test are the ones users run.
			cmd := exec.Command("go", "build", "-tags", "urfave_cli_no_docs", "-o", b[0], b[1])
			cmd.Dir = repoRoot(t)
			if b[1] == "./cmd/stack-monitor" {
				cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
			}
			if out, err := cmd.CombinedOutput(); err != nil {
				buildErr = fmt.Errorf("go build %s: %v\n%s", b[1], err, out)
				return
			}
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// env is one isolated stack installation: its own state and run roots, a unique project name.
type env struct {
	t       testing.TB
	bin     string
	root    string
	runRoot string
	project string
	extra   []string // KEY=VALUE for the stack process (interpolation)
}

func newEnv(t *testing.T) *env {
	testutil.RequireRoot(t)
	testutil.RequireBinary(t, "busybox")
	dir := t.TempDir()
	e := &env{t: t, bin: stackBinary(t), root: filepath.Join(dir, "root"), runRoot: filepath.Join(dir, "run"),
		project: testutil.UniqueName()}
	t.Cleanup(func() {
		// Whatever the test did, the project goes, with its volumes.
		out, err := e.run("-p", e.project, "down", "-v", "-t", "1")
		if err != nil {
			t.Errorf("cleanup down: %v\n%s", err, out)
		}
	})
	return e
}

// command is stack with args, run with the env's roots and extra variables, from the
// repository root.
func (e *env) command(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, e.bin, args...)
	cmd.Env = append(append(os.Environ(), "STACK_ROOT="+e.root, "STACK_RUN_ROOT="+e.runRoot), e.extra...)
	cmd.Dir = repoRoot(e.t)
	return cmd
}

// run runs stack with the env's roots and returns its combined output.
func (e *env) run(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := e.command(ctx, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

func (e *env) must(args ...string) string {
	e.t.Helper()
	out, err := e.run(args...)
	if err != nil {
		e.t.Fatalf("stack %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// exampleImage imports the example image (examples/build-image.sh) into this env's store.
func (e *env) exampleImage() {
	e.t.Helper()
	cmd := exec.Command(filepath.Join(repoRoot(e.t), "examples", "build-image.sh"), e.bin, "stack-example:latest")
	cmd.Env = append(os.Environ(), "STACK_ROOT="+e.root, "STACK_RUN_ROOT="+e.runRoot)
	if out, err := cmd.CombinedOutput(); err != nil {
		e.t.Fatalf("build example image: %v\n%s", err, out)
	}
}

// freePort returns a TCP port on 127.0.0.1 nothing listens on right now.
func freePort(t testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// get polls url until it answers 200 or the deadline passes, and returns the body.
func get(t testing.TB, url string) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var last error
	for time.Now().Before(deadline) {
		resp, err := (&http.Client{Timeout: 3 * time.Second}).Get(url)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return string(b)
			}
			last = fmt.Errorf("status %d: %s", resp.StatusCode, b)
		} else {
			last = err
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("GET %s: %v", url, last)
	return ""
}

// hostSnapshot is what a stack could leak on the host: interfaces, netns mounts, nft tables,
// mounts under the roots, cgroup directories named stack.
type hostSnapshot struct {
	links, nft, mounts, cgroups string
}

func snapshot(t testing.TB, e *env) hostSnapshot {
	t.Helper()
	out := func(name string, args ...string) string {
		b, _ := exec.Command(name, args...).Output()
		return string(b)
	}
	var links []string
	for _, l := range strings.Split(out("ip", "-o", "link", "show"), "\n") {
		if f := strings.Fields(l); len(f) > 1 {
			links = append(links, strings.TrimSuffix(strings.Split(f[1], "@")[0], ":"))
		}
	}
	var mounts []string
	b, _ := os.ReadFile("/proc/self/mounts")
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, e.root) || strings.Contains(l, e.runRoot) {
			mounts = append(mounts, l)
		}
	}
	cg, _ := filepath.Glob("/sys/fs/cgroup/*/stack/" + e.project)
	return hostSnapshot{links: strings.Join(links, " "), nft: out("nft", "list", "tables"), mounts: strings.Join(mounts, "\n"), cgroups: strings.Join(cg, " ")}
}
