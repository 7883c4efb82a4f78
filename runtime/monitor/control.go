package monitor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/stackrun/stack/state"
)

// The control protocol on RunDir/monitor.sock: one JSON request, one JSON reply, per
// connection. A stop is answered once the container is down and the record final; a restart
// once the container runs again; a kill once the signal was sent.
type request struct {
	Op      string        `json:"op"` // stop, kill, restart
	Signal  unix.Signal   `json:"signal,omitempty"`
	Timeout time.Duration `json:"timeout,omitempty"`
	// Removing (stop): the caller deletes the container from the runtime next, so the monitor
	// leaves the exited container's runtime record to it.
	Removing bool `json:"removing,omitempty"`
}

type reply struct {
	Error string `json:"error,omitempty"`
}

// ErrNotSupervised reports an operation that needs a live monitor (restart) on a container
// whose monitor is gone; Launch with Adopt, or recreate the container.
var ErrNotSupervised = errors.New("container has no monitor")

// errNoMonitor: nobody listens on the control socket.
var errNoMonitor = errors.New("no monitor listening")

func call(ctx context.Context, runDir string, req request) error {
	conn, err := dialUnix(ctx, filepath.Join(runDir, sockFile))
	if errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED) {
		return errNoMonitor
	}
	if err != nil {
		return fmt.Errorf("connect to monitor: %w", err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
	defer stop()
	if err := json.NewEncoder(conn).Encode(req); err != nil {
		return fmt.Errorf("send %s to monitor: %w", req.Op, err)
	}
	var rep reply
	if err := json.NewDecoder(conn).Decode(&rep); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("wait for monitor to %s: %w", req.Op, ctx.Err())
		}
		return fmt.Errorf("read monitor's reply to %s: %w", req.Op, err)
	}
	if rep.Error != "" {
		return fmt.Errorf("monitor: %s: %s", req.Op, rep.Error)
	}
	return nil
}

// Stop stops the container supervised under stateDir/runDir: sig (0: the configured stop
// signal), then SIGKILL after timeout (0: the configured stop timeout). The user's stop wins
// over the restart policy: the intent is recorded in stateDir before anything is signalled, and
// every monitor checks it before restarting. Stop returns when the container is down. When
// the monitor is gone but the container runs, Stop signals the container itself (by pidfd, so
// a reused pid is never hit) and records it stopped.
func Stop(ctx context.Context, stateDir, runDir string, sig unix.Signal, timeout time.Duration) error {
	return stop(ctx, stateDir, runDir, request{Op: "stop", Signal: sig, Timeout: timeout})
}

// StopToRemove is Stop when the caller deletes the container from the runtime right after (as
// `down` and a recreate do): the monitor does not delete the exited container's runtime record
// itself, which would cost a runtime helper process per container.
func StopToRemove(ctx context.Context, stateDir, runDir string, sig unix.Signal, timeout time.Duration) error {
	return stop(ctx, stateDir, runDir, request{Op: "stop", Signal: sig, Timeout: timeout, Removing: true})
}

func stop(ctx context.Context, stateDir, runDir string, req request) error {
	sig, timeout := req.Signal, req.Timeout
	if err := state.WriteFile(filepath.Join(stateDir, intentFile), nil, state.FileMode); err != nil {
		return fmt.Errorf("stop: record the stop: %w", err)
	}
	err := call(ctx, runDir, req)
	if !errors.Is(err, errNoMonitor) {
		return err
	}
	if sig == 0 {
		sig = unix.SIGTERM
	}
	if timeout <= 0 {
		timeout = defaultStopTimeout
	}
	return stopUnsupervised(ctx, stateDir, runDir, sig, timeout)
}

// Kill sends sig to the container. As with Docker, a kill counts as the user's stop: the
// restart policy does not bring the container back.
func Kill(ctx context.Context, stateDir, runDir string, sig unix.Signal) error {
	if err := state.WriteFile(filepath.Join(stateDir, intentFile), nil, state.FileMode); err != nil {
		return fmt.Errorf("kill: record the stop: %w", err)
	}
	err := call(ctx, runDir, request{Op: "kill", Signal: sig})
	if !errors.Is(err, errNoMonitor) {
		return err
	}
	return withUnsupervised(stateDir, runDir, func(s *Status, pidfd int) error {
		if err := unix.PidfdSendSignal(pidfd, sig, nil, 0); err != nil {
			return os.NewSyscallError("pidfd_send_signal", err)
		}
		return nil
	})
}

// Restart stops the container (its stop signal, then SIGKILL after timeout; 0: configured)
// and starts it again, outside the restart policy. It needs a live monitor.
func Restart(ctx context.Context, stateDir, runDir string, timeout time.Duration) error {
	if err := os.Remove(filepath.Join(stateDir, intentFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("restart: %w", err)
	}
	err := call(ctx, runDir, request{Op: "restart", Timeout: timeout})
	if errors.Is(err, errNoMonitor) {
		return fmt.Errorf("restart: %w", ErrNotSupervised)
	}
	return err
}

// withUnsupervised runs fn on a container whose monitor is gone, holding the monitor lock so
// no monitor starts meanwhile. fn gets a pidfd of the container's init, or is not called when
// the container does not run.
func withUnsupervised(stateDir, runDir string, fn func(*Status, int) error) error {
	lock, ok, err := state.TryLock(filepath.Join(runDir, lockFile))
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("monitor holds %s but does not answer: %w", runDir, errNoMonitor)
	}
	defer lock.Unlock()
	s, err := Inspect(stateDir, runDir)
	if err != nil {
		return err
	}
	if !s.Unsupervised {
		return nil
	}
	pidfd, err := unix.PidfdOpen(s.ContainerPid, 0)
	if err != nil {
		return nil // exited meanwhile
	}
	defer unix.Close(pidfd)
	// The pidfd pins the process; check it is still the one recorded before signalling.
	if !processAlive(s.ContainerPid, s.ContainerStartTime) {
		return nil
	}
	return fn(s, pidfd)
}

func stopUnsupervised(ctx context.Context, stateDir, runDir string, sig unix.Signal, timeout time.Duration) error {
	return withUnsupervised(stateDir, runDir, func(s *Status, pidfd int) error {
		if err := unix.PidfdSendSignal(pidfd, sig, nil, 0); err != nil && !errors.Is(err, unix.ESRCH) {
			return fmt.Errorf("stop container %s: %w", s.ID, os.NewSyscallError("pidfd_send_signal", err))
		}
		if !waitPidfd(ctx, pidfd, timeout) {
			if err := unix.PidfdSendSignal(pidfd, unix.SIGKILL, nil, 0); err != nil && !errors.Is(err, unix.ESRCH) {
				return fmt.Errorf("kill container %s: %w", s.ID, os.NewSyscallError("pidfd_send_signal", err))
			}
			if !waitPidfd(ctx, pidfd, -1) {
				return fmt.Errorf("stop container %s: %w", s.ID, ctx.Err())
			}
		}
		s.Unsupervised = false
		s.State, s.ExitCode, s.FinishedAt = StateStopped, -1, time.Now().UTC()
		s.StopRequested = true
		return writeStatus(filepath.Join(stateDir, statusFile), s)
	})
}

// waitPidfd waits until the process exits, timeout passes (negative: no timeout), or ctx
// ends; it reports whether the process exited.
func waitPidfd(ctx context.Context, pidfd int, timeout time.Duration) bool {
	var deadline time.Time
	if timeout >= 0 {
		deadline = time.Now().Add(timeout)
	}
	for {
		fds := []unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}}
		n, err := unix.Poll(fds, 50)
		if err == nil && n > 0 {
			return true
		}
		if ctx.Err() != nil || (!deadline.IsZero() && time.Now().After(deadline)) {
			return false
		}
	}
}
