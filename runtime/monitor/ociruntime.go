package monitor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/stackrun/stack/internal/minijson"
)

// OCIRuntime is what the monitor needs from an OCI runtime: the lifecycle of one container
// given as a bundle directory (config.json + rootfs), plus exec for healthchecks. Two
// implementations: Runc (any binary with runc's command line: runc, crun) and stack's own
// runtime, injected through Main's builtin argument.
type OCIRuntime interface {
	// Create sets up container id from bundle without starting the user process, with the
	// given stdio as the process's fds 0-2, and returns the host pid of its init. The init
	// must end up as a child of the calling process (runc: the caller is a child subreaper).
	Create(ctx context.Context, id, bundle string, stdio ProcessIO) (pid int, err error)
	// Start runs the user process of a created container.
	Start(ctx context.Context, id string) error
	// State reports the runtime's view of the container; a missing container is ErrNotFound.
	State(ctx context.Context, id string) (State, error)
	// Kill sends sig to the container's init.
	Kill(ctx context.Context, id string, sig unix.Signal) error
	// Delete removes the container's runtime state and cgroup; force kills it first. A
	// missing container is not an error.
	Delete(ctx context.Context, id string, force bool) error
	// Exec runs p inside the running container and returns its exit code.
	Exec(ctx context.Context, id string, p ExecProcess) (exitCode int, err error)
}

// ProcessIO holds the stdio files given to a container's process. A nil file is /dev/null.
type ProcessIO struct {
	Stdin, Stdout, Stderr *os.File
}

// State is the OCI runtime state of one container.
type State struct {
	ID     string `json:"id"`
	Status string `json:"status"` // creating, created, running, stopped (OCI runtime spec)
	Pid    int    `json:"pid"`
	Bundle string `json:"bundle"`
}

// ExecProcess is a process to run inside a running container. Env is added to the
// container's environment; Cwd empty keeps the container's working directory.
type ExecProcess struct {
	Args           []string
	Env            []string
	Cwd            string
	Stdout, Stderr io.Writer
}

// ErrNotFound reports a container the runtime does not know.
var ErrNotFound = errors.New("not found")

// Runc drives an external OCI runtime binary with runc's command line (runc, crun).
type Runc struct {
	// Binary is the runtime executable.
	Binary string
	// Root is the runtime's state directory (--root).
	Root string
}

// NewRunc returns a Runc for binary (a name looked up on PATH, or a path) keeping its state
// under root.
func NewRunc(binary, root string) (*Runc, error) {
	p, err := exec.LookPath(binary)
	if err != nil {
		return nil, fmt.Errorf("find OCI runtime %s: %w", binary, err)
	}
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, fmt.Errorf("create OCI runtime root: %w", err)
	}
	return &Runc{Binary: p, Root: root}, nil
}

// run executes one runc command; runc's own log goes to a temporary file (not the container's
// stderr, which it may share) and is folded into the error.
func (r *Runc) run(ctx context.Context, stdio ProcessIO, args ...string) error {
	logf, err := os.CreateTemp(r.Root, ".log-*")
	if err != nil {
		return fmt.Errorf("runc %s: %w", args[0], err)
	}
	defer os.Remove(logf.Name())
	defer logf.Close()
	cmd := exec.CommandContext(ctx, r.Binary, append([]string{"--root", r.Root, "--log", logf.Name(), "--log-format", "json"}, args...)...)
	var stderr bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdio.Stdin, stdio.Stdout, stdio.Stderr
	if stdio.Stderr == nil {
		cmd.Stderr = &stderr
	}
	if err := cmd.Run(); err != nil {
		msg := runcLogErrors(logf)
		if msg == "" {
			msg = strings.TrimSpace(stderr.String())
		}
		if strings.Contains(msg, "does not exist") || strings.Contains(msg, "not exist") {
			return fmt.Errorf("runc %s: %s: %w", args[0], msg, ErrNotFound)
		}
		if msg != "" {
			return fmt.Errorf("runc %s: %s: %w", args[0], msg, err)
		}
		return fmt.Errorf("runc %s: %w", args[0], err)
	}
	return nil
}

// runcLogErrors returns the error-level messages of a runc JSON log.
func runcLogErrors(f *os.File) string {
	b, _ := os.ReadFile(f.Name())
	var msgs []string
	for _, line := range bytes.Split(b, []byte("\n")) {
		var level, msg string
		d := minijson.NewDec(line)
		d.Object(func(k string) {
			switch k {
			case "level":
				level = d.String()
			case "msg":
				msg = d.String()
			default:
				d.Skip()
			}
		})
		if d.End() == nil && (level == "error" || level == "fatal") {
			msgs = append(msgs, msg)
		}
	}
	return strings.Join(msgs, "; ")
}

func (r *Runc) Create(ctx context.Context, id, bundle string, stdio ProcessIO) (int, error) {
	pidFile := filepath.Join(r.Root, "."+id+".pid")
	defer os.Remove(pidFile)
	if err := r.run(ctx, stdio, "create", "--bundle", bundle, "--pid-file", pidFile, id); err != nil {
		return 0, fmt.Errorf("create container %s: %w", id, err)
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		return 0, fmt.Errorf("create container %s: read pid file: %w", id, err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0, fmt.Errorf("create container %s: pid file: %w", id, err)
	}
	return pid, nil
}

func (r *Runc) Start(ctx context.Context, id string) error {
	if err := r.run(ctx, ProcessIO{}, "start", id); err != nil {
		return fmt.Errorf("start container %s: %w", id, err)
	}
	return nil
}

func (r *Runc) State(ctx context.Context, id string) (State, error) {
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, r.Binary, "--root", r.Root, "state", id)
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if strings.Contains(msg, "does not exist") {
			return State{}, fmt.Errorf("state of container %s: %w", id, ErrNotFound)
		}
		return State{}, fmt.Errorf("state of container %s: %s: %w", id, msg, err)
	}
	d := minijson.NewDec(out.Bytes())
	s := decodeState(d)
	if err := d.End(); err != nil {
		return State{}, fmt.Errorf("state of container %s: %w", id, err)
	}
	return s, nil
}

func (r *Runc) Kill(ctx context.Context, id string, sig unix.Signal) error {
	if err := r.run(ctx, ProcessIO{}, "kill", id, strconv.Itoa(int(sig))); err != nil {
		return fmt.Errorf("signal container %s with %s: %w", id, unix.SignalName(sig), err)
	}
	return nil
}

func (r *Runc) Delete(ctx context.Context, id string, force bool) error {
	args := []string{"delete", id}
	if force {
		args = []string{"delete", "--force", id}
	}
	err := r.run(ctx, ProcessIO{}, args...)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return fmt.Errorf("delete container %s: %w", id, err)
	}
	return nil
}

// Exec runs p with `runc exec`. When ctx ends first, the exec'd process is killed by the pid
// runc recorded (runc cannot forward SIGKILL to it) and ctx's error is returned.
func (r *Runc) Exec(ctx context.Context, id string, p ExecProcess) (int, error) {
	pidFile := filepath.Join(r.Root, fmt.Sprintf(".%s.exec-%d.pid", id, time.Now().UnixNano()))
	defer os.Remove(pidFile)
	logf, err := os.CreateTemp(r.Root, ".log-*")
	if err != nil {
		return -1, fmt.Errorf("exec in container %s: %w", id, err)
	}
	defer os.Remove(logf.Name())
	defer logf.Close()
	args := []string{"--root", r.Root, "--log", logf.Name(), "--log-format", "json", "exec", "--pid-file", pidFile}
	for _, e := range p.Env {
		args = append(args, "--env", e)
	}
	if p.Cwd != "" {
		args = append(args, "--cwd", p.Cwd)
	}
	args = append(args, id)
	args = append(args, p.Args...)
	cmd := exec.Command(r.Binary, args...)
	cmd.Stdout, cmd.Stderr = p.Stdout, p.Stderr
	if err := cmd.Start(); err != nil {
		return -1, fmt.Errorf("exec in container %s: %w", id, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case <-ctx.Done():
		if b, rerr := os.ReadFile(pidFile); rerr == nil {
			if pid, aerr := strconv.Atoi(strings.TrimSpace(string(b))); aerr == nil && pid > 0 {
				_ = unix.Kill(pid, unix.SIGKILL)
			}
		}
		_ = cmd.Process.Signal(syscall.SIGKILL)
		<-done
		return -1, fmt.Errorf("exec in container %s: %w", id, ctx.Err())
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		// runc's own failures (no such container, not running) also exit non-zero; they are
		// the ones it logs.
		if msg := runcLogErrors(logf); msg != "" {
			if strings.Contains(msg, "does not exist") {
				return -1, fmt.Errorf("exec in container %s: %s: %w", id, msg, ErrNotFound)
			}
			return -1, fmt.Errorf("exec in container %s: %s", id, msg)
		}
		return ee.ExitCode(), nil
	}
	if err != nil {
		return -1, fmt.Errorf("exec in container %s: %w", id, err)
	}
	return 0, nil
}
