package runtime_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/stackrun/stack/internal/testutil"
	"github.com/stackrun/stack/runtime"
	"github.com/stackrun/stack/runtime/cgroups"
	"github.com/stackrun/stack/runtime/runtimetest"
)

// Acceptance 1: what a container sees of the host.
func TestIsolation(t *testing.T) {
	testutil.RequireRoot(t)
	// A SysV shared memory segment on the host must not show up inside.
	shmid, err := unix.SysvShmGet(unix.IPC_PRIVATE, 4096, unix.IPC_CREAT|0o600)
	if err != nil {
		t.Fatalf("create host shm segment: %v", err)
	}
	t.Cleanup(func() { unix.SysvShmCtl(shmid, unix.IPC_RMID, nil) })

	r := newRuntime(t)
	b := runtimetest.NewBundle(t, "sh", "-c", strings.Join([]string{
		`echo "pid1=$(tr '\0' ' ' < /proc/1/cmdline)"`,
		`echo host=$(hostname)`,
		`echo procs=$(ls -d /proc/[0-9]* | wc -l)`,
		`echo shm=$(tail -n +2 /proc/sysvipc/shm | wc -l)`,
		`echo ifaces=$(tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | sort | tr '\n' ' ')`,
		`[ -e /proc/kcore ] && echo kcore=$(wc -c < /proc/kcore) || echo kcore=0`,
		`echo keys=$(cat /proc/keys | wc -c)`,
		`echo timers=$(cat /proc/timer_list | wc -c)`,
		`echo acpi=$(ls -A /proc/acpi | wc -l)`,
		`echo 1 > /proc/sys/kernel/ns_last_pid 2>/dev/null && echo procsys=rw || echo procsys=ro`,
		`touch /newfile 2>/dev/null && echo rootfs=rw || echo rootfs=ro`,
		`echo mounts=$(cut -d' ' -f2 /proc/self/mounts | grep -c '^/work')`,
	}, "; "))
	b.Spec.Root.Readonly = true
	res := run(t, r, "isolation", b.Write(t))
	if res.Exit.Code != 0 {
		t.Fatalf("exit %v, stderr %s", res.Exit, res.Stderr)
	}
	got := kv(res.Stdout)
	want := map[string]string{
		"pid1":    "sh -c " + b.Spec.Process.Args[2] + " ",
		"host":    "stk-test",
		"shm":     "0",
		"ifaces":  "lo",
		"timers":  "0",
		"acpi":    "0",
		"kcore":   "0",
		"keys":    "0",
		"procsys": "ro",
		"rootfs":  "ro",
		"mounts":  "0",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	// sh, the $(...) subshell and ls: no host process is visible.
	if n, _ := strconv.Atoi(got["procs"]); n < 1 || n > 4 {
		t.Errorf("procs = %s, want only the container's own", got["procs"])
	}
}

// kv parses "key=value" lines.
func kv(s string) map[string]string {
	m := map[string]string{}
	for _, l := range strings.Split(s, "\n") {
		if k, v, ok := strings.Cut(l, "="); ok {
			m[k] = v
		}
	}
	return m
}

// Acceptance 2: capabilities, device allowlist, no_new_privs, users.
func TestSecurity(t *testing.T) {
	testutil.RequireRoot(t)
	r := newRuntime(t)
	probe := strings.Join([]string{
		`grep -E '^(CapEff|CapPrm|CapBnd|CapInh|CapAmb|NoNewPrivs):' /proc/self/status | tr -d '\t' | tr ':' '='`,
		`mknod /tmp/blk b 7 0 && echo mknod=ok`,
		`head -c 1 /tmp/blk >/dev/null 2>&1 && echo blockopen=yes || echo blockopen=no`,
		`head -c 1 /dev/zero | wc -c | sed 's/^/zero=/'`,
		`echo id=$(id)`,
	}, "; ")
	t.Run("default", func(t *testing.T) {
		b := runtimetest.NewBundle(t, "sh", "-c", probe)
		b.Spec.Process.Capabilities = nil // the runtime's default: Docker's set
		res := run(t, r, "sec-default", b.Write(t))
		got := kv(res.Stdout)
		for k, v := range map[string]string{
			"CapEff": "00000000a80425fb", "CapPrm": "00000000a80425fb", "CapBnd": "00000000a80425fb",
			"CapInh": "0000000000000000", "CapAmb": "0000000000000000", "NoNewPrivs": "1",
			"mknod": "ok", "blockopen": "no", "zero": "1", "id": "uid=0(root) gid=0(root)",
		} {
			if got[k] != v {
				t.Errorf("%s = %q, want %q (stderr %s)", k, got[k], v, res.Stderr)
			}
		}
	})
	t.Run("user", func(t *testing.T) {
		b := runtimetest.NewBundle(t, "sh", "-c", probe)
		u, err := runtime.ResolveUser(filepath.Join(b.Dir, "rootfs"), "app")
		if err != nil {
			t.Fatal(err)
		}
		b.Spec.Process.User = u
		b.Spec.Process.NoNewPrivileges = false
		res := run(t, r, "sec-user", b.Write(t))
		got := kv(res.Stdout)
		for k, v := range map[string]string{
			"CapEff": "0000000000000000", "CapPrm": "0000000000000000", "CapBnd": "00000000a80425fb",
			"NoNewPrivs": "0", "id": "uid=1000(app) gid=1000(app) groups=2000(extra)",
		} {
			if got[k] != v {
				t.Errorf("%s = %q, want %q (stderr %s)", k, got[k], v, res.Stderr)
			}
		}
	})
}

// Acceptance 3: memory limit and OOM kill recorded; pids limit stops a fork bomb.
func TestLimits(t *testing.T) {
	testutil.RequireRoot(t)
	r := newRuntime(t)
	t.Run("oom", func(t *testing.T) {
		b := runtimetest.NewBundle(t, "dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1")
		limit := int64(32 << 20)
		b.Spec.Linux.Resources.Memory = &specs.LinuxMemory{Limit: &limit}
		res := run(t, r, "oom", b.Write(t))
		if !res.Exit.OOMKilled || res.Exit.Signal != "SIGKILL" {
			t.Errorf("exit = %+v, want OOM-killed by SIGKILL (stderr %s)", res.Exit, res.Stderr)
		}
		s, err := r.State(context.Background(), "oom")
		if err != nil || s.Exit == nil || !s.Exit.OOMKilled || !s.OOMKilled {
			t.Errorf("state = %+v, %v; want OOM-killed recorded", s, err)
		}
	})
	t.Run("pids", func(t *testing.T) {
		b := runtimetest.NewBundle(t, "sleep", "1000")
		pids := int64(20)
		b.Spec.Linux.Resources.Pids = &specs.LinuxPids{Limit: &pids}
		startDetached(t, r, "pids", b)
		// ash gives up at the first failed fork, leaving the cgroup full of sleeps.
		out, code, err := execOut(t, r, "pids", proc("sh", "-c", "for i in $(seq 100); do sleep 30 >/dev/null 2>&1 & done"))
		if err != nil || code == 0 || !strings.Contains(out, "can't fork") {
			t.Errorf("fork bomb: %q, exit %d, %v; want fork failures", out, code, err)
		}
		st, err := r.Stats(context.Background(), "pids")
		if err != nil {
			t.Fatal(err)
		}
		if st.Pids > 20 || st.Pids < 10 {
			t.Errorf("pids in the cgroup = %d, want close to the limit of 20", st.Pids)
		}
		if st.PidsLimit != 20 {
			t.Errorf("pids limit = %d", st.PidsLimit)
		}
		if err := r.Delete(context.Background(), "pids", true); err != nil {
			t.Errorf("delete after a fork bomb: %v", err)
		}
	})
}

// startDetached creates and starts a container running args in the background.
func startDetached(t *testing.T, r *runtime.Runtime, id string, b *runtimetest.Bundle) *runtime.Container {
	t.Helper()
	ctx := context.Background()
	c, err := r.Create(ctx, id, b.Write(t), runtime.IO{})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	if err := r.Start(ctx, id); err != nil {
		t.Fatalf("start: %v", err)
	}
	return c
}

// execOut runs args in container id and returns its stdout and exit code.
func execOut(t *testing.T, r *runtime.Runtime, id string, p *specs.Process, extra ...*os.File) (string, int, error) {
	t.Helper()
	outR, outW, _ := os.Pipe()
	defer outR.Close()
	done := make(chan string)
	go func() {
		b, _ := readAll(outR)
		done <- string(b)
	}()
	code, err := r.Exec(context.Background(), id, p, runtime.IO{Stdout: outW, Stderr: outW, ExtraFiles: extra})
	outW.Close()
	return <-done, code, err
}

func readAll(f *os.File) ([]byte, error) {
	var out []byte
	buf := make([]byte, 4096)
	for {
		n, err := f.Read(buf)
		out = append(out, buf[:n]...)
		if err != nil {
			return out, nil
		}
	}
}

func proc(args ...string) *specs.Process {
	return &specs.Process{Args: args, Cwd: "/", Env: []string{"PATH=/bin"}}
}

// Acceptance 4: exec sees the container's view; exit codes propagate; a stopped container
// refuses exec.
func TestExec(t *testing.T) {
	testutil.RequireRoot(t)
	r := newRuntime(t)
	b := runtimetest.NewBundle(t, "sleep", "1000")
	c := startDetached(t, r, "exec", b)
	for _, tc := range []struct {
		args []string
		out  string
		code int
	}{
		{[]string{"hostname"}, "stk-test\n", 0},
		{[]string{"cat", "/etc/hostname"}, "image\n", 0},
		{[]string{"sh", "-c", "ps -o pid,comm | grep sleep"}, "    1 sleep\n", 0},
		{[]string{"sh", "-c", "exit 7"}, "", 7},
		{[]string{"sh", "-c", "id -u; cat /proc/self/cgroup | grep -c memory:/$"}, "1000\n1\n", 0},
	} {
		p := proc(tc.args...)
		if tc.args[0] == "sh" && strings.Contains(tc.args[2], "id -u") {
			p.User = specs.User{UID: 1000, GID: 1000}
		}
		out, code, err := execOut(t, r, "exec", p)
		if err != nil || code != tc.code || out != tc.out {
			t.Errorf("exec %q = %q, %d, %v; want %q, %d", tc.args, out, code, err, tc.out, tc.code)
		}
	}
	if _, _, err := execOut(t, r, "exec", proc("nosuchcommand")); err == nil || !strings.Contains(err.Error(), "find executable") {
		t.Errorf("exec of a missing command: err = %v, want a 'find executable' step error", err)
	}
	if err := r.Kill(context.Background(), "exec", unix.SIGKILL); err != nil {
		t.Fatal(err)
	}
	es, err := c.Wait()
	if err != nil || es.Signal != "SIGKILL" {
		t.Errorf("wait = %+v, %v", es, err)
	}
	if _, _, err := execOut(t, r, "exec", proc("true")); !errors.Is(err, runtime.ErrNotRunning) {
		t.Errorf("exec into a stopped container: err = %v, want ErrNotRunning", err)
	}
}

// Acceptance 5: only stdio and the fds given reach the container's process. The fds are
// read from the host side (/proc/PID/fd), so no shell's transient fds muddy the result.
func TestNoFDLeak(t *testing.T) {
	testutil.RequireRoot(t)
	// An fd the caller has open without close-on-exec must not leak either.
	leak, err := os.Open("/dev/null")
	if err != nil {
		t.Fatal(err)
	}
	defer leak.Close()
	if _, err := unix.FcntlInt(leak.Fd(), unix.F_SETFD, 0); err != nil {
		t.Fatal(err)
	}
	extra, err := os.Open("/dev/zero")
	if err != nil {
		t.Fatal(err)
	}
	defer extra.Close()
	r := newRuntime(t)
	ctx := context.Background()
	b := runtimetest.NewBundle(t, "sleep", "1000")
	c, err := r.Create(ctx, "fds", b.Write(t), runtime.IO{ExtraFiles: []*os.File{extra}})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(ctx, "fds"); err != nil {
		t.Fatal(err)
	}
	if got := waitFDs(t, c.Pid, "sleep"); got != "0 1 2 3" {
		t.Errorf("fds of the container's process = %q, want \"0 1 2 3\"", got)
	}

	// The same for an exec'd process, found through the container's cgroup.
	go execOut(t, r, "fds", proc("sleep", "999"), extra)
	pid := waitProc(t, r, "fds", "sleep\x00999\x00")
	if got := waitFDs(t, pid, "sleep"); got != "0 1 2 3" {
		t.Errorf("fds of an exec'd process = %q, want \"0 1 2 3\"", got)
	}
}

// waitFDs waits until pid runs comm and lists its open fds.
func waitFDs(t *testing.T, pid int, comm string) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
		if strings.TrimSpace(string(b)) == comm {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("pid %d never ran %s", pid, comm)
		}
		time.Sleep(5 * time.Millisecond)
	}
	ents, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/fd")
	if err != nil {
		t.Fatal(err)
	}
	var fds []int
	for _, e := range ents {
		n, _ := strconv.Atoi(e.Name())
		fds = append(fds, n)
	}
	sort.Ints(fds)
	var s []string
	for _, n := range fds {
		s = append(s, strconv.Itoa(n))
	}
	return strings.Join(s, " ")
}

// waitProc finds the host pid of the process in container id whose cmdline is cmdline.
func waitProc(t *testing.T, r *runtime.Runtime, id, cmdline string) int {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		pids, err := r.Pids(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		for _, pid := range pids {
			if b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline"); string(b) == cmdline {
				return pid
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("no process %q in container %s", cmdline, id)
	return 0
}

// Acceptance 6: delete leaves nothing behind.
func TestDeleteCleans(t *testing.T) {
	testutil.RequireRoot(t)
	root := t.TempDir()
	r := newRuntimeAt(t, root)
	b := runtimetest.NewBundle(t, "sleep", "1000")
	id := "del"
	c := startDetached(t, r, id, b)
	s, err := r.State(context.Background(), id)
	if err != nil || s.Status != specs.StateRunning {
		t.Fatalf("state = %+v, %v", s, err)
	}
	paths := s.CgroupPaths
	for _, p := range paths {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("cgroup dir of a running container: %v", err)
		}
	}
	if err := r.Delete(context.Background(), id, false); !errors.Is(err, runtime.ErrConflict) {
		t.Errorf("delete of a running container without force: %v, want ErrConflict", err)
	}
	go c.Wait() // we are the parent: reap, as a monitor would
	if err := r.Delete(context.Background(), id, true); err != nil {
		t.Fatal(err)
	}
	assertGone(t, root, id, s.Pid, paths, filepath.Join(b.Dir, "rootfs"))
	if err := r.Delete(context.Background(), id, true); err != nil {
		t.Errorf("second delete: %v", err)
	}
}

func assertGone(t *testing.T, root, id string, pid int, cgroupPaths map[string]string, rootfs string) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(root, id)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("state dir remains: %v", err)
	}
	for c, p := range cgroupPaths {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("cgroup %s remains: %s", c, p)
		}
	}
	if pid > 0 {
		deadline := time.Now().Add(5 * time.Second)
		for unix.Kill(pid, 0) == nil && time.Now().Before(deadline) {
			if b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat"); err == nil && strings.Contains(string(b), ") Z ") {
				break // a zombie waiting for the test's reaper
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	mi, _ := os.ReadFile("/proc/self/mountinfo")
	if strings.Contains(string(mi), rootfs) {
		t.Errorf("a mount of the rootfs remains on the host")
	}
}

// TestList checks that List reports every container sorted, with its status.
func TestList(t *testing.T) {
	testutil.RequireRoot(t)
	r := newRuntime(t)
	ctx := context.Background()
	b := runtimetest.NewBundle(t, "sleep", "1000")
	if _, err := r.Create(ctx, "b-created", b.Write(t), runtime.IO{}); err != nil {
		t.Fatal(err)
	}
	startDetached(t, r, "a-running", runtimetest.NewBundle(t, "sleep", "1000"))
	list, err := r.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range list {
		got = append(got, s.ID+":"+string(s.Status))
	}
	sort.Strings(got)
	if strings.Join(got, " ") != "a-running:running b-created:created" {
		t.Errorf("list = %v", got)
	}
}

// Acceptance 6, second half: a create killed with SIGKILL at any point is cleaned up by a
// later delete.
func TestDeleteAfterKilledCreate(t *testing.T) {
	testutil.RequireRoot(t)
	root := t.TempDir()
	r := newRuntimeAt(t, root)
	b := runtimetest.NewBundle(t, "sleep", "1000")
	bundle := b.Write(t)
	parent := r.CgroupParent()
	drv, err := cgroups.New(parent)
	if err != nil {
		t.Fatal(err)
	}
	// Kill when the record first appears, while the init is being set up, and once created.
	for i, when := range []func(*runtime.State) bool{
		func(*runtime.State) bool { return true },
		func(s *runtime.State) bool { return s.Status == specs.StateCreating },
		func(s *runtime.State) bool { return s.Status == specs.StateCreated },
	} {
		id := fmt.Sprintf("killed-%d", i)
		cmd := exec.Command("/proc/self/exe", createHelperArg, root, parent, id, bundle)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(20 * time.Second)
		var pid int
		for {
			s, err := r.State(context.Background(), id)
			if err == nil && when(s) {
				pid = s.Pid
				break
			}
			if time.Now().After(deadline) {
				cmd.Process.Kill()
				cmd.Wait()
				t.Fatalf("case %d: state never reached (%+v, %v; stderr %s)", i, s, err, stderr.String())
			}
			time.Sleep(time.Millisecond)
		}
		cmd.Process.Kill()
		cmd.Wait()
		if err := r.Delete(context.Background(), id, true); err != nil {
			t.Errorf("case %d: delete: %v", i, err)
		}
		assertGone(t, root, id, pid, drv.Paths(id), filepath.Join(b.Dir, "rootfs"))
		// No init of this container survives, whether or not its pid was recorded.
		waitNoInit(t, parent)
	}
}

// waitNoInit waits until no container init in a cgroup below parent is left.
func waitNoInit(t *testing.T, parent string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		left := ""
		ents, _ := os.ReadDir("/proc")
		for _, e := range ents {
			cmdline, _ := os.ReadFile("/proc/" + e.Name() + "/cmdline")
			cg, _ := os.ReadFile("/proc/" + e.Name() + "/cgroup")
			if strings.Contains(string(cmdline), runtime.InitArg) && strings.Contains(string(cg), parent) {
				if st, _ := os.ReadFile("/proc/" + e.Name() + "/stat"); !strings.Contains(string(st), ") Z ") {
					left = e.Name()
				}
			}
		}
		if left == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("container init %s still runs", left)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Acceptance 2, users: setuid works only with the capability the config grants, and
// no_new_privs stops a setuid-root binary from raising a user to root.
func TestSetuid(t *testing.T) {
	testutil.RequireRoot(t)
	r := newRuntime(t)
	rootfs := t.TempDir()
	runtimetest.BusyboxRootfs(t, rootfs)
	runtimetest.AddProbe(t, rootfs)
	for i, tc := range []struct {
		uid  uint32
		nnp  bool
		args []string
		want string
	}{
		{0, true, []string{"probe", "setuid", "1000"}, "setuid=ok"},
		{1000, true, []string{"probe", "setuid", "0"}, "setuid=operation not permitted"},
		{1000, true, []string{"probe-suid", "euid"}, "euid=1000"},
		{1000, false, []string{"probe-suid", "euid"}, "euid=0"},
	} {
		b := &runtimetest.Bundle{Dir: t.TempDir(), Spec: runtimetest.Spec(tc.args...)}
		b.Spec.Root.Path = rootfs
		b.Spec.Process.User = specs.User{UID: tc.uid, GID: tc.uid}
		b.Spec.Process.NoNewPrivileges = tc.nnp
		res := run(t, r, fmt.Sprintf("setuid-%d", i), b.Write(t))
		if got := strings.TrimSpace(res.Stdout); got != tc.want {
			t.Errorf("uid %d, no_new_privs %v, %q: got %q (stderr %s), want %q", tc.uid, tc.nnp, tc.args, got, res.Stderr, tc.want)
		}
	}
}
