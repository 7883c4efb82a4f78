package monitor

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// reapOrphans reaps the zombie children the monitor adopts from the container's pid
// namespace: a process an exec into the container started (a healthcheck probe) that outlived
// its exec helper is reparented to the monitor, the nearest subreaper. The container's init
// cannot finish exiting while any process of its pid namespace is an unreaped zombie (the
// kernel waits in zap_pid_ns_processes), so without this a stop after a failed probe waits
// forever. Only zombies inside a child pid namespace that are not its init (pid 1 there) are
// reaped: the init's status belongs to waitChild, and the monitor's direct helpers (in its own
// namespace) to the exec.Cmd that waits for them.
//
// The monitor loop calls it on a ticker that runs only while such orphans can appear or
// matter (see monitor.setReapPeriod) instead of on SIGCHLD: os/signal parks a thread in
// signal_recv for good, which costs more than the occasional look at /proc.
func reapOrphans() {
	for _, pid := range orphanZombies() {
		var ws unix.WaitStatus
		_, _ = unix.Wait4(pid, &ws, unix.WNOHANG, nil)
	}
}

// orphanZombies lists the monitor's zombie children that are inside a child pid namespace
// and are not that namespace's init.
func orphanZombies() []int {
	var out []int
	tasks, _ := filepath.Glob("/proc/self/task/*/children")
	for _, t := range tasks {
		b, err := os.ReadFile(t)
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(b)) {
			pid, err := strconv.Atoi(f)
			if err != nil {
				continue
			}
			status, err := os.ReadFile("/proc/" + f + "/status")
			if err != nil {
				continue
			}
			if zombieInChildNS(string(status)) {
				out = append(out, pid)
			}
		}
	}
	return out
}

// zombieInChildNS reads a /proc/PID/status: state Z, NSpid with more than one level, and an
// innermost pid other than 1.
func zombieInChildNS(status string) bool {
	var zombie, nested bool
	for _, line := range strings.Split(status, "\n") {
		k, v, _ := strings.Cut(line, ":")
		f := strings.Fields(v)
		switch k {
		case "State":
			zombie = len(f) > 0 && f[0] == "Z"
		case "NSpid":
			nested = len(f) > 1 && f[len(f)-1] != "1"
		}
	}
	return zombie && nested
}
