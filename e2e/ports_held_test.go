package e2e

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// portBindable tries to bind 127.0.0.1:port as any host process would; it reports nil when
// the bind worked (and closes it), the bind's error otherwise.
func portBindable(port int) error {
	l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err == nil {
		l.Close()
	}
	return err
}

// listenerInode finds the inode of the listening TCP socket on 127.0.0.1:port in the host's
// /proc/net/tcp, 0 when there is none.
func listenerInode(t *testing.T, port int) string {
	t.Helper()
	f, err := os.Open("/proc/net/tcp")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	want := fmt.Sprintf("0100007F:%04X", port)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fl := strings.Fields(sc.Text())
		if len(fl) >= 10 && fl[1] == want && fl[3] == "0A" {
			return fl[9]
		}
	}
	return ""
}

// holdsSocket reports whether process pid has the socket inode open.
func holdsSocket(pid int, inode string) bool {
	dir := filepath.Join("/proc", strconv.Itoa(pid), "fd")
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if l, _ := os.Readlink(filepath.Join(dir, e.Name())); l == "socket:["+inode+"]" {
			return true
		}
	}
	return false
}

// TestHardenPublishedPortHeld: issue 11, ports: a published host port is bound by the
// container's monitor for as long as the container is up, also across a restart of its
// process and after a new monitor adopted it; traffic still reaches the container; the
// container sees only fds 0, 1, 2; after down the port is free.
func TestHardenPublishedPortHeld(t *testing.T) {
	e := newEnv(t)
	e.busyboxImage()
	port := freePort(t)
	// httpd daemonizes, so pid 1 is sleep: its fds are exactly what the container was given.
	f := e.stackFile(fmt.Sprintf(`services:
  web:
    image: busybox
    command: ["sh", "-c", "mkdir -p /www && echo held-port-ok > /www/index.html && httpd -p 80 -h /www && exec sleep 3600"]
    ports: ["127.0.0.1:%d:80"]
    restart: always
`, port))
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)

	// held checks that binding the port fails and that the container's monitor is the holder.
	held := func(when string) {
		t.Helper()
		if err := portBindable(port); !errors.Is(err, syscall.EADDRINUSE) {
			t.Errorf("%s: bind 127.0.0.1:%d = %v, want EADDRINUSE", when, port, err)
		}
		c := e.lifePs(f)["web"]
		if ino := listenerInode(t, port); ino == "" || !holdsSocket(c.MonitorPid, ino) {
			t.Errorf("%s: the listening socket on %d (inode %q) is not held by the monitor %d", when, port, ino, c.MonitorPid)
		}
		if page := get(t, url); !strings.Contains(page, "held-port-ok") {
			t.Errorf("%s: page %q", when, page)
		}
	}

	e.must(append(f, "up", "-d")...)
	c := e.waitPs(f, "web", 30*time.Second, "running", func(c lifeContainer) bool { return c.State == "running" && c.Pid > 0 })
	held("after up")
	if out, err := e.run(append(f, "exec", "web", "ls", "/proc/1/fd")...); err != nil || strings.Join(strings.Fields(out), ",") != "0,1,2" {
		t.Errorf("fds of pid 1: %q, %v", out, err)
	}

	// The restart policy restarts the process; the monitor, and so the port, stay.
	if err := syscall.Kill(c.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	again := e.waitPs(f, "web", 30*time.Second, "running again", func(n lifeContainer) bool {
		return n.State == "running" && n.Pid > 0 && n.Pid != c.Pid
	})
	if again.MonitorPid != c.MonitorPid {
		t.Fatalf("the monitor changed on a policy restart: %d then %d", c.MonitorPid, again.MonitorPid)
	}
	held("after a restart by policy")
	if out, err := e.run(append(f, "exec", "web", "ls", "/proc/1/fd")...); err != nil || strings.Join(strings.Fields(out), ",") != "0,1,2" {
		t.Errorf("fds of pid 1 after the restart: %q, %v", out, err)
	}

	// stack restart: a new monitor binds the recorded port again.
	e.must(append(f, "restart", "-t", "1", "web")...)
	e.waitPs(f, "web", 30*time.Second, "restarted", func(n lifeContainer) bool {
		return n.State == "running" && n.MonitorPid > 0 && n.MonitorPid != again.MonitorPid
	})
	held("after stack restart")

	// The monitor killed: the port is free until a new monitor takes over. start adopts the
	// running container; up replaces it (its plan says "unsupervised (monitor gone)"). Either
	// way the new monitor holds the port again.
	killMonitor := func() lifeContainer {
		t.Helper()
		cur := e.lifePs(f)["web"]
		if err := syscall.Kill(cur.MonitorPid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		e.waitPs(f, "web", 30*time.Second, "unsupervised", func(n lifeContainer) bool { return n.State == "unsupervised" })
		return cur
	}
	cur := killMonitor()
	e.must(append(f, "start", "web")...)
	e.waitPs(f, "web", 30*time.Second, "adopted", func(n lifeContainer) bool {
		return n.State == "running" && n.MonitorPid > 0 && n.MonitorPid != cur.MonitorPid && n.Pid == cur.Pid
	})
	held("after start adopted it")
	cur = killMonitor()
	e.must(append(f, "up", "-d")...)
	e.waitPs(f, "web", 30*time.Second, "supervised again", func(n lifeContainer) bool {
		return n.State == "running" && n.MonitorPid > 0 && n.MonitorPid != cur.MonitorPid
	})
	held("after up replaced it")

	e.must(append(f, "down", "-t", "1")...)
	if err := portBindable(port); err != nil {
		t.Errorf("after down: bind 127.0.0.1:%d: %v", port, err)
	}
}
