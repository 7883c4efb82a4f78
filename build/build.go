package build

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"

	"github.com/stackrun/stack/image"
	"github.com/stackrun/stack/state"
)

// Options say what to build and how.
type Options struct {
	Context string // the build context directory
	// Dockerfile is the Dockerfile's path, relative to Context unless absolute ("" means
	// Dockerfile); DockerfileInline, when set, is its content instead.
	Dockerfile       string
	DockerfileInline string
	Target           string            // the stage to build; "" means the last
	Args             map[string]string // build args (the stack file's, then --build-arg)
	Labels           map[string]string // added to the image's labels
	Tags             []string          // references the image is tagged with
	NoCache          bool
	Pull             bool   // pull base images even when present
	Network          string // RUN's network when the step names none: "", "none" or "default" (no network), "host"
	Platform         string // "os/arch[/variant]" for base images; "" means the host's
	// RuntimeRoot holds the records of RUN containers; "" means scratch space in the store.
	RuntimeRoot string
	// CgroupParent is where RUN containers' cgroups go, relative to the caller's cgroup.
	CgroupParent string
	// RuntimeHelper is the executable RUN containers' init starts from (runtime.Options.Helper).
	RuntimeHelper string
	Insecure      []string // registries to reach over plain HTTP when pulling bases
	Output        io.Writer
	Progress      func(Event)
}

// Event is one step's progress.
type Event struct {
	Stage       string // the stage's name, or its index
	Step, Steps int    // 1-based, within the stage (FROM is step 1)
	Line        int
	Instruction string
	Status      string // one of the Status* values
	Duration    time.Duration
}

// Step statuses.
const (
	StatusBase    = "base"    // FROM: the base image or stage resolved
	StatusRunning = "running" // executing now
	StatusCached  = "cached"  // skipped: the cache had its result
	StatusDone    = "done"    // executed
)

// Result is what a build made.
type Result struct {
	Image    *image.Image
	Warnings []string
}

// StepError is a step that failed: the Dockerfile line, the instruction as written and, for a
// failing RUN, the exit code and the end of its output.
type StepError struct {
	File        string
	Line        int
	Instruction string
	ExitCode    int    // RUN's exit code, 0 for other failures
	Output      string // RUN's output (its last 64 KiB)
	Err         error
}

func (e *StepError) Error() string {
	s := fmt.Sprintf("%s:%d: %s: %v", e.File, e.Line, e.Instruction, e.Err)
	if out := strings.TrimRight(e.Output, "\n"); out != "" {
		s += "; output:\n" + out
	}
	return s
}

func (e *StepError) Unwrap() error { return e.Err }

// ErrRunFailed is wrapped by the StepError of a RUN that exited non-zero.
var ErrRunFailed = errors.New("command failed")

// defaultPath is the PATH of images built FROM scratch and of RUN steps whose image sets none.
const defaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// stage is the state of one stage while it builds.
type stage struct {
	name   string
	cfg    *v1.ConfigFile
	layers []image.Layer
	key    string
	args   map[string]string // ARGs in scope
	cmdSet bool              // a CMD in this stage: ENTRYPOINT keeps it
}

type builder struct {
	store   *image.Store
	o       Options
	df      *Dockerfile
	ctxSrc  *source
	lex     *shell.Lex
	meta    map[string]string // meta ARGs (before the first FROM) as resolved
	used    map[string]bool   // build args some ARG declared
	stages  []*stage
	runRoot string
	warn    []string
}

// Build builds the Dockerfile of o into the store and tags the image with o.Tags. Root only
// (RUN steps run in containers; layers are unpacked with their owners).
func Build(ctx context.Context, store *image.Store, o Options) (*Result, error) {
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("build: needs root (steps run on overlay mounts, RUN in containers)")
	}
	release, err := store.Hold()
	if err != nil {
		return nil, err
	}
	defer release()
	if err := os.MkdirAll(store.BuildCacheDir(), state.DirMode); err != nil {
		return nil, err
	}
	dfPath := o.Dockerfile
	if dfPath == "" {
		dfPath = "Dockerfile"
	}
	if !filepath.IsAbs(dfPath) {
		dfPath = filepath.Join(o.Context, dfPath)
	}
	data := []byte(o.DockerfileInline)
	name := "Dockerfile"
	if o.DockerfileInline == "" {
		data, err = os.ReadFile(dfPath)
		if err != nil {
			return nil, fmt.Errorf("read Dockerfile: %w", err)
		}
		name = filepath.Base(dfPath)
		if rel, err := filepath.Rel(o.Context, dfPath); err == nil && !strings.HasPrefix(rel, "..") {
			name = rel
		}
	}
	df, err := Parse(name, data)
	if err != nil {
		return nil, err
	}
	src, err := openContext(o.Context, dfPath)
	if err != nil {
		return nil, err
	}
	b := &builder{store: store, o: o, df: df, ctxSrc: src, lex: shell.NewLex(df.Escape), used: map[string]bool{}, warn: slices.Clone(df.Warnings)}
	if b.runRoot = o.RuntimeRoot; b.runRoot == "" {
		if b.runRoot, err = store.TempDir("runtime-*"); err != nil {
			return nil, err
		}
		defer os.RemoveAll(b.runRoot)
	}
	if err := b.metaArgs(); err != nil {
		return nil, err
	}
	target := len(df.Stages) - 1
	if o.Target != "" {
		i, ok := b.stageIndex(o.Target)
		if !ok {
			return nil, fmt.Errorf("%s: target stage %q not found", df.Name, o.Target)
		}
		target = i
	}
	need := b.needed(target)
	b.stages = make([]*stage, len(df.Stages))
	for i := range df.Stages {
		if !need[i] {
			continue
		}
		st, err := b.buildStage(ctx, i)
		if err != nil {
			return nil, err
		}
		b.stages[i] = st
	}
	for _, k := range sortedKeys(o.Args) {
		if !b.used[k] {
			b.warn = append(b.warn, fmt.Sprintf("build arg %s was not consumed by any ARG", k))
		}
	}
	final := b.stages[target]
	cfg := final.cfg
	if len(o.Labels) > 0 {
		cfg = cloneConfig(cfg)
		if cfg.Config.Labels == nil {
			cfg.Config.Labels = map[string]string{}
		}
		for k, v := range o.Labels {
			cfg.Config.Labels[k] = v
		}
	}
	img, err := store.CommitImage(cfg, final.layers, o.Tags)
	if err != nil {
		return nil, fmt.Errorf("commit image: %w", err)
	}
	return &Result{Image: img, Warnings: b.warn}, nil
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// metaArgs resolves the ARGs before the first FROM (usable in FROM lines) and the automatic
// platform args.
func (b *builder) metaArgs() error {
	plat := b.o.Platform
	if plat == "" {
		plat = image.DefaultPlatform()
	}
	parts := strings.Split(plat, "/")
	b.meta = map[string]string{
		"TARGETPLATFORM": plat, "BUILDPLATFORM": "linux/" + goruntime.GOARCH,
		"BUILDOS": "linux", "BUILDARCH": goruntime.GOARCH, "TARGETOS": parts[0],
	}
	if len(parts) > 1 {
		b.meta["TARGETARCH"] = parts[1]
	}
	if len(parts) > 2 {
		b.meta["TARGETVARIANT"] = parts[2]
	}
	for _, a := range b.df.MetaArgs {
		for _, kv := range a.Args {
			b.used[kv.Key] = true
			if v, ok := b.o.Args[kv.Key]; ok {
				b.meta[kv.Key] = v
			} else if kv.Value != nil {
				v, _, err := b.lex.ProcessWord(*kv.Value, envGetter(b.meta))
				if err != nil {
					return fmt.Errorf("%s: ARG %s: %w", b.df.Name, kv.Key, err)
				}
				b.meta[kv.Key] = v
			} else if _, ok := b.meta[kv.Key]; !ok {
				b.meta[kv.Key] = ""
			}
		}
	}
	return nil
}

func (b *builder) stageIndex(name string) (int, bool) {
	for i, s := range b.df.Stages {
		if s.Name != "" && strings.EqualFold(s.Name, name) {
			return i, true
		}
	}
	if n, err := strconv.Atoi(name); err == nil && n >= 0 && n < len(b.df.Stages) {
		return n, true
	}
	return 0, false
}

// needed marks the stages target depends on (FROM <stage>, COPY --from=<stage>); BuildKit
// skips the others, and so does stack.
func (b *builder) needed(target int) map[int]bool {
	need := map[int]bool{}
	var mark func(i int)
	mark = func(i int) {
		if need[i] {
			return
		}
		need[i] = true
		s := b.df.Stages[i]
		base, _, _ := b.lex.ProcessWord(s.BaseName, envGetter(b.meta))
		if j, ok := b.stageIndex(base); ok && j < i && !isNumber(base) {
			mark(j)
		}
		for _, c := range s.Commands {
			if cp, ok := c.(*instructions.CopyCommand); ok && cp.From != "" {
				if j, ok := b.stageIndex(cp.From); ok && j < i {
					mark(j)
				}
			}
		}
	}
	mark(target)
	return need
}

func isNumber(s string) bool { _, err := strconv.Atoi(s); return err == nil }

func (b *builder) event(st *stage, e Event) {
	if b.o.Progress != nil {
		e.Stage = st.name
		b.o.Progress(e)
	}
}

func (b *builder) stepError(line int, instr string, err error) error {
	var se *StepError
	if errors.As(err, &se) && se.File == "" {
		se.File, se.Line, se.Instruction = b.df.Name, line, instr
		return se
	}
	return &StepError{File: b.df.Name, Line: line, Instruction: instr, Err: err}
}

// written is the instruction as written.
func written(c instructions.Command) string {
	if s, ok := c.(fmt.Stringer); ok {
		return s.String()
	}
	return c.Name()
}

func (b *builder) buildStage(ctx context.Context, i int) (*stage, error) {
	s := b.df.Stages[i]
	st := &stage{name: s.Name, args: map[string]string{}}
	if st.name == "" {
		st.name = "stage-" + strconv.Itoa(i)
	}
	steps := len(s.Commands) + 1
	line := 0
	if len(s.Location) > 0 {
		line = s.Location[0].Start.Line
	}
	fromErr := func(err error) error {
		return &StepError{File: b.df.Name, Line: line, Instruction: strings.TrimSpace(s.SourceCode), Err: err}
	}
	base, _, err := b.lex.ProcessWord(s.BaseName, envGetter(b.meta))
	if err != nil {
		return nil, fromErr(err)
	}
	platform, _, err := b.lex.ProcessWord(s.Platform, envGetter(b.meta))
	if err != nil {
		return nil, fromErr(err)
	}
	if platform == "" {
		platform = b.o.Platform
	}
	start := time.Now()
	if err := b.from(ctx, st, i, base, platform); err != nil {
		return nil, fromErr(err)
	}
	triggers, err := b.triggers(st)
	if err != nil {
		return nil, fromErr(err)
	}
	steps += len(triggers)
	b.event(st, Event{Step: 1, Steps: steps, Line: line, Instruction: strings.TrimSpace(s.SourceCode), Status: StatusBase, Duration: time.Since(start)})
	for n, c := range append(triggers, s.Commands...) {
		start := time.Now()
		line := line
		instr := written(c)
		if n < len(triggers) {
			instr = "ONBUILD " + instr // the base's trigger, run right after FROM
		} else if loc := c.Location(); len(loc) > 0 {
			line = loc[0].Start.Line
		}
		ev := Event{Step: n + 2, Steps: steps, Line: line, Instruction: instr}
		cached, err := b.step(ctx, st, c, func() { ev.Status = StatusRunning; b.event(st, ev) })
		if err != nil {
			return nil, b.stepError(line, instr, err)
		}
		ev.Status, ev.Duration = StatusDone, time.Since(start)
		if cached {
			ev.Status = StatusCached
		}
		b.event(st, ev)
	}
	return st, nil
}

// from starts stage i from base: an earlier stage, scratch, or an image (pulled when missing
// or when Pull is set).
func (b *builder) from(ctx context.Context, st *stage, i int, base, platform string) error {
	if j, ok := b.stageIndex(base); ok && j < i && !isNumber(base) {
		prev := b.stages[j]
		st.cfg, st.layers, st.key = cloneConfig(prev.cfg), slices.Clone(prev.layers), prev.key
		return nil
	}
	if strings.EqualFold(base, "scratch") {
		plat := platform
		if plat == "" {
			plat = image.DefaultPlatform()
		}
		parts := strings.Split(plat, "/")
		cfg := &v1.ConfigFile{OS: parts[0], RootFS: v1.RootFS{Type: "layers"}, Config: v1.Config{Env: []string{defaultPath}}}
		if len(parts) > 1 {
			cfg.Architecture = parts[1]
		}
		if len(parts) > 2 {
			cfg.Variant = parts[2]
		}
		st.cfg, st.key = cfg, stepKey("scratch", plat)
		return nil
	}
	if base == "" {
		return fmt.Errorf("FROM names no image")
	}
	img, err := b.store.Get(base)
	if b.o.Pull || errors.Is(err, image.ErrNotFound) {
		img, err = b.store.Pull(ctx, base, image.PullOptions{Platform: platform, Insecure: b.o.Insecure})
	}
	if err != nil {
		return fmt.Errorf("base image %s: %w", base, err)
	}
	cfg, err := b.store.Config(img)
	if err != nil {
		return err
	}
	if platform != "" {
		want := strings.Split(platform, "/")
		if cfg.OS != want[0] || (len(want) > 1 && cfg.Architecture != want[1]) {
			return fmt.Errorf("base image %s is %s/%s, not %s", base, cfg.OS, cfg.Architecture, platform)
		}
	}
	cfg = cloneConfig(cfg)
	st.cfg, st.layers, st.key = cfg, slices.Clone(img.Layers), stepKey("image", img.ID)
	return nil
}

// triggers takes the ONBUILD triggers out of the base's config (a child image does not inherit
// them) and parses them; Docker runs them right after FROM.
func (b *builder) triggers(st *stage) ([]instructions.Command, error) {
	list := st.cfg.Config.OnBuild
	if len(list) == 0 {
		return nil, nil
	}
	st.cfg = cloneConfig(st.cfg)
	st.cfg.Config.OnBuild = nil
	var out []instructions.Command
	for _, t := range list {
		res, err := parser.Parse(strings.NewReader(t))
		if err != nil {
			return nil, fmt.Errorf("ONBUILD trigger %q of the base: %w", t, unwrapLocation(err))
		}
		for _, n := range res.AST.Children {
			v, err := instructions.ParseInstruction(n)
			if err != nil {
				return nil, fmt.Errorf("ONBUILD trigger %q of the base: %w", t, unwrapLocation(err))
			}
			c, ok := v.(instructions.Command)
			if !ok {
				return nil, fmt.Errorf("ONBUILD trigger %q of the base is not allowed", t)
			}
			switch c.(type) {
			case *instructions.OnbuildCommand, *instructions.MaintainerCommand:
				return nil, fmt.Errorf("ONBUILD trigger %q of the base is not allowed", t)
			}
			out = append(out, c)
		}
	}
	return out, nil
}

// env is what variables in a stage's instructions expand from: ARGs in scope, overridden by
// the image's environment.
func (st *stage) env() map[string]string {
	m := make(map[string]string, len(st.args)+len(st.cfg.Config.Env))
	for k, v := range st.args {
		m[k] = v
	}
	for _, kv := range st.cfg.Config.Env {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	return m
}

type envGetter map[string]string

func (e envGetter) Get(k string) (string, bool) { v, ok := e[k]; return v, ok }
func (e envGetter) Keys() []string              { return sortedKeys(e) }

// step runs one instruction of st: ARG scope and expansion always, the rest from the cache when
// its key has a record. It reports whether the cache was used; running is called before a step
// is executed.
func (b *builder) step(ctx context.Context, st *stage, c instructions.Command, running func()) (bool, error) {
	if ex, ok := c.(instructions.SupportsSingleWordExpansion); ok {
		env := envGetter(st.env())
		if err := ex.Expand(func(w string) (string, error) {
			v, _, err := b.lex.ProcessWord(w, env)
			return v, err
		}); err != nil {
			return false, err
		}
	}
	extra := ""
	switch c := c.(type) {
	case *instructions.ExposeCommand:
		// buildkit's ExposeCommand has no Expand: one entry may expand to several ports.
		env := envGetter(st.env())
		var ports []string
		for _, p := range c.Ports {
			words, err := b.lex.ProcessWords(p, env)
			if err != nil {
				return false, err
			}
			ports = append(ports, words...)
		}
		c.Ports = ports
	case *instructions.ArgCommand:
		for _, kv := range c.Args {
			b.used[kv.Key] = true
			switch v, ok := b.o.Args[kv.Key]; {
			case ok:
				st.args[kv.Key] = v
			case kv.Value != nil:
				st.args[kv.Key] = *kv.Value
			default:
				st.args[kv.Key] = b.meta[kv.Key]
			}
			extra += kv.Key + "=" + st.args[kv.Key] + "\x00"
		}
	case *instructions.CmdCommand:
		st.cmdSet = true
	case *instructions.RunCommand:
		extra = strings.Join(b.runEnv(st), "\x00") + "\x00" + b.network(c)
	case *instructions.CopyCommand:
		if len(c.ExcludePatterns) > 0 || c.Parents {
			return false, fmt.Errorf("COPY --exclude and --parents are not supported")
		}
		h, err := b.copyHash(st, c.From, c.SourcePaths)
		if err != nil {
			return false, err
		}
		extra = h
	case *instructions.AddCommand:
		if len(c.ExcludePatterns) > 0 || c.Checksum != "" {
			return false, fmt.Errorf("ADD --exclude and --checksum are not supported")
		}
		h, err := b.copyHash(st, "", c.SourcePaths)
		if err != nil {
			return false, err
		}
		extra = h
	}
	key := stepKey(st.key, c.Name(), jsonString(c), extra)
	if !b.o.NoCache {
		if rec, ok := lookup(b.store, key); ok {
			st.cfg, st.layers, st.key = rec.Config, rec.Layers, key
			return true, nil
		}
	}
	running()
	cfg := cloneConfig(st.cfg)
	layers := st.layers
	now := time.Now().UTC().Truncate(time.Second)
	var layer *image.Layer
	var err error
	switch c := c.(type) {
	case *instructions.RunCommand:
		layer, err = b.run(ctx, st, c)
	case *instructions.CopyCommand:
		layer, err = b.copy(ctx, st, c.SourcesAndDest, c.From, c.Chown, c.Chmod, false, nil)
	case *instructions.AddCommand:
		layer, err = b.copy(ctx, st, c.SourcesAndDest, "", c.Chown, c.Chmod, true, c.Unpack)
	case *instructions.WorkdirCommand:
		wd := c.Path
		if !path.IsAbs(wd) {
			wd = path.Join("/", cfg.Config.WorkingDir, wd)
		}
		cfg.Config.WorkingDir = path.Clean(wd)
		layer, err = b.fsStep(ctx, st, func(rootfs string) error {
			return mkdirAllIn(rootfs, cfg.Config.WorkingDir, owner{})
		})
	default:
		err = applyMeta(cfg, st, c)
	}
	if err != nil {
		return false, err
	}
	h := v1.History{Created: v1.Time{Time: now}, CreatedBy: createdBy(c, st), EmptyLayer: layer == nil}
	cfg.History = append(cfg.History, h)
	cfg.Created = v1.Time{Time: now}
	if layer != nil {
		layers = append(slices.Clone(layers), *layer)
	}
	st.cfg, st.layers, st.key = cfg, layers, key
	if err := record(b.store, key, cfg, layers); err != nil {
		return false, fmt.Errorf("record build cache: %w", err)
	}
	return false, nil
}

// createdBy is the history line Docker writes for an instruction.
func createdBy(c instructions.Command, st *stage) string {
	if r, ok := c.(*instructions.RunCommand); ok {
		return "RUN " + strings.Join(argv(r.ShellDependantCmdLine, shellOf(st.cfg)), " ") + " # buildkit"
	}
	return written(c) + " # buildkit"
}

func shellOf(cfg *v1.ConfigFile) []string {
	if len(cfg.Config.Shell) > 0 {
		return cfg.Config.Shell
	}
	return []string{"/bin/sh", "-c"}
}

// argv is a RUN, CMD or ENTRYPOINT command line as Docker runs it: the exec form as given, the
// shell form wrapped in SHELL.
func argv(c instructions.ShellDependantCmdLine, sh []string) []string {
	if !c.PrependShell {
		return slices.Clone(c.CmdLine)
	}
	return append(slices.Clone(sh), strings.Join(c.CmdLine, " "))
}

// applyMeta applies an instruction that only changes the image config.
func applyMeta(cfg *v1.ConfigFile, st *stage, c instructions.Command) error {
	cc := &cfg.Config
	switch c := c.(type) {
	case *instructions.ArgCommand:
	case *instructions.EnvCommand:
		for _, kv := range c.Env {
			cc.Env = setEnv(cc.Env, kv.Key, kv.Value)
		}
	case *instructions.LabelCommand:
		if cc.Labels == nil {
			cc.Labels = map[string]string{}
		}
		for _, kv := range c.Labels {
			cc.Labels[kv.Key] = kv.Value
		}
	case *instructions.MaintainerCommand:
		cfg.Author = c.Maintainer
	case *instructions.UserCommand:
		cc.User = c.User
	case *instructions.ExposeCommand:
		if cc.ExposedPorts == nil {
			cc.ExposedPorts = map[string]struct{}{}
		}
		for _, p := range c.Ports {
			if !strings.Contains(p, "/") {
				p += "/tcp"
			}
			cc.ExposedPorts[strings.ToLower(p)] = struct{}{}
		}
	case *instructions.VolumeCommand:
		if cc.Volumes == nil {
			cc.Volumes = map[string]struct{}{}
		}
		for _, v := range c.Volumes {
			if v == "" {
				return fmt.Errorf("VOLUME names an empty path")
			}
			cc.Volumes[v] = struct{}{}
		}
	case *instructions.StopSignalCommand:
		cc.StopSignal = c.Signal
	case *instructions.CmdCommand:
		cc.Cmd = argv(c.ShellDependantCmdLine, shellOf(cfg))
	case *instructions.EntrypointCommand:
		cc.Entrypoint = argv(c.ShellDependantCmdLine, shellOf(cfg))
		if !st.cmdSet {
			// Docker: an ENTRYPOINT resets the CMD inherited from the base.
			cc.Cmd = nil
		}
	case *instructions.ShellCommand:
		cc.Shell = slices.Clone(c.Shell)
	case *instructions.HealthCheckCommand:
		h := c.Health
		cc.Healthcheck = &v1.HealthConfig{Test: slices.Clone(h.Test), Interval: h.Interval, Timeout: h.Timeout, StartPeriod: h.StartPeriod, Retries: h.Retries}
	case *instructions.OnbuildCommand:
		cc.OnBuild = append(cc.OnBuild, c.Expression)
	default:
		return fmt.Errorf("%s is not supported", strings.ToUpper(c.Name()))
	}
	return nil
}

func setEnv(env []string, k, v string) []string {
	for i, kv := range env {
		if key, _, _ := strings.Cut(kv, "="); key == k {
			out := slices.Clone(env)
			out[i] = k + "=" + v
			return out
		}
	}
	return append(slices.Clone(env), k+"="+v)
}

func cloneConfig(c *v1.ConfigFile) *v1.ConfigFile {
	out := *c
	cc := &out.Config
	cc.Env = slices.Clone(c.Config.Env)
	cc.Cmd = slices.Clone(c.Config.Cmd)
	cc.Entrypoint = slices.Clone(c.Config.Entrypoint)
	cc.Shell = slices.Clone(c.Config.Shell)
	cc.OnBuild = slices.Clone(c.Config.OnBuild)
	cc.Labels = cloneMap(c.Config.Labels)
	cc.ExposedPorts = cloneMap(c.Config.ExposedPorts)
	cc.Volumes = cloneMap(c.Config.Volumes)
	out.History = slices.Clone(c.History)
	out.RootFS.DiffIDs = slices.Clone(c.RootFS.DiffIDs)
	return &out
}

func cloneMap[V any](m map[string]V) map[string]V {
	if m == nil {
		return nil
	}
	out := make(map[string]V, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// copyHash is the content part of a COPY or ADD cache key: for sources in the context, the
// hash of everything they copy; --from sources are covered by the stage's or image's key.
func (b *builder) copyHash(st *stage, from string, srcs []string) (string, error) {
	if from != "" {
		if j, ok := b.stageIndex(from); ok && b.stages[j] != nil {
			return "stage:" + b.stages[j].key, nil
		}
		img, err := b.store.Get(from)
		if err != nil {
			return "", fmt.Errorf("COPY --from=%s: %w", from, err)
		}
		return "image:" + img.ID, nil
	}
	h := sha256.New()
	for _, s := range srcs {
		if isURL(s) {
			continue // refused when the step runs
		}
		rels, err := b.ctxSrc.resolve(s)
		if err != nil {
			return "", err
		}
		for _, r := range rels {
			if err := b.ctxSrc.hashInto(h, r); err != nil {
				return "", fmt.Errorf("read %s: %w", r, err)
			}
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func isURL(s string) bool {
	for _, p := range []string{"http://", "https://", "git@", "git://", "ssh://"} {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}
