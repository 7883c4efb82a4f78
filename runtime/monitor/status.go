package monitor

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/stackrun/stack/state"
)

// ContainerState is the life-cycle state the monitor records.
type ContainerState string

// Container states. Exited and Stopped are final: the monitor has finished and exits.
const (
	StateCreated    ContainerState = "created"
	StateRunning    ContainerState = "running"
	StateRestarting ContainerState = "restarting" // exited; the policy restarts it after a backoff
	StateExited     ContainerState = "exited"     // exited; the policy does not restart it
	StateStopped    ContainerState = "stopped"    // stopped (or killed) by the user
)

// Final reports whether no monitor will start the container again.
func (s ContainerState) Final() bool { return s == StateExited || s == StateStopped }

// Health states, as Docker names them.
const (
	HealthStarting  = "starting"
	HealthHealthy   = "healthy"
	HealthUnhealthy = "unhealthy"
)

// Status is the record a monitor keeps in StateDir/status.json, written atomically at every
// change. Inspect fills Unsupervised from live facts; the monitor never stores it.
type Status struct {
	ID    string         `json:"id"`
	State ContainerState `json:"state"`
	// BootID is the kernel boot the pids belong to; pids of another boot are dead.
	BootID string `json:"boot_id"`
	// MonitorPid and MonitorStartTime identify the monitor process (start time in clock
	// ticks since boot, /proc/PID/stat field 22, so a reused pid is told apart).
	MonitorPid       int    `json:"monitor_pid"`
	MonitorStartTime uint64 `json:"monitor_start_time"`
	// ContainerPid and ContainerStartTime identify the container's init, likewise.
	ContainerPid       int    `json:"container_pid,omitempty"`
	ContainerStartTime uint64 `json:"container_start_time,omitempty"`
	// ExitCode of the last run; -1 when unknown (the run ended while unsupervised or adopted:
	// only the parent can collect an exit status). Signal is the signal that ended it, if any.
	ExitCode  int  `json:"exit_code"`
	Signal    int  `json:"signal,omitempty"`
	OOMKilled bool `json:"oom_killed,omitempty"`
	// StartedAt and FinishedAt are of the last run.
	StartedAt  time.Time `json:"started_at,omitzero"`
	FinishedAt time.Time `json:"finished_at,omitzero"`
	// RestartCount counts restarts made by the restart policy; Restarts keeps the last few.
	RestartCount int            `json:"restart_count"`
	Restarts     []RestartEvent `json:"restarts,omitempty"`
	// StopRequested is set once a user's stop or kill was received: the policy no longer
	// restarts the container.
	StopRequested bool `json:"stop_requested,omitempty"`
	// Adopted says the monitor took over a running container whose monitor had died.
	Adopted bool         `json:"adopted,omitempty"`
	Health  *HealthState `json:"health,omitempty"`
	// Error is the last error the monitor met after it reported ready.
	Error string `json:"error,omitempty"`
	// Unsupervised is set by Inspect when the container runs but its monitor is gone.
	Unsupervised bool `json:"unsupervised,omitempty"`
}

// RestartEvent is one restart made by the policy.
type RestartEvent struct {
	At       time.Time     `json:"at"`
	Delay    time.Duration `json:"delay"`
	ExitCode int           `json:"exit_code"`
}

// HealthState is the healthcheck's verdict with the outputs of the last probes.
type HealthState struct {
	Status        string  `json:"status"`
	FailingStreak int     `json:"failing_streak"`
	Log           []Probe `json:"log,omitempty"`
}

// Probe is one healthcheck run.
type Probe struct {
	Start    time.Time `json:"start"`
	End      time.Time `json:"end"`
	ExitCode int       `json:"exit_code"`
	Output   string    `json:"output"`
}

// File names under StateDir and RunDir.
const (
	statusFile = "status.json"
	intentFile = "stop-requested" // in StateDir: a user's stop survives any monitor
	pidFile    = "monitor.pid"
	sockFile   = "monitor.sock"
	lockFile   = "monitor.lock"
	stdoutFifo = "stdout.fifo"
	stderrFifo = "stderr.fifo"
)

// ErrNoRecord reports a state dir without a monitor record.
var ErrNoRecord = errors.New("no monitor record")

// Inspect reads the record under stateDir and checks it against the live system: a container
// whose monitor died (its pid gone, a zombie, or reused by another process) but which still
// runs is reported Unsupervised; one whose processes are gone, or that belongs to another boot
// (after a reboot runDir is empty and every pid is stale), is reported exited with exit code
// -1 unless the record already says how it ended.
func Inspect(stateDir, runDir string) (*Status, error) {
	s, err := readStatus(filepath.Join(stateDir, statusFile))
	if err != nil {
		if state.IsNotExist(err) {
			return nil, fmt.Errorf("inspect %s: %w", stateDir, ErrNoRecord)
		}
		return nil, fmt.Errorf("inspect %s: %w", stateDir, err)
	}
	boot := bootID()
	sameBoot := s.BootID != "" && s.BootID == boot
	monitorAlive := sameBoot && processAlive(s.MonitorPid, s.MonitorStartTime) && state.Exists(filepath.Join(runDir, pidFile))
	if monitorAlive || s.State.Final() {
		return &s, nil
	}
	containerAlive := sameBoot && processAlive(s.ContainerPid, s.ContainerStartTime)
	if containerAlive {
		s.Unsupervised = true
		return &s, nil
	}
	// Neither monitor nor container: it ended unsupervised (or the host rebooted).
	if s.State == StateRunning || s.State == StateCreated {
		s.ExitCode = -1
	}
	if state.Exists(filepath.Join(stateDir, intentFile)) {
		s.State = StateStopped
	} else {
		s.State = StateExited
	}
	return &s, nil
}

// procStat returns the state letter and start time (clock ticks after boot) of pid.
func procStat(pid int) (byte, uint64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, err
	}
	return parseStat(b)
}

// parseStat parses /proc/PID/stat: the command name (field 2) may hold spaces and
// parentheses, so fields are counted after the last ')'.
func parseStat(b []byte) (byte, uint64, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, errors.New("parse /proc stat: no command name")
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); field 22 (starttime) is f[19].
	if len(f) < 20 || len(f[0]) != 1 {
		return 0, 0, errors.New("parse /proc stat: too few fields")
	}
	start, err := strconv.ParseUint(f[19], 10, 64)
	if err != nil {
		return 0, 0, fmt.Errorf("parse /proc stat start time: %w", err)
	}
	return f[0][0], start, nil
}

// processAlive reports whether pid runs and is the process that started at start.
func processAlive(pid int, start uint64) bool {
	if pid <= 0 {
		return false
	}
	st, s, err := procStat(pid)
	if err != nil {
		return false
	}
	return st != 'Z' && st != 'X' && (start == 0 || s == start)
}

// bootID identifies the running kernel boot; read once per process (Inspect of every
// container of a project asks for it).
var bootID = sync.OnceValue(func() string {
	b, _ := os.ReadFile("/proc/sys/kernel/random/boot_id")
	return strings.TrimSpace(string(b))
})
