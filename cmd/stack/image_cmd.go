package main

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"
	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"

	"github.com/stackrun/stack/engine/local"
	"github.com/stackrun/stack/image"
	"github.com/stackrun/stack/spec"
)

// openImages opens the image store under the state root (--root), through the engine's host
// so that the store knows which images containers use (rm refuses those, prune keeps them).
func openImages(c *cli.Context) (*image.Store, error) {
	log := slog.New(slog.NewTextHandler(c.App.ErrWriter, &slog.HandlerOptions{Level: slog.LevelWarn}))
	h, err := local.Open(c.String("root"), c.String("run-root"), log)
	if err != nil {
		return nil, fmt.Errorf("open state root: %w", err)
	}
	return h.Images, nil
}

var (
	platformFlag = &cli.StringFlag{Name: "platform", Usage: "platform to pick from multi-platform images (os/arch[/variant])", EnvVars: []string{"DOCKER_DEFAULT_PLATFORM"}}
	insecureFlag = &cli.StringSliceFlag{Name: "insecure-registry", Usage: "registry (host[:port]) to reach over plain HTTP; localhost always is", EnvVars: []string{"STACK_INSECURE_REGISTRIES"}}
	quietFlag    = &cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "print only image IDs"}
)

func imageCommand() *cli.Command {
	return &cli.Command{
		Name:  "image",
		Usage: "manage images",
		Subcommands: []*cli.Command{
			{
				Name: "pull", Usage: "pull an image from a registry", ArgsUsage: "REF",
				Flags: []cli.Flag{platformFlag, insecureFlag, quietFlag},
				Action: func(c *cli.Context) error {
					if c.NArg() != 1 {
						return usageError{fmt.Errorf("image pull takes exactly one reference")}
					}
					s, err := openImages(c)
					if err != nil {
						return err
					}
					return pullImages(c, s, []string{c.Args().First()})
				},
			},
			{
				Name: "load", Usage: "load images from a docker-archive or OCI archive", Flags: []cli.Flag{
					&cli.StringFlag{Name: "input", Aliases: []string{"i"}, Usage: "archive to read (default: stdin)"},
					platformFlag, quietFlag,
				},
				Action: imageLoad,
			},
			{
				Name: "save", Usage: "save images to a docker-archive", ArgsUsage: "REF...", Flags: []cli.Flag{
					&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "file to write (default: stdout)"},
				},
				Action: imageSave,
			},
			{
				Name: "import", Usage: "make a single-layer image from a rootfs tarball", ArgsUsage: "ROOTFS.tar [REF]",
				Action: func(c *cli.Context) error {
					if c.NArg() < 1 || c.NArg() > 2 {
						return usageError{fmt.Errorf("image import takes a tarball and an optional reference")}
					}
					s, err := openImages(c)
					if err != nil {
						return err
					}
					img, err := s.Import(c.Context, c.Args().Get(0), c.Args().Get(1))
					if err != nil {
						return err
					}
					fmt.Fprintln(c.App.Writer, img.ID)
					return nil
				},
			},
			{Name: "ls", Aliases: []string{"list"}, Usage: "list images", Flags: []cli.Flag{quietFlag,
				&cli.StringFlag{Name: "format", Usage: "table or json", Value: "table"}}, Action: imageList},
			{
				Name: "rm", Aliases: []string{"remove"}, Usage: "remove images", ArgsUsage: "REF...",
				Flags: []cli.Flag{&cli.BoolFlag{Name: "force", Aliases: []string{"f"}, Usage: "untag an image even while a container uses it"}},
				Action: func(c *cli.Context) error {
					if c.NArg() == 0 {
						return usageError{fmt.Errorf("image rm needs at least one reference")}
					}
					s, err := openImages(c)
					if err != nil {
						return err
					}
					for _, ref := range c.Args().Slice() {
						img, err := s.Remove(ref, c.Bool("force"))
						if err != nil {
							return err
						}
						fmt.Fprintf(c.App.Writer, "removed %s (%s)\n", ref, image.ShortID(img.ID))
					}
					return nil
				},
			},
			{
				Name: "tag", Usage: "give an image another name", ArgsUsage: "SOURCE TARGET",
				Action: func(c *cli.Context) error {
					if c.NArg() != 2 {
						return usageError{fmt.Errorf("image tag takes SOURCE and TARGET")}
					}
					s, err := openImages(c)
					if err != nil {
						return err
					}
					return s.Tag(c.Args().Get(0), c.Args().Get(1))
				},
			},
			{Name: "inspect", Usage: "print image records and configs as JSON", ArgsUsage: "REF...", Action: imageInspect},
			{
				Name: "prune", Usage: "remove untagged images and unreferenced layers, blobs and temporary files",
				Action: func(c *cli.Context) error {
					s, err := openImages(c)
					if err != nil {
						return err
					}
					rep, err := s.Prune()
					if err != nil {
						return err
					}
					fmt.Fprintf(c.App.Writer, "removed %d images, %d layers, %d blobs, %d temporary files\n",
						len(rep.Images), rep.Layers, rep.Blobs, rep.TempFiles)
					return nil
				},
			},
		},
	}
}

// pullCommand is `stack pull`: every image of the stack file, in parallel.
func pullCommand() *cli.Command {
	return &cli.Command{
		Name:  "pull",
		Usage: "pull the images of every service of the stack file",
		Flags: []cli.Flag{platformFlag, insecureFlag, quietFlag},
		Action: func(c *cli.Context) error {
			st, err := spec.Load(c.Context, loadOptions(c))
			if err != nil {
				return stackFileError(err)
			}
			seen := map[string]bool{}
			var refs []string
			for _, svc := range st.Services {
				if svc.Image != "" && svc.Build == nil && !seen[svc.Image] {
					seen[svc.Image] = true
					refs = append(refs, svc.Image)
				}
			}
			sort.Strings(refs)
			s, err := openImages(c)
			if err != nil {
				return err
			}
			return pullImages(c, s, refs)
		},
	}
}

func pullImages(c *cli.Context, s *image.Store, refs []string) error {
	pr := newProgressPrinter(c.App.ErrWriter, c.App.Writer, c.Bool("quiet"))
	defer pr.finish()
	g, ctx := errgroup.WithContext(c.Context)
	g.SetLimit(4)
	for _, ref := range refs {
		g.Go(func() error {
			img, err := s.Pull(ctx, ref, image.PullOptions{
				Platform: c.String("platform"), Insecure: c.StringSlice("insecure-registry"), Progress: pr.event,
			})
			if err != nil {
				return err
			}
			pr.done(ref, img)
			return nil
		})
	}
	return g.Wait()
}

// progressPrinter renders pull progress: on a terminal one line rewritten in place with bytes
// per layer in flight; otherwise one plain line per finished layer.
type progressPrinter struct {
	mu    sync.Mutex
	w     io.Writer // progress
	out   io.Writer // results
	tty   bool
	quiet bool
	cur   map[string][2]int64 // layer -> current, total
	last  time.Time
}

func newProgressPrinter(w, out io.Writer, quiet bool) *progressPrinter {
	tty := false
	if f, ok := w.(*os.File); ok {
		_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
		tty = err == nil
	}
	return &progressPrinter{w: w, out: out, tty: tty, quiet: quiet, cur: map[string][2]int64{}}
}

func (p *progressPrinter) event(e image.Progress) {
	if p.quiet {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	short := image.ShortID(e.Layer)
	if e.Status == image.StatusDownloading {
		p.cur[short] = [2]int64{e.Current, e.Total}
		if p.tty && time.Since(p.last) > 100*time.Millisecond {
			p.last = time.Now()
			keys := make([]string, 0, len(p.cur))
			for k := range p.cur {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			var parts []string
			for _, k := range keys {
				v := p.cur[k]
				parts = append(parts, fmt.Sprintf("%s %s/%s", k, humanSize(v[0]), humanSize(v[1])))
			}
			fmt.Fprintf(p.w, "\r\x1b[K%s", strings.Join(parts, "  "))
		}
		return
	}
	delete(p.cur, short)
	if p.tty {
		fmt.Fprint(p.w, "\r\x1b[K")
	}
	fmt.Fprintf(p.w, "%s: %s\n", short, e.Status)
}

func (p *progressPrinter) done(ref string, img *image.Image) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.quiet {
		fmt.Fprintln(p.out, img.ID)
		return
	}
	fmt.Fprintf(p.out, "%s: pulled %s\n", ref, img.ID)
}

func (p *progressPrinter) finish() {
	if p.tty && !p.quiet {
		fmt.Fprint(p.w, "\r\x1b[K")
	}
}

func humanSize(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%dB", n)
	}
	f, u := float64(n), "KMGTPE"
	i := -1
	for f >= unit && i < len(u)-1 {
		f /= unit
		i++
	}
	return fmt.Sprintf("%.1f%ciB", f, u[i])
}

func imageLoad(c *cli.Context) error {
	s, err := openImages(c)
	if err != nil {
		return err
	}
	path := c.String("input")
	if path == "" || path == "-" {
		// Archives are read several times (once per layer): spool stdin to a file first.
		f, err := os.CreateTemp("", "stack-load-*.tar")
		if err != nil {
			return err
		}
		defer os.Remove(f.Name())
		_, err = io.Copy(f, c.App.Reader)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("read archive from stdin: %w", err)
		}
		path = f.Name()
	}
	imgs, err := s.Load(c.Context, path, image.LoadOptions{Platform: c.String("platform")})
	if err != nil {
		return err
	}
	for _, img := range imgs {
		if c.Bool("quiet") || len(img.RepoTags) == 0 {
			fmt.Fprintf(c.App.Writer, "Loaded image ID: %s\n", img.ID)
			continue
		}
		for _, t := range img.RepoTags {
			fmt.Fprintf(c.App.Writer, "Loaded image: %s\n", image.ShortRef(t))
		}
	}
	return nil
}

func imageSave(c *cli.Context) (err error) {
	if c.NArg() == 0 {
		return usageError{fmt.Errorf("image save needs at least one reference")}
	}
	s, err := openImages(c)
	if err != nil {
		return err
	}
	out := c.String("output")
	if out == "" || out == "-" {
		if f, ok := c.App.Writer.(*os.File); ok {
			if _, terr := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS); terr == nil {
				return usageError{fmt.Errorf("refusing to write an archive to a terminal: use -o FILE or redirect")}
			}
		}
		return s.Save(c.Context, c.App.Writer, c.Args().Slice()...)
	}
	// Write next to the destination and rename, so a failed save leaves no partial archive.
	f, err := os.CreateTemp(filepath.Dir(out), "."+filepath.Base(out)+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			os.Remove(f.Name())
		}
	}()
	if err = s.Save(c.Context, f, c.Args().Slice()...); err != nil {
		f.Close()
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Chmod(f.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(f.Name(), out)
}

func imageList(c *cli.Context) error {
	s, err := openImages(c)
	if err != nil {
		return err
	}
	imgs, err := s.List()
	if err != nil {
		return err
	}
	if c.String("format") == "json" {
		enc := json.NewEncoder(c.App.Writer)
		enc.SetIndent("", "  ")
		return enc.Encode(imgs)
	}
	if c.Bool("quiet") {
		for _, img := range imgs {
			fmt.Fprintln(c.App.Writer, image.ShortID(img.ID))
		}
		return nil
	}
	type row struct{ repo, tag, id, created, size string }
	var rows []row
	now := time.Now()
	for _, img := range imgs {
		r := row{id: image.ShortID(img.ID), created: ago(now, img.Created), size: humanSize(img.Size)}
		if len(img.RepoTags) == 0 {
			r.repo, r.tag = "<none>", "<none>"
			rows = append(rows, r)
			continue
		}
		for _, t := range img.RepoTags {
			short := image.ShortRef(t)
			i := strings.LastIndex(short, ":")
			r.repo, r.tag = short[:i], short[i+1:]
			rows = append(rows, r)
		}
	}
	sort.SliceStable(rows, func(i, j int) bool {
		if rows[i].repo != rows[j].repo {
			return rows[i].repo < rows[j].repo
		}
		return rows[i].tag < rows[j].tag
	})
	tw := tabwriter.NewWriter(c.App.Writer, 0, 4, 3, ' ', 0)
	fmt.Fprintln(tw, "REPOSITORY\tTAG\tIMAGE ID\tCREATED\tSIZE")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.repo, r.tag, r.id, r.created, r.size)
	}
	return tw.Flush()
}

func ago(now, t time.Time) string {
	if t.IsZero() {
		return "unknown"
	}
	d := now.Sub(t)
	switch {
	case d < time.Minute:
		return "less than a minute ago"
	case d < time.Hour:
		return fmt.Sprintf("%d minutes ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%d hours ago", int(d.Hours()))
	case d < 60*24*time.Hour:
		return fmt.Sprintf("%d days ago", int(d.Hours()/24))
	default:
		return fmt.Sprintf("%d months ago", int(d.Hours()/24/30))
	}
}

func imageInspect(c *cli.Context) error {
	if c.NArg() == 0 {
		return usageError{fmt.Errorf("image inspect needs at least one reference")}
	}
	s, err := openImages(c)
	if err != nil {
		return err
	}
	var out []image.Inspect
	for _, ref := range c.Args().Slice() {
		img, err := s.Get(ref)
		if err != nil {
			return err
		}
		cfg, err := s.Config(img)
		if err != nil {
			return err
		}
		out = append(out, image.Inspect{Image: img, Config: cfg})
	}
	enc := json.NewEncoder(c.App.Writer)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}
