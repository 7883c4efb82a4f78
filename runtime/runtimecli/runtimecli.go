// Package runtimecli is the runc-shaped command line of stack's container runtime: create,
// start, run, state, kill, delete, exec, list, stats and ps on OCI bundles. It serves two
// entry points: `stack runtime ...` inside the stack CLI, and cmd/stack-runtime, a lean binary
// of its own that starts without the CLI's dependencies (compose-go, the registry client,
// ...), for benchmarks beside runc and crun and for tools that take an OCI runtime path.
package runtimecli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/opencontainers/runtime-spec/specs-go"
	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"

	"github.com/stackrun/stack/runtime"
)

// Options says where the runtime keeps its records and which binary its helpers run from.
type Options struct {
	// DefaultRoot is the state root when --root is not given.
	DefaultRoot func(c *cli.Context) string
	// Helper returns runtime.Options.Helper: the binary the container init and exec helper
	// start from ("" = the running binary).
	Helper func() string
}

// Command is `stack runtime`: the container runtime on its own, with runc's command shape (a
// bundle directory holding config.json and rootfs/).
func Command(o Options) *cli.Command {
	return &cli.Command{
		Name:        "runtime",
		Usage:       "run single containers from OCI bundles, like runc",
		Flags:       Flags(),
		Subcommands: Commands(o),
	}
}

// Flags are the runtime's global flags (runc's --root, and the cgroup parent).
func Flags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "root", Usage: "runtime state root (default: <run-root>/runtime)"},
		&cli.StringFlag{Name: "cgroup-parent", Usage: "cgroup for containers, relative to the caller's own"},
	}
}

// Commands are the runtime's commands: create, start, run, state, kill, delete, exec, list,
// stats, ps.
func Commands(o Options) []*cli.Command {
	bundleFlag := &cli.StringFlag{Name: "bundle", Aliases: []string{"b"}, Value: ".", Usage: "bundle directory (config.json and rootfs)"}
	newRuntime := o.newRuntime
	with := func(fn func(*cli.Context, *runtime.Runtime) error) cli.ActionFunc {
		return func(c *cli.Context) error { return fn(c, newRuntime(c)) }
	}
	return []*cli.Command{
		{
			Name: "create", Usage: "create a container; it waits for start", ArgsUsage: "ID",
			Flags: []cli.Flag{bundleFlag, &cli.StringFlag{Name: "pid-file", Usage: "write the init's pid here"}},
			Action: func(c *cli.Context) error {
				id, err := oneID(c)
				if err != nil {
					return err
				}
				ct, err := newRuntime(c).Create(c.Context, id, c.String("bundle"), stdIO())
				if err != nil {
					return err
				}
				if ct.Console != nil {
					ct.Console.Close()
				}
				return writePidFile(c.String("pid-file"), ct.Pid)
			},
		},
		{
			Name: "start", Usage: "start a created container", ArgsUsage: "ID",
			Action: func(c *cli.Context) error {
				id, err := oneID(c)
				if err != nil {
					return err
				}
				return newRuntime(c).Start(c.Context, id)
			},
		},
		{
			Name: "run", Usage: "create, start and wait for a container, then delete it", ArgsUsage: "ID",
			Flags: []cli.Flag{
				bundleFlag,
				&cli.BoolFlag{Name: "detach", Aliases: []string{"d"}, Usage: "return once started"},
				&cli.StringFlag{Name: "pid-file", Usage: "write the init's pid here"},
			},
			Action: with(runtimeRun),
		},
		{
			Name: "state", Usage: "print a container's state as JSON", ArgsUsage: "ID",
			Action: func(c *cli.Context) error {
				id, err := oneID(c)
				if err != nil {
					return err
				}
				s, err := newRuntime(c).State(c.Context, id)
				if err != nil {
					return err
				}
				return printJSON(c.App.Writer, s)
			},
		},
		{
			Name: "kill", Usage: "send a signal (default SIGTERM) to a container's init", ArgsUsage: "ID [SIGNAL]",
			Action: func(c *cli.Context) error {
				if c.NArg() < 1 || c.NArg() > 2 {
					return UsageError{errors.New("kill: want ID [SIGNAL]")}
				}
				sig := unix.SIGTERM
				if c.NArg() == 2 {
					s, err := ParseSignal(c.Args().Get(1))
					if err != nil {
						return UsageError{err}
					}
					sig = s
				}
				return newRuntime(c).Kill(c.Context, c.Args().First(), sig)
			},
		},
		{
			Name: "delete", Usage: "delete a container (and its processes with --force)", ArgsUsage: "ID...",
			Flags: []cli.Flag{&cli.BoolFlag{Name: "force", Aliases: []string{"f"}, Usage: "kill a running container first"}},
			Action: func(c *cli.Context) error {
				if c.NArg() == 0 {
					return UsageError{errors.New("delete: want at least one ID")}
				}
				r := newRuntime(c)
				var errs []error
				for _, id := range c.Args().Slice() {
					errs = append(errs, r.Delete(c.Context, id, c.Bool("force")))
				}
				return errors.Join(errs...)
			},
		},
		{
			Name: "exec", Usage: "run a process in a running container", ArgsUsage: "ID COMMAND [ARG...]",
			Flags: []cli.Flag{
				&cli.StringSliceFlag{Name: "env", Aliases: []string{"e"}, Usage: "set an environment variable (K=V)"},
				&cli.StringFlag{Name: "cwd", Usage: "working directory inside the container"},
				&cli.StringFlag{Name: "user", Aliases: []string{"u"}, Usage: "UID[:GID]"},
				&cli.StringFlag{Name: "process", Aliases: []string{"p"}, Usage: "process.json (OCI process) instead of COMMAND"},
				&cli.BoolFlag{Name: "tty", Aliases: []string{"t"}, Usage: "allocate a pseudo-terminal"},
			},
			Action: with(runtimeExec),
		},
		{
			Name: "list", Usage: "list containers", Aliases: []string{"ls"},
			Flags: []cli.Flag{
				&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "ids only"},
				&cli.StringFlag{Name: "format", Aliases: []string{"f"}, Value: "table", Usage: "table or json"},
			},
			Action: with(runtimeList),
		},
		{
			Name: "stats", Usage: "print a container's cgroup counters as JSON", ArgsUsage: "ID",
			Action: func(c *cli.Context) error {
				id, err := oneID(c)
				if err != nil {
					return err
				}
				st, err := newRuntime(c).Stats(c.Context, id)
				if err != nil {
					return err
				}
				return printJSON(c.App.Writer, st)
			},
		},
		{
			Name: "ps", Usage: "list the processes of a container (host pids)", ArgsUsage: "ID",
			Flags:  []cli.Flag{&cli.StringFlag{Name: "format", Aliases: []string{"f"}, Value: "table", Usage: "table or json"}},
			Action: with(runtimePs),
		},
	}
}

func (o Options) newRuntime(c *cli.Context) *runtime.Runtime {
	root := c.String("root")
	if root == "" && o.DefaultRoot != nil {
		root = o.DefaultRoot(c)
	}
	helper := ""
	if o.Helper != nil {
		helper = o.Helper()
	}
	return runtime.New(runtime.Options{Root: root, CgroupParent: c.String("cgroup-parent"), Helper: helper})
}

// Sibling is the executable called name in the running binary's directory, "" when there is
// none: stack and stack-runtime find stack-shim, their lean helper, this way.
func Sibling(name string) string {
	self, err := os.Executable()
	if err != nil {
		return ""
	}
	p := filepath.Join(filepath.Dir(self), name)
	if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
		return p
	}
	return ""
}

// UsageError is a command-line mistake: exit code 2.
type UsageError struct{ Err error }

func (u UsageError) Error() string { return u.Err.Error() }
func (u UsageError) Unwrap() error { return u.Err }
func (u UsageError) ExitCode() int { return 2 }

func oneID(c *cli.Context) (string, error) {
	if c.NArg() != 1 {
		return "", UsageError{fmt.Errorf("%s: want exactly one container ID", c.Command.Name)}
	}
	return c.Args().First(), nil
}

func stdIO() runtime.IO {
	return runtime.IO{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr}
}

func writePidFile(path string, pid int) error {
	if path == "" {
		return nil
	}
	return os.WriteFile(path, []byte(strconv.Itoa(pid)), 0o644)
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// ParseSignal reads a signal given by number (9) or name (KILL, SIGKILL).
func ParseSignal(s string) (unix.Signal, error) {
	if n, err := strconv.Atoi(s); err == nil && n > 0 && n < 65 {
		return unix.Signal(n), nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if sig := unix.SignalNum(name); sig != 0 {
		return sig, nil
	}
	return 0, fmt.Errorf("unknown signal %q", s)
}

// StatusError ends the command with the container's exit code and no message.
type StatusError int

func (e StatusError) Error() string { return "exit status " + strconv.Itoa(int(e)) }
func (e StatusError) ExitCode() int { return int(e) }

// Quiet: the exit status is the process's own, passed through; there is nothing to add.
func (e StatusError) Quiet() {}

func runtimeRun(c *cli.Context, r *runtime.Runtime) error {
	id, err := oneID(c)
	if err != nil {
		return err
	}
	ctx := c.Context
	ct, err := r.Create(ctx, id, c.String("bundle"), stdIO())
	if err != nil {
		return err
	}
	if err := writePidFile(c.String("pid-file"), ct.Pid); err != nil {
		return errors.Join(err, r.Delete(context.WithoutCancel(ctx), id, true))
	}
	if err := r.Start(ctx, id); err != nil {
		return errors.Join(err, r.Delete(context.WithoutCancel(ctx), id, true))
	}
	if c.Bool("detach") {
		if ct.Console != nil {
			ct.Console.Close()
		}
		return nil
	}
	restore := AttachConsole(ct.Console)
	// Signals to us go to the container, as with runc run.
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, unix.SIGINT, unix.SIGTERM, unix.SIGHUP, unix.SIGQUIT, unix.SIGUSR1, unix.SIGUSR2)
	go func() {
		for s := range sigs {
			_ = r.Kill(context.WithoutCancel(ctx), id, s.(unix.Signal))
		}
	}()
	es, err := ct.Wait()
	signal.Stop(sigs)
	restore()
	if derr := r.Delete(context.WithoutCancel(ctx), id, true); derr != nil {
		err = errors.Join(err, derr)
	}
	if err != nil {
		return err
	}
	if es.Code != 0 {
		return StatusError(es.Code)
	}
	return nil
}

// AttachConsole copies between our stdio and a container's pty master, with our terminal in
// raw mode; the returned func restores it.
func AttachConsole(console *os.File) func() {
	if console == nil {
		return func() {}
	}
	restore := makeRaw(int(os.Stdin.Fd()))
	go func() { _, _ = io.Copy(console, os.Stdin) }()
	done := make(chan struct{})
	go func() { _, _ = io.Copy(os.Stdout, console); close(done) }()
	return func() {
		select {
		case <-done:
		case <-time.After(time.Second):
		}
		restore()
	}
}

// makeRaw puts the terminal on fd in raw mode (as cfmakeraw(3)) if it is one.
func makeRaw(fd int) func() {
	old, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return func() {}
	}
	t := *old
	t.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	t.Oflag &^= unix.OPOST
	t.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	t.Cflag &^= unix.CSIZE | unix.PARENB
	t.Cflag |= unix.CS8
	t.Cc[unix.VMIN], t.Cc[unix.VTIME] = 1, 0
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, &t); err != nil {
		return func() {}
	}
	return func() { _ = unix.IoctlSetTermios(fd, unix.TCSETS, old) }
}

func runtimeExec(c *cli.Context, r *runtime.Runtime) error {
	if c.NArg() < 1 || (c.NArg() < 2 && c.String("process") == "") {
		return UsageError{errors.New("exec: want ID COMMAND [ARG...] or ID --process FILE")}
	}
	id := c.Args().First()
	p, err := execProcess(c, r, id)
	if err != nil {
		return err
	}
	stdio := stdIO()
	var restore func()
	if c.Bool("tty") || p.Terminal {
		master, slave, err := runtime.OpenPty(p.ConsoleSize)
		if err != nil {
			return err
		}
		defer master.Close()
		stdio = runtime.IO{Stdin: slave, Stdout: slave, Stderr: slave, Terminal: true}
		restore = AttachConsole(master)
		defer slave.Close()
	}
	code, err := r.Exec(c.Context, id, p, stdio)
	if restore != nil {
		stdio.Stdin.Close()
		restore()
	}
	if err != nil {
		return err
	}
	if code != 0 {
		return StatusError(code)
	}
	return nil
}

// execProcess builds the exec'd process: --process FILE, or the container's own process
// from its bundle with args, env, cwd and user overridden, as runc does.
func execProcess(c *cli.Context, r *runtime.Runtime, id string) (*specs.Process, error) {
	if f := c.String("process"); f != "" {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		var p specs.Process
		if err := json.Unmarshal(b, &p); err != nil {
			return nil, fmt.Errorf("decode %s: %w", f, err)
		}
		return &p, nil
	}
	st, err := r.State(c.Context, id)
	if err != nil {
		return nil, err
	}
	spec, _, err := runtime.LoadBundle(st.Bundle)
	if err != nil {
		return nil, err
	}
	p := *spec.Process
	p.Args = c.Args().Slice()[1:]
	p.Terminal = false
	p.Env = append(append([]string(nil), p.Env...), c.StringSlice("env")...)
	if cwd := c.String("cwd"); cwd != "" {
		p.Cwd = cwd
	}
	if u := c.String("user"); u != "" {
		uid, gid, _ := strings.Cut(u, ":")
		n, err := strconv.ParseUint(uid, 10, 32)
		if err != nil {
			return nil, UsageError{fmt.Errorf("--user %q: want UID[:GID]", u)}
		}
		p.User = specs.User{UID: uint32(n)}
		if gid != "" {
			g, err := strconv.ParseUint(gid, 10, 32)
			if err != nil {
				return nil, UsageError{fmt.Errorf("--user %q: want UID[:GID]", u)}
			}
			p.User.GID = uint32(g)
		}
	}
	return &p, nil
}

func runtimeList(c *cli.Context, r *runtime.Runtime) error {
	list, err := r.List(c.Context)
	if err != nil {
		return err
	}
	switch {
	case c.Bool("quiet"):
		for _, s := range list {
			fmt.Fprintln(c.App.Writer, s.ID)
		}
		return nil
	case c.String("format") == "json":
		if list == nil {
			list = []*runtime.State{}
		}
		return printJSON(c.App.Writer, list)
	}
	tw := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tPID\tSTATUS\tBUNDLE\tCREATED")
	for _, s := range list {
		status := string(s.Status)
		if s.Exit != nil {
			status += " (" + s.Exit.String() + ")"
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\n", s.ID, s.Pid, status, s.Bundle, s.Created.Format(time.RFC3339))
	}
	return tw.Flush()
}

func runtimePs(c *cli.Context, r *runtime.Runtime) error {
	id, err := oneID(c)
	if err != nil {
		return err
	}
	pids, err := r.Pids(c.Context, id)
	if err != nil {
		return err
	}
	if c.String("format") == "json" {
		if pids == nil {
			pids = []int{}
		}
		return printJSON(c.App.Writer, pids)
	}
	tw := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PID\tCMD")
	for _, pid := range pids {
		cmd, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
		fmt.Fprintf(tw, "%d\t%s\n", pid, strings.TrimSpace(strings.ReplaceAll(string(cmd), "\x00", " ")))
	}
	return tw.Flush()
}
