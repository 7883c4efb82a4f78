package monitor

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Config says what one monitor supervises and how. It travels to the monitor process as JSON.
type Config struct {
	// ID names the container for the OCI runtime.
	ID string `json:"id"`
	// Bundle is the OCI bundle directory (config.json and rootfs).
	Bundle string `json:"bundle"`
	// StateDir is persistent: the status record (status.json) and, by default, the log.
	StateDir string `json:"state_dir"`
	// RunDir is volatile (under /run, empty after a reboot): the monitor's pid file, control
	// socket, lock, and the FIFOs that carry the container's stdout and stderr.
	RunDir string `json:"run_dir"`
	// LogPath is the container's log file; default StateDir/container.log.
	LogPath string `json:"log_path,omitempty"`
	// LogMaxSize and LogMaxFiles bound the log (logging.options max-size, max-file); zero
	// takes logfile.DefaultMaxSize (10 MiB) and logfile.DefaultMaxFiles (3).
	LogMaxSize  int64 `json:"log_max_size,omitempty"`
	LogMaxFiles int   `json:"log_max_files,omitempty"`
	// Restart is the restart policy.
	Restart RestartPolicy `json:"restart"`
	// Healthcheck, when set and not NONE, is probed inside the container.
	Healthcheck *Healthcheck `json:"healthcheck,omitempty"`
	// StopSignal and StopTimeout are how a stop ends the container before SIGKILL; defaults
	// SIGTERM and 10 s.
	StopSignal  unix.Signal   `json:"stop_signal,omitempty"`
	StopTimeout time.Duration `json:"stop_timeout,omitempty"`
	// Runtime chooses the OCIRuntime: "builtin" for stack's own runtime, otherwise a
	// runc-compatible binary (name on PATH or path), default "runc".
	Runtime string `json:"runtime,omitempty"`
	// RuntimeRoot is the runtime's state directory (runc --root); default RunDir/runtime.
	RuntimeRoot string `json:"runtime_root,omitempty"`
	// RuntimeHelper is the binary the monitor runs stack's own runtime in (Runtime "builtin",
	// see Helper): one that dispatches HelperMode, i.e. stack or stack-shim; default
	// /proc/self/exe, the monitor's own binary.
	RuntimeHelper string `json:"runtime_helper,omitempty"`
	// Executable is the binary Launch re-executes in monitor mode; default /proc/self/exe.
	// It must dispatch Mode to Main (cmd/stack does; tests' TestMain does).
	Executable string `json:"-"`
	// Adopt makes the monitor take over a container that is already running (its previous
	// monitor died) instead of creating one.
	Adopt bool `json:"adopt,omitempty"`
	// Events, when set, is where the monitor appends start, die, oom, restart and
	// health_status events (see events.go).
	Events *EventSink `json:"events,omitempty"`
	// Hold are files the monitor keeps open while it supervises, and closes before it
	// answers the stop that ends it (or when it exits otherwise): the sockets reserving the
	// container's published host ports, so no other process can bind them while the
	// container is up. They stay open across restarts of the container's process and never
	// reach it (close-on-exec in the monitor). Launch passes them as inherited fds and
	// names them in HoldFDs; the caller closes its own copies after Launch.
	Hold []*os.File `json:"-"`
	// HoldFDs are the fd numbers of Hold in the monitor process, set by Launch.
	HoldFDs []int `json:"hold_fds,omitempty"`
}

// RestartPolicy is Compose's restart: no, always, on-failure[:N], unless-stopped.
type RestartPolicy struct {
	Name       string `json:"name,omitempty"`
	MaxRetries int    `json:"max_retries,omitempty"` // on-failure only; 0 is unlimited
}

// Restart policy names. Inside a monitor always and unless-stopped behave the same (restart
// on every exit until the user stops the container); they differ in what `stack up` does with
// a container found exited after a reboot: always starts it again, unless-stopped leaves it
// alone when Status.StopRequested says the user stopped it.
const (
	RestartNo            = "no"
	RestartAlways        = "always"
	RestartOnFailure     = "on-failure"
	RestartUnlessStopped = "unless-stopped"
)

// ParseRestartPolicy parses Compose's restart value ("on-failure:3").
func ParseRestartPolicy(s string) (RestartPolicy, error) {
	name, max, hasMax := strings.Cut(s, ":")
	switch name {
	case "", RestartNo, RestartAlways, RestartUnlessStopped:
		if hasMax {
			return RestartPolicy{}, fmt.Errorf("restart policy %q: only on-failure takes a retry count", s)
		}
		if name == "" {
			name = RestartNo
		}
		return RestartPolicy{Name: name}, nil
	case RestartOnFailure:
		p := RestartPolicy{Name: name}
		if hasMax {
			n, err := strconv.Atoi(max)
			if err != nil || n < 0 {
				return RestartPolicy{}, fmt.Errorf("restart policy %q: bad retry count", s)
			}
			p.MaxRetries = n
		}
		return p, nil
	}
	return RestartPolicy{}, fmt.Errorf("restart policy %q: unknown (want no, always, on-failure[:N], unless-stopped)", s)
}

// Healthcheck is Compose's healthcheck. Test is ["NONE"], ["CMD", args...] or
// ["CMD-SHELL", command].
type Healthcheck struct {
	Test          []string      `json:"test"`
	Interval      time.Duration `json:"interval,omitempty"`       // default 30 s
	Timeout       time.Duration `json:"timeout,omitempty"`        // default 30 s
	Retries       int           `json:"retries,omitempty"`        // default 3
	StartPeriod   time.Duration `json:"start_period,omitempty"`   // default 0
	StartInterval time.Duration `json:"start_interval,omitempty"` // default 5 s
}

// Defaults of Compose/Docker.
const (
	defaultHealthInterval      = 30 * time.Second
	defaultHealthTimeout       = 30 * time.Second
	defaultHealthRetries       = 3
	defaultHealthStartInterval = 5 * time.Second
	defaultStopTimeout         = 10 * time.Second
)

// argv returns the command to exec for a probe, or nil for NONE.
func (h *Healthcheck) argv() ([]string, error) {
	if h == nil || len(h.Test) == 0 {
		return nil, nil
	}
	switch h.Test[0] {
	case "NONE":
		return nil, nil
	case "CMD":
		if len(h.Test) < 2 {
			return nil, errors.New("healthcheck CMD without a command")
		}
		return h.Test[1:], nil
	case "CMD-SHELL":
		if len(h.Test) != 2 {
			return nil, errors.New("healthcheck CMD-SHELL takes one command string")
		}
		return []string{"/bin/sh", "-c", h.Test[1]}, nil
	}
	return nil, fmt.Errorf("healthcheck test %q: want NONE, CMD or CMD-SHELL", h.Test[0])
}

func (h Healthcheck) withDefaults() Healthcheck {
	if h.Interval <= 0 {
		h.Interval = defaultHealthInterval
	}
	if h.Timeout <= 0 {
		h.Timeout = defaultHealthTimeout
	}
	if h.Retries <= 0 {
		h.Retries = defaultHealthRetries
	}
	if h.StartInterval <= 0 {
		h.StartInterval = defaultHealthStartInterval
	}
	return h
}

// withDefaults fills the defaults and checks what the monitor cannot work without.
func (c Config) withDefaults() (Config, error) {
	if c.ID == "" || c.Bundle == "" || c.StateDir == "" || c.RunDir == "" {
		return c, errors.New("monitor config: id, bundle, state dir and run dir are required")
	}
	for _, p := range []string{c.Bundle, c.StateDir, c.RunDir} {
		if !filepath.IsAbs(p) {
			return c, fmt.Errorf("monitor config: %s is not an absolute path", p)
		}
	}
	if c.LogPath == "" {
		c.LogPath = filepath.Join(c.StateDir, "container.log")
	}
	if c.Restart.Name == "" {
		c.Restart.Name = RestartNo
	}
	if _, err := ParseRestartPolicy(c.Restart.Name); err != nil {
		return c, err
	}
	if c.StopSignal == 0 {
		c.StopSignal = unix.SIGTERM
	}
	if c.StopTimeout <= 0 {
		c.StopTimeout = defaultStopTimeout
	}
	if c.Runtime == "" {
		c.Runtime = "runc"
	}
	if c.RuntimeRoot == "" {
		c.RuntimeRoot = filepath.Join(c.RunDir, "runtime")
	}
	if c.RuntimeHelper == "" {
		c.RuntimeHelper = "/proc/self/exe"
	}
	if _, err := c.Healthcheck.argv(); err != nil {
		return c, err
	}
	return c, nil
}
