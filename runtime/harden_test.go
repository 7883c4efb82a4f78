package runtime_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/stackrun/stack/internal/testutil"
	"github.com/stackrun/stack/runtime"
	"github.com/stackrun/stack/runtime/runtimetest"
	"github.com/stackrun/stack/runtime/seccomp"
)

// addHardenProbe builds runtime/runtimetest/hardenprobe statically into rootfs/bin.
func addHardenProbe(t *testing.T, rootfs string) {
	t.Helper()
	cmd := exec.Command("go", "build", "-o", filepath.Join(rootfs, "bin", "hardenprobe"),
		"github.com/stackrun/stack/runtime/runtimetest/hardenprobe")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build hardenprobe: %v\n%s", err, out)
	}
}

// TestSeccomp: with the default profile, keyring, namespace and mount syscalls fail in the
// container's process and in exec'd ones; clone3's ENOSYS and "Seccomp: 2" can only come from
// the filter.
func TestSeccomp(t *testing.T) {
	testutil.RequireRoot(t)
	r := newRuntime(t)
	b := runtimetest.NewBundle(t, "hardenprobe", "syscalls")
	addHardenProbe(t, filepath.Join(b.Dir, "rootfs"))
	b.Spec.Process.Env = append(b.Spec.Process.Env, "HARDENPROBE_IN_CONTAINER=1")
	b.Spec.Linux.Seccomp = seccomp.Default(b.Spec.Process.Capabilities.Bounding)
	want := map[string]string{
		"keyctl": "EPERM", "add_key": "EPERM", "unshare": "EPERM", "mount": "EPERM",
		"clone3": "ENOSYS", "setns": "EPERM", "seccomp": "2",
	}
	check := func(what, out string) {
		got := kv(out)
		for k, v := range want {
			if got[k] != v {
				t.Errorf("%s: %s = %q, want %q (output %q)", what, k, got[k], v, out)
			}
		}
	}
	res := run(t, r, "seccomp-init", b.Write(t))
	check("container process", res.Stdout+res.Stderr)
	// Without no_new_privs the filter must go in while the init still has CAP_SYS_ADMIN.
	b.Spec.Process.NoNewPrivileges = false
	res = run(t, r, "seccomp-init-nnp0", b.Write(t))
	check("container process without no_new_privs", res.Stdout+res.Stderr)

	b2 := runtimetest.NewBundle(t, "sleep", "1000")
	addHardenProbe(t, filepath.Join(b2.Dir, "rootfs"))
	b2.Spec.Linux.Seccomp = seccomp.Default(b2.Spec.Process.Capabilities.Bounding)
	startDetached(t, r, "seccomp-exec", b2)
	p := proc("hardenprobe", "syscalls")
	p.Env = append(p.Env, "HARDENPROBE_IN_CONTAINER=1")
	p.Capabilities = b2.Spec.Process.Capabilities
	p.NoNewPrivileges = true
	out, code, err := execOut(t, r, "seccomp-exec", p)
	if err != nil || code != 0 {
		t.Fatalf("exec: %d, %v: %s", code, err, out)
	}
	check("exec'd process", out)
}

// TestSessionKeyring: each container gets its own session keyring, not the caller's.
func TestSessionKeyring(t *testing.T) {
	testutil.RequireRoot(t)
	r := newRuntime(t)
	host, err := unix.KeyctlGetKeyringID(unix.KEY_SPEC_SESSION_KEYRING, false)
	if err != nil {
		t.Skipf("no session keyring on the host: %v", err)
	}
	seen := map[string]string{"session": strconv.Itoa(host)}
	for _, id := range []string{"keys-a", "keys-b"} {
		b := runtimetest.NewBundle(t, "hardenprobe", "keyring")
		addHardenProbe(t, filepath.Join(b.Dir, "rootfs"))
		res := run(t, r, id, b.Write(t))
		got := kv(res.Stdout)["session"]
		if _, err := strconv.Atoi(got); err != nil {
			t.Fatalf("%s: session keyring %q (stderr %s)", id, got, res.Stderr)
		}
		for who, k := range seen {
			if k == got {
				t.Errorf("%s shares session keyring %s with %s", id, got, who)
			}
		}
		seen[id] = got
	}
}

// TestWorkingDirOutside: a working directory that resolves outside the container through an
// inherited fd is refused, and nothing runs in the directory it names.
func TestWorkingDirOutside(t *testing.T) {
	testutil.RequireRoot(t)
	r := newRuntime(t)
	canary := t.TempDir()
	dir, err := os.Open(canary)
	if err != nil {
		t.Fatal(err)
	}
	defer dir.Close()
	b := runtimetest.NewBundle(t, "sh", "-c", "echo pwned > owned")
	b.Spec.Process.Cwd = "/proc/self/fd/3"
	_, err = r.Create(context.Background(), "cwd-out", b.Write(t), runtime.IO{ExtraFiles: []*os.File{dir}})
	if err == nil || !strings.Contains(err.Error(), "outside the container") {
		t.Errorf("create with working dir /proc/self/fd/3 = %v, want an 'outside the container' error", err)
	}
	if ents, _ := os.ReadDir(canary); len(ents) != 0 {
		t.Errorf("canary directory changed: %v", ents)
	}
}

// TestExecBinaryNotWritable (issue 11 acceptance 3, CVE-2019-5736): while a process in the
// container catches every process joining it and writes through /proc/PID/exe, 200 execs leave
// the binary that runs the exec helper (here: this test binary) unchanged, and every caught
// exe is the sealed copy.
func TestExecBinaryNotWritable(t *testing.T) {
	testutil.RequireRoot(t)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	before := fileHash(t, self)
	r := newRuntime(t)
	b := runtimetest.NewBundle(t, "hardenprobe", "exeattack", "/tmp/stop")
	addHardenProbe(t, filepath.Join(b.Dir, "rootfs"))
	outR, outW, _ := os.Pipe()
	defer outR.Close()
	ctx := context.Background()
	c, err := r.Create(ctx, "exeattack", b.Write(t), runtime.IO{Stdout: outW, Stderr: outW})
	outW.Close()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan string)
	go func() { b, _ := io.ReadAll(outR); done <- string(b) }()
	if err := r.Start(ctx, "exeattack"); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 200; i++ {
		if _, code, err := execOut(t, r, "exeattack", proc("true")); err != nil || code != 0 {
			t.Fatalf("exec %d: %d, %v", i, code, err)
		}
	}
	if _, _, err := execOut(t, r, "exeattack", proc("touch", "/tmp/stop")); err != nil {
		t.Fatal(err)
	}
	waitCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	go func() { <-waitCtx.Done(); _ = r.Kill(ctx, "exeattack", unix.SIGKILL) }()
	if _, err := c.Wait(); err != nil {
		t.Fatal(err)
	}
	out := <-done
	t.Logf("attacker:\n%s", out)
	if after := fileHash(t, self); after != before {
		t.Fatalf("the binary changed: %s -> %s", before, after)
	}
	caught := 0
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(l)
		switch {
		case strings.HasPrefix(l, "exe "):
			link := l[4:strings.LastIndexByte(l, ' ')]
			if !strings.Contains(link, "memfd:stack") {
				t.Errorf("a joining process ran from %s, not the sealed copy", link)
			}
			n, _ := strconv.Atoi(f[len(f)-1])
			caught += n
		case len(f) == 3 && f[0] == "result":
			if f[1] == "write:ok" {
				t.Errorf("the attacker wrote through /proc/PID/exe %s times", f[2])
			}
		default:
			t.Errorf("unexpected attacker output %q", l)
		}
	}
	if caught == 0 {
		t.Fatalf("the attacker never caught a joining process: the test proves nothing")
	}
}

func fileHash(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}
