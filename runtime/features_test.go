package runtime_test

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/stackrun/stack/internal/testutil"
	"github.com/stackrun/stack/runtime"
	"github.com/stackrun/stack/runtime/runtimetest"
)

// The tiny init (init: true): pid 1 is stack's init, it reaps orphaned zombies, forwards
// signals to the process and exits with its status.
func TestTinyInit(t *testing.T) {
	testutil.RequireRoot(t)
	r := newRuntime(t)
	t.Run("reaps and reports", func(t *testing.T) {
		// The orphaned sleep's zombie must be reaped by pid 1, not left behind.
		b := runtimetest.NewBundle(t, "sh", "-c",
			`(sleep 0.1 &) ; sleep 0.5; echo "pid1=$(cat /proc/1/comm) self=$$ zombies=$(grep -l '^State:.Z' /proc/[0-9]*/status 2>/dev/null | wc -l)"; exit 5`)
		b.Spec.Annotations = map[string]string{runtime.AnnotationInit: "true"}
		res := run(t, r, "tinyinit", b.Write(t))
		got := kv(strings.ReplaceAll(strings.TrimSpace(res.Stdout), " ", "\n"))
		if got["self"] == "1" || got["pid1"] == "sh" || got["zombies"] != "0" || res.Exit.Code != 5 {
			t.Errorf("output %q, exit %v; want the process not pid 1, no zombies, exit 5 (stderr %s)", res.Stdout, res.Exit, res.Stderr)
		}
	})
	t.Run("forwards signals", func(t *testing.T) {
		b := runtimetest.NewBundle(t, "sh", "-c", `trap 'echo got TERM; exit 3' TERM; echo ready; while :; do sleep 0.05; done`)
		b.Spec.Annotations = map[string]string{runtime.AnnotationInit: "true"}
		outR, outW, _ := os.Pipe()
		ctx := context.Background()
		c, err := r.Create(ctx, "tinyinit-sig", b.Write(t), runtime.IO{Stdout: outW})
		outW.Close()
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Start(ctx, "tinyinit-sig"); err != nil {
			t.Fatal(err)
		}
		ready := make([]byte, 6)
		if _, err := io.ReadFull(outR, ready); err != nil || string(ready) != "ready\n" {
			t.Fatalf("read %q, %v; want ready", ready, err)
		}
		if err := r.Kill(ctx, "tinyinit-sig", unix.SIGTERM); err != nil {
			t.Fatal(err)
		}
		es, err := c.Wait()
		out, _ := readAll(outR)
		if err != nil || es.Code != 3 || string(out) != "got TERM\n" || es.Signal != "" {
			t.Errorf("exit %+v, %v, output %q; want the trap to run and exit 3", es, err, out)
		}
	})
}

// A container can join a network namespace given by path instead of getting its own.
func TestJoinNetNS(t *testing.T) {
	testutil.RequireRoot(t)
	r := newRuntime(t)
	a := runtimetest.NewBundle(t, "sleep", "1000")
	a.Spec.Process.Capabilities.Effective = append(a.Spec.Process.Capabilities.Effective, "CAP_NET_ADMIN")
	a.Spec.Process.Capabilities.Permitted = a.Spec.Process.Capabilities.Effective
	a.Spec.Process.Capabilities.Bounding = a.Spec.Process.Capabilities.Effective
	startDetached(t, r, "netns-a", a)
	p := proc("ip", "addr", "add", "10.77.0.1/32", "dev", "lo")
	p.Capabilities = a.Spec.Process.Capabilities
	if out, code, err := execOut(t, r, "netns-a", p); err != nil || code != 0 {
		t.Fatalf("add address in the first container: %q %d %v", out, code, err)
	}
	s, err := r.State(context.Background(), "netns-a")
	if err != nil {
		t.Fatal(err)
	}
	b := runtimetest.NewBundle(t, "sh", "-c", "ip -o addr show dev lo | grep -c 10.77.0.1")
	for i, ns := range b.Spec.Linux.Namespaces {
		if ns.Type == specs.NetworkNamespace {
			b.Spec.Linux.Namespaces[i].Path = "/proc/" + strconv.Itoa(s.Pid) + "/ns/net"
		}
	}
	res := run(t, r, "netns-b", b.Write(t))
	if strings.TrimSpace(res.Stdout) != "1" {
		t.Errorf("second container sees %q (stderr %s), want the first one's address", res.Stdout, res.Stderr)
	}
}

// A terminal container gets a pty as its stdio and controlling terminal, of the size asked.
func TestTerminal(t *testing.T) {
	testutil.RequireRoot(t)
	r := newRuntime(t)
	b := runtimetest.NewBundle(t, "sh", "-c", `[ -t 0 ] && [ -t 1 ] && echo tty=yes; echo size=$(stty size)`)
	b.Spec.Process.Terminal = true
	b.Spec.Process.ConsoleSize = &specs.Box{Height: 33, Width: 101}
	ctx := context.Background()
	c, err := r.Create(ctx, "tty", b.Write(t), runtime.IO{})
	if err != nil {
		t.Fatal(err)
	}
	if c.Console == nil {
		t.Fatal("no console for a terminal container")
	}
	out := make(chan string)
	go func() {
		var sb strings.Builder
		buf := make([]byte, 1024)
		for {
			n, err := c.Console.Read(buf)
			sb.Write(buf[:n])
			if err != nil {
				break
			}
		}
		out <- sb.String()
	}()
	if err := r.Start(ctx, "tty"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Wait(); err != nil {
		t.Fatal(err)
	}
	var got string
	select {
	case got = <-out:
	case <-time.After(10 * time.Second):
		t.Fatal("console never closed")
	}
	if m := kv(strings.ReplaceAll(got, "\r", "")); m["tty"] != "yes" || m["size"] != "33 101" {
		t.Errorf("console output %q, want a tty of 33x101", got)
	}
}

// Stop: the signal first, SIGKILL after the grace period when the process ignores it.
func TestStop(t *testing.T) {
	testutil.RequireRoot(t)
	r := newRuntime(t)
	ctx := context.Background()
	// sleep as pid 1 ignores SIGTERM (no handler): only the SIGKILL after the grace ends it.
	c := startDetached(t, r, "stop-kill", runtimetest.NewBundle(t, "sleep", "1000"))
	if err := r.Stop(ctx, "stop-kill", unix.SIGTERM, 200*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if es, err := c.Wait(); err != nil || es.Signal != "SIGKILL" {
		t.Errorf("exit = %+v, %v; want killed by SIGKILL", es, err)
	}
	// A process that handles the signal exits with its own status.
	b := runtimetest.NewBundle(t, "sh", "-c", `trap 'exit 0' TERM; echo ready; while :; do sleep 0.05; done`)
	outR, outW, _ := os.Pipe()
	c, err := r.Create(ctx, "stop-term", b.Write(t), runtime.IO{Stdout: outW})
	outW.Close()
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(ctx, "stop-term"); err != nil {
		t.Fatal(err)
	}
	ready := make([]byte, 6)
	if _, err := io.ReadFull(outR, ready); err != nil {
		t.Fatal(err)
	}
	if err := r.Stop(ctx, "stop-term", 0, time.Minute); err != nil {
		t.Fatal(err)
	}
	if es, err := c.Wait(); err != nil || es.Code != 0 || es.Signal != "" {
		t.Errorf("exit = %+v, %v; want exit 0 from the trap", es, err)
	}
	if err := r.Stop(ctx, "stop-term", 0, time.Second); err != nil {
		t.Errorf("stop of a stopped container: %v", err)
	}
}

// The init and exec helper start from Options.Helper when set (stack passes cmd/stack-shim):
// a container runs from a copy of the test binary elsewhere, exec works through it, and a
// helper that does not exist fails the create, naming it.
func TestHelper(t *testing.T) {
	testutil.RequireRoot(t)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	helper := filepath.Join(t.TempDir(), "helper")
	data, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(helper, data, 0o755); err != nil {
		t.Fatal(err)
	}
	r := newRuntimeWith(t, runtime.Options{Root: t.TempDir(), Helper: helper})
	res := run(t, r, "helper", runtimetest.NewBundle(t, "sh", "-c", "echo from-helper").Write(t))
	if res.Exit.Code != 0 || strings.TrimSpace(res.Stdout) != "from-helper" {
		t.Fatalf("exit %v, stdout %q, stderr %q", res.Exit, res.Stdout, res.Stderr)
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	long := newRuntimeWith(t, runtime.Options{Root: t.TempDir(), Helper: helper})
	c, err := long.Create(ctx, "helper-exec", runtimetest.NewBundle(t, "sleep", "60").Write(t), runtime.IO{})
	if err != nil {
		t.Fatal(err)
	}
	if err := long.Start(ctx, "helper-exec"); err != nil {
		t.Fatal(err)
	}
	code, err := long.Exec(ctx, "helper-exec", &specs.Process{Args: []string{"sh", "-c", "exit 7"}, Cwd: "/",
		Env: []string{"PATH=/bin"}}, runtime.IO{})
	if err != nil || code != 7 {
		t.Fatalf("exec through the helper: code %d, %v", code, err)
	}
	if err := long.Kill(ctx, "helper-exec", unix.SIGKILL); err != nil {
		t.Fatal(err)
	}
	c.Wait()

	missing := filepath.Join(t.TempDir(), "no-such-helper")
	bad := newRuntimeWith(t, runtime.Options{Root: t.TempDir(), Helper: missing})
	_, err = bad.Create(ctx, "helper-missing", runtimetest.NewBundle(t, "true").Write(t), runtime.IO{})
	if err == nil || !strings.Contains(err.Error(), missing) {
		t.Fatalf("create with a missing helper: %v, want an error naming %s", err, missing)
	}
}
