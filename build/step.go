package build

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/stackrun/stack/engine/oci"
	"github.com/stackrun/stack/image"
	"github.com/stackrun/stack/runtime"
	"github.com/stackrun/stack/spec"
)

// fsStep runs fn on a rootfs made of st's layers with a fresh upper dir, then stores that upper
// dir's diff as a layer on top of them. It returns nil when fn changed nothing.
func (b *builder) fsStep(ctx context.Context, st *stage, fn func(rootfs string) error) (*image.Layer, error) {
	dir, err := b.store.TempDir("step-*")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	o, err := b.overlay(dir, st.layers)
	if err != nil {
		return nil, err
	}
	if err := o.Mount(); err != nil {
		return nil, err
	}
	ferr := fn(o.Target)
	if err := unmount(o.Target); err != nil {
		return nil, errors.Join(ferr, err)
	}
	if ferr != nil {
		return nil, ferr
	}
	parent := ""
	if len(st.layers) > 0 {
		parent = st.layers[len(st.layers)-1].ChainID
	}
	l, empty, err := b.store.AddDiff(ctx, o.Upper, parent)
	if err != nil || empty {
		return nil, err
	}
	return &l, nil
}

// overlay describes a rootfs of layers under dir (upper, work, rootfs; an empty lower dir when
// there are no layers).
func (b *builder) overlay(dir string, layers []image.Layer) (image.Overlay, error) {
	lower, err := b.store.LowerDirs(&image.Image{ID: "build", Layers: layers})
	if err != nil {
		return image.Overlay{}, err
	}
	o := image.Overlay{Lower: lower, Upper: filepath.Join(dir, "upper"), Work: filepath.Join(dir, "work"), Target: filepath.Join(dir, "rootfs")}
	if len(lower) == 0 {
		o.Lower = []string{filepath.Join(dir, "empty")}
	}
	for _, d := range append([]string{o.Upper, o.Work, o.Target}, o.Lower[0]) {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return o, err
		}
		if err := os.Chmod(d, 0o755); err != nil {
			return o, err
		}
	}
	return o, nil
}

func unmount(target string) error {
	err := unix.Unmount(target, 0)
	if errors.Is(err, unix.EBUSY) {
		err = unix.Unmount(target, unix.MNT_DETACH)
	}
	if err != nil {
		return &os.PathError{Op: "umount", Path: target, Err: err}
	}
	return nil
}

// runEnv is a RUN step's environment: the image's, ARGs in scope that it does not set, and a
// default PATH.
func (b *builder) runEnv(st *stage) []string {
	env := append([]string(nil), st.cfg.Config.Env...)
	have := map[string]bool{}
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		have[k] = true
	}
	for _, k := range sortedKeys(st.args) {
		if !have[k] {
			env = append(env, k+"="+st.args[k])
			have[k] = true
		}
	}
	if !have["PATH"] {
		env = append(env, defaultPath)
	}
	return env
}

// network is a RUN step's network mode: its --network flag, else the build's default. "host"
// shares the host's; every other mode gets a new namespace with only loopback (no network).
func (b *builder) network(c *instructions.RunCommand) string {
	n := instructions.GetNetwork(c)
	if n == instructions.NetworkDefault {
		n = b.o.Network
	}
	if n == "host" {
		return "host"
	}
	return "none"
}

// tail keeps the last max bytes written to it.
type tail struct {
	mu  sync.Mutex
	buf []byte
	max int
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.max {
		t.buf = t.buf[len(t.buf)-t.max:]
	}
	return len(p), nil
}

func (t *tail) String() string { t.mu.Lock(); defer t.mu.Unlock(); return string(t.buf) }

// run executes a RUN step in a container of stack's runtime on st's layers.
func (b *builder) run(ctx context.Context, st *stage, c *instructions.RunCommand) (*image.Layer, error) {
	if len(c.Files) > 0 {
		return nil, fmt.Errorf("heredocs are not supported")
	}
	for _, f := range c.FlagsUsed {
		if f != "network" {
			return nil, fmt.Errorf("RUN --%s is not supported", f)
		}
	}
	args := argv(c.ShellDependantCmdLine, shellOf(st.cfg))
	if len(args) == 0 || (len(args) == 1 && strings.TrimSpace(args[0]) == "") {
		return nil, fmt.Errorf("RUN has no command")
	}
	cwd := st.cfg.Config.WorkingDir
	if cwd == "" {
		cwd = "/"
	}
	var out tail
	out.max = 64 << 10
	var code int
	layer, err := b.fsStep(ctx, st, func(rootfs string) error {
		if err := mkdirAllIn(rootfs, cwd, owner{}); err != nil {
			return fmt.Errorf("create working directory %s: %w", cwd, err)
		}
		// The runtime creates mount points the image lacks; they are not the step's content.
		var created []string
		for _, d := range []string{"proc", "dev", "sys"} {
			if _, err := os.Lstat(filepath.Join(rootfs, d)); errors.Is(err, fs.ErrNotExist) {
				created = append(created, d)
			}
		}
		u, err := image.ResolveUser(rootfs, st.cfg.Config.User)
		if err != nil {
			return fmt.Errorf("user %q: %w", st.cfg.Config.User, err)
		}
		code, err = b.runContainer(ctx, rootfs, b.network(c), oci.Process{
			Args: args, Env: b.runEnv(st), Cwd: cwd, UID: u.UID, GID: u.GID, AdditionalGids: u.AdditionalGids,
		}, &out)
		for _, d := range created {
			if rerr := os.Remove(filepath.Join(rootfs, d)); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
				err = errors.Join(err, rerr)
			}
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	if code != 0 {
		return nil, &StepError{ExitCode: code, Output: out.String(), Err: fmt.Errorf("%w with exit code %d", ErrRunFailed, code)}
	}
	return layer, nil
}

// runContainer runs p in a container on rootfs, its output streamed to Output and kept in
// keep, and returns its exit code.
func (b *builder) runContainer(ctx context.Context, rootfs, network string, p oci.Process, keep io.Writer) (int, error) {
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	id := "build-" + hex.EncodeToString(rnd[:])
	cfg, err := oci.Build(oci.Input{
		Service:  &spec.Service{Name: "build", NetworkMode: "none"},
		Process:  p,
		Rootfs:   rootfs,
		Hostname: "buildkitsandbox",
	})
	if err != nil {
		return 0, err
	}
	// Like Docker's builder: setuid tools (su, sudo) work in RUN.
	cfg.Process.NoNewPrivileges = false
	if network == "host" {
		ns := cfg.Linux.Namespaces[:0]
		for _, n := range cfg.Linux.Namespaces {
			if n.Type != specs.NetworkNamespace {
				ns = append(ns, n)
			}
		}
		cfg.Linux.Namespaces = ns
	}
	bundle := filepath.Join(filepath.Dir(rootfs), "bundle")
	if err := os.MkdirAll(bundle, 0o700); err != nil {
		return 0, err
	}
	data, err := json.Marshal(cfg)
	if err != nil {
		return 0, err
	}
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), data, 0o600); err != nil {
		return 0, err
	}
	var w io.Writer = keep
	if b.o.Output != nil {
		w = io.MultiWriter(keep, b.o.Output)
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		return 0, err
	}
	copied := make(chan struct{})
	go func() {
		io.Copy(w, pr)
		pr.Close()
		close(copied)
	}()
	rt := runtime.New(runtime.Options{Root: b.runRoot, CgroupParent: b.o.CgroupParent, Helper: b.o.RuntimeHelper})
	ctr, err := rt.Create(ctx, id, bundle, runtime.IO{Stdout: pw, Stderr: pw})
	pw.Close()
	if err != nil {
		<-copied
		return 0, fmt.Errorf("create RUN container: %w", err)
	}
	defer rt.Delete(context.WithoutCancel(ctx), id, true)
	if err := rt.Start(ctx, id); err != nil {
		rt.Kill(context.WithoutCancel(ctx), id, unix.SIGKILL)
		ctr.Wait()
		<-copied
		return 0, fmt.Errorf("start RUN container: %w", err)
	}
	stop := context.AfterFunc(ctx, func() { rt.Kill(context.WithoutCancel(ctx), id, unix.SIGKILL) })
	es, err := ctr.Wait()
	stop()
	<-copied
	if err != nil {
		return 0, fmt.Errorf("wait for RUN container: %w", err)
	}
	if ctx.Err() != nil {
		return 0, ctx.Err()
	}
	return es.Code, nil
}

// copy executes COPY or ADD: sources from the context (or --from a stage or image) into st's
// rootfs at the destination.
func (b *builder) copy(ctx context.Context, st *stage, sd instructions.SourcesAndDest, from, chown, chmod string, add bool, unpack *bool) (*image.Layer, error) {
	if len(sd.SourceContents) > 0 {
		return nil, fmt.Errorf("heredocs are not supported")
	}
	if len(sd.SourcePaths) == 0 {
		return nil, fmt.Errorf("no source")
	}
	for _, s := range sd.SourcePaths {
		if isURL(s) {
			return nil, fmt.Errorf("source %s: URLs are not supported: stack builds without network access", s)
		}
	}
	src := b.ctxSrc
	var cleanup func() error
	if from != "" {
		var err error
		src, cleanup, err = b.fromSource(ctx, from)
		if err != nil {
			return nil, err
		}
		defer cleanup()
	}
	var rels []string
	for _, s := range sd.SourcePaths {
		r, err := src.resolve(s)
		if err != nil {
			return nil, err
		}
		rels = append(rels, r...)
	}
	dest := sd.DestPath
	destDir := strings.HasSuffix(dest, "/") || dest == "." || dest == ".."
	if !path.IsAbs(dest) {
		dest = path.Join("/", st.cfg.Config.WorkingDir, dest)
	}
	dest = path.Clean(dest)
	if len(rels) > 1 && !destDir {
		return nil, fmt.Errorf("with more than one source file, the destination must be a directory and end with a /")
	}
	var mode *uint32
	if chmod != "" {
		m, err := strconv.ParseUint(chmod, 8, 32)
		if err != nil || m > 0o7777 {
			return nil, fmt.Errorf("--chmod=%s: not an octal mode", chmod)
		}
		mm := uint32(m)
		mode = &mm
	}
	return b.fsStep(ctx, st, func(rootfs string) error {
		o := owner{set: src.context, chmod: mode}
		if chown != "" {
			u, err := image.ResolveUser(rootfs, chown)
			if err != nil {
				return fmt.Errorf("--chown=%s: %w", chown, err)
			}
			o.set, o.uid, o.gid = true, int(u.UID), int(u.GID)
			if !strings.Contains(chown, ":") {
				o.gid = o.uid // Docker: a user without a group gets the same number as GID
			}
		}
		isDir := destDir
		if host, err := resolveIn(rootfs, dest); err == nil {
			if fi, err := os.Stat(host); err == nil && fi.IsDir() {
				isDir = true
			}
		}
		for _, r := range rels {
			if add && (unpack == nil || *unpack) {
				ao := o
				ao.set = chown != ""
				done, err := b.addArchive(src, r, rootfs, dest, ao)
				if err != nil {
					return err
				}
				if done {
					continue
				}
			}
			if err := copyPath(src, r, rootfs, dest, isDir, o); err != nil {
				return err
			}
		}
		return nil
	})
}

// addArchive extracts r into dest through the store's safe unpacker when it is a local tar
// archive (ADD's auto-extraction), and reports whether it was one.
// Extracted entries keep the archive's owners unless --chown is given (o.set then).
func (b *builder) addArchive(src *source, r, rootfs, dest string, o owner) (bool, error) {
	p, err := src.path(r)
	if err != nil {
		return false, err
	}
	if fi, err := os.Stat(p); err != nil || !fi.Mode().IsRegular() {
		return false, nil
	}
	isTar, unsupported, err := archiveKind(p)
	if err != nil {
		return false, err
	}
	if unsupported != "" {
		return false, fmt.Errorf("ADD %s: %s archives are not supported (gzip, zstd and plain tar are)", r, unsupported)
	}
	if !isTar {
		return false, nil
	}
	tmp, err := b.store.TempDir("add-*")
	if err != nil {
		return false, err
	}
	defer os.RemoveAll(tmp)
	f, err := os.Open(p)
	if err != nil {
		return false, err
	}
	defer f.Close()
	if _, err := image.Unpack(f, tmp, image.UnpackOptions{Privileged: os.Geteuid() == 0}); err != nil {
		return false, fmt.Errorf("extract %s: %w", r, err)
	}
	tree := &source{dir: tmp, what: r}
	return true, copyPath(tree, ".", rootfs, dest, true, o)
}

func resolveIn(rootfs, p string) (string, error) {
	return (&source{dir: rootfs}).path(p)
}

// fromSource is the rootfs of a stage or image that COPY --from reads, mounted read-only in
// effect (a throwaway upper dir).
func (b *builder) fromSource(ctx context.Context, from string) (*source, func() error, error) {
	var layers []image.Layer
	what := ""
	if j, ok := b.stageIndex(from); ok && b.stages[j] != nil {
		layers, what = b.stages[j].layers, "stage "+from
	} else {
		img, err := b.store.Get(from)
		if errors.Is(err, image.ErrNotFound) {
			img, err = b.store.Pull(ctx, from, image.PullOptions{Platform: b.o.Platform, Insecure: b.o.Insecure})
		}
		if err != nil {
			return nil, nil, fmt.Errorf("--from=%s: %w", from, err)
		}
		layers, what = img.Layers, "image "+from
	}
	dir, err := b.store.TempDir("from-*")
	if err != nil {
		return nil, nil, err
	}
	o, err := b.overlay(dir, layers)
	if err == nil {
		err = o.Mount()
	}
	if err != nil {
		os.RemoveAll(dir)
		return nil, nil, err
	}
	return &source{dir: o.Target, what: what}, func() error {
		err := unmount(o.Target)
		if err == nil {
			err = os.RemoveAll(dir)
		}
		return err
	}, nil
}
