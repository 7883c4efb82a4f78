package seccomp

import (
	"fmt"
	"os"
	"os/exec"
	goruntime "runtime"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

const envChild = "_STACK_SECCOMP_TEST_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(envChild) == "1" {
		installChild()
	}
	os.Exit(m.Run())
}

// installChild installs the default profile (no capabilities) in this process and reports what
// a few syscalls return. Other goroutines' threads are covered by TSYNC: the probes run on a
// fresh goroutine, not necessarily on the thread that installed.
func installChild() {
	goruntime.LockOSThread()
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		fmt.Println("nnp:", err)
		os.Exit(2)
	}
	prog, err := Compile(Default(nil), goruntime.GOARCH)
	if err == nil {
		err = Install(prog)
	}
	if err != nil {
		fmt.Println("install:", err)
		os.Exit(2)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _, e1 := unix.Syscall(unix.SYS_KEYCTL, unix.KEYCTL_JOIN_SESSION_KEYRING, 0, 0)
		e2 := unix.Unshare(unix.CLONE_NEWUSER)
		_, e3 := unix.Getpid(), error(nil)
		fmt.Printf("keyctl=%v unshare=%v getpid=%v\n", e1, e2, e3)
	}()
	<-done
	os.Exit(0)
}

// TestInstall needs no root: with no_new_privs set, any process may install a filter.
func TestInstall(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envChild+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v: %s", err, out)
	}
	want := fmt.Sprintf("keyctl=%v unshare=%v getpid=<nil>", unix.EPERM, unix.EPERM)
	if got := strings.TrimSpace(string(out)); got != want {
		t.Errorf("child reported %q, want %q", got, want)
	}
}
