package monitor

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// heldSocket binds a TCP port on 127.0.0.1 and returns the socket as a file (the listener
// itself is closed: only the file holds the port) and the port.
func heldSocket(t *testing.T) (*os.File, int) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f, err := l.(*net.TCPListener).File()
	l.Close()
	if err != nil {
		t.Fatal(err)
	}
	return f, l.Addr().(*net.TCPAddr).Port
}

// portTaken reports whether binding 127.0.0.1:port fails with EADDRINUSE.
func portTaken(t *testing.T, port int) bool {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err == nil {
		l.Close()
		return false
	}
	if !errors.Is(err, syscall.EADDRINUSE) {
		t.Fatalf("bind 127.0.0.1:%d: %v", port, err)
	}
	return true
}

func fdsOf(t *testing.T, pid int) []string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join("/proc", strconv.Itoa(pid), "fd"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	slices.Sort(out)
	return out
}

// holds reports whether process pid has an fd open on the same socket as f.
func holds(t *testing.T, pid int, f *os.File) bool {
	t.Helper()
	want, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(int(f.Fd())))
	if err != nil {
		t.Fatal(err)
	}
	for _, fd := range fdsOf(t, pid) {
		if got, _ := os.Readlink(filepath.Join("/proc", strconv.Itoa(pid), "fd", fd)); got == want {
			return true
		}
	}
	return false
}

// The monitor holds Config.Hold for as long as it supervises, across restarts of the
// container's process; the container never sees the fds; a stop releases them before it is
// answered.
func TestHoldAcrossRestartsUntilStop(t *testing.T) {
	f := newFixture(t, `trap 'exit 0' TERM; while true; do usleep 20000; done`)
	f.cfg.Restart = RestartPolicy{Name: RestartAlways}
	sock, port := heldSocket(t)
	f.cfg.Hold = []*os.File{sock}
	h := f.launch(f.cfg)
	st := f.waitFor("running", 10*time.Second, func(s *Status) bool { return s.State == StateRunning })
	if !holds(t, h.Pid, sock) {
		t.Fatalf("monitor %d does not hold the socket; its fds: %v", h.Pid, fdsOf(t, h.Pid))
	}
	sock.Close() // from now on only the monitor holds the port
	if !portTaken(t, port) {
		t.Fatal("the port is free while the monitor holds it")
	}
	if got := fdsOf(t, st.ContainerPid); !slices.Equal(got, []string{"0", "1", "2"}) {
		t.Errorf("container fds %v, want 0 1 2", got)
	}

	// A restart by policy keeps the port held.
	if err := syscall.Kill(st.ContainerPid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	again := f.waitFor("restarted", 20*time.Second, func(s *Status) bool {
		return s.State == StateRunning && s.RestartCount == 1 && s.ContainerPid != st.ContainerPid
	})
	if !portTaken(t, port) {
		t.Error("the port is free after a restart of the container's process")
	}
	if got := fdsOf(t, again.ContainerPid); !slices.Equal(got, []string{"0", "1", "2"}) {
		t.Errorf("restarted container fds %v, want 0 1 2", got)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := Stop(ctx, f.cfg.StateDir, f.cfg.RunDir, 0, 0); err != nil {
		t.Fatal(err)
	}
	// Free as soon as the stop is answered, not only once the monitor has exited.
	if portTaken(t, port) {
		t.Error("the port is still taken when the stop returns")
	}
	<-h.Done()
}

// A held fd that the monitor did not inherit fails the launch at step "hold".
func TestHoldBadFD(t *testing.T) {
	if _, err := inheritHeld([]int{987654}); err == nil {
		t.Error("inheritHeld of a closed fd succeeded")
	}
	if _, err := inheritHeld([]int{1}); err == nil {
		t.Error("inheritHeld of stdout succeeded")
	}
}
