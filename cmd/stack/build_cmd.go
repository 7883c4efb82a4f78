package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"

	"github.com/stackrun/stack/build"
	"github.com/stackrun/stack/engine/local"
	"github.com/stackrun/stack/image"
	"github.com/stackrun/stack/spec"
)

func buildCommand() *cli.Command {
	return &cli.Command{
		Name:        "build",
		Usage:       "build the images of services that have a build section",
		Description: "Builds with stack's own runtime for RUN steps; unchanged steps come from the cache.\n\nExamples:\n   stack build\n   stack build --no-cache --build-arg VERSION=1.2 web\n   stack up -d --build",
		ArgsUsage:   "[SERVICE...]",
		Flags: append(stackFileFlags(false),
			&cli.BoolFlag{Name: "no-cache", Usage: "run every step, ignoring the build cache"},
			&cli.BoolFlag{Name: "pull", Usage: "pull base images even when present"},
			&cli.StringSliceFlag{Name: "build-arg", Usage: "build arg K=V (K alone takes the value from the environment)"},
			&cli.StringFlag{Name: "progress", Usage: "progress output: plain or tty (default: tty on a terminal)"},
			insecureFlag,
		),
		Action: buildAction,
	}
}

func buildAction(c *cli.Context) error {
	args, err := parseBuildArgs(c.StringSlice("build-arg"))
	if err != nil {
		return usageError{err}
	}
	mode := c.String("progress")
	switch mode {
	case "", "auto":
		mode = "plain"
		if isTerminal(c.App.ErrWriter) {
			mode = "tty"
		}
	case "plain", "tty":
	default:
		return usageError{fmt.Errorf("--progress must be plain or tty, not %q", mode)}
	}
	st, err := spec.Load(c.Context, loadOptions(c))
	if err != nil {
		return err
	}
	names := c.Args().Slice()
	if len(names) == 0 {
		for _, n := range st.ServiceNames() {
			if st.Services[n].Build != nil {
				names = append(names, n)
			}
		}
	}
	sort.Strings(names)
	for _, n := range names {
		svc, ok := st.Services[n]
		if !ok {
			return usageError{fmt.Errorf("no service %q in the stack file", n)}
		}
		if svc.Build == nil {
			return usageError{fmt.Errorf("service %s has no build section", n)}
		}
	}
	store, err := openImages(c)
	if err != nil {
		return err
	}
	for _, n := range names {
		svc := st.Services[n]
		pr := &buildPrinter{w: c.App.ErrWriter, tty: mode == "tty", service: n}
		res, err := build.ServiceResult(c.Context, store, svc, build.Options{
			Args:          args,
			NoCache:       c.Bool("no-cache"),
			Pull:          c.Bool("pull"),
			Insecure:      c.StringSlice("insecure-registry"),
			RuntimeRoot:   filepath.Join(c.String("run-root"), "build"),
			RuntimeHelper: local.ShimPath(),
			Output:        pr.output(),
			Progress:      pr.event,
		})
		if err != nil {
			return err
		}
		for _, w := range res.Warnings {
			fmt.Fprintf(c.App.ErrWriter, "warning: %s\n", w)
		}
		tags := make([]string, len(res.Image.RepoTags))
		for i, t := range res.Image.RepoTags {
			tags[i] = image.ShortRef(t)
		}
		fmt.Fprintf(c.App.Writer, "%s\t%s\t%s\n", n, strings.Join(tags, ","), res.Image.ID)
	}
	return nil
}

// parseBuildArgs turns --build-arg values into a map; "K" alone takes $K (and is dropped when
// unset), as in Docker.
func parseBuildArgs(list []string) (map[string]string, error) {
	out := map[string]string{}
	for _, a := range list {
		k, v, ok := strings.Cut(a, "=")
		if k == "" {
			return nil, fmt.Errorf("--build-arg %q: no name", a)
		}
		if !ok {
			var set bool
			if v, set = os.LookupEnv(k); !set {
				continue
			}
		}
		out[k] = v
	}
	return out, nil
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// buildPrinter renders build progress: one line per step with its status, RUN output indented
// below its step. On a terminal, step headers are bold and statuses coloured.
type buildPrinter struct {
	mu      sync.Mutex
	w       io.Writer
	tty     bool
	service string
	midLine bool // the last output did not end in a newline
}

func (p *buildPrinter) header(e build.Event) string {
	h := fmt.Sprintf("[%s %s %d/%d] %s", p.service, e.Stage, e.Step, e.Steps, e.Instruction)
	if p.tty {
		h = "\x1b[1m" + h + "\x1b[0m"
	}
	return h
}

func (p *buildPrinter) status(s string) string {
	if !p.tty {
		return s
	}
	switch s {
	case "CACHED":
		return "\x1b[36m" + s + "\x1b[0m"
	default:
		return "\x1b[32m" + s + "\x1b[0m"
	}
}

func (p *buildPrinter) event(e build.Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.midLine {
		fmt.Fprintln(p.w)
		p.midLine = false
	}
	switch e.Status {
	case build.StatusBase:
		fmt.Fprintln(p.w, p.header(e))
	case build.StatusCached:
		fmt.Fprintf(p.w, "%s %s\n", p.header(e), p.status("CACHED"))
	case build.StatusRunning:
		fmt.Fprintln(p.w, p.header(e))
	case build.StatusDone:
		fmt.Fprintf(p.w, "  %s %s\n", p.status("DONE"), e.Duration.Round(10*time.Millisecond))
	}
}

// output is where RUN output goes: each line indented under its step.
func (p *buildPrinter) output() io.Writer {
	return writerFunc(func(b []byte) (int, error) {
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, line := range strings.SplitAfter(string(b), "\n") {
			if line == "" {
				continue
			}
			if !p.midLine {
				fmt.Fprint(p.w, "  | ")
			}
			fmt.Fprint(p.w, line)
			p.midLine = !strings.HasSuffix(line, "\n")
		}
		return len(b), nil
	})
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(b []byte) (int, error) { return f(b) }
