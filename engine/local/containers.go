package local

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/stackrun/stack/engine"
	"github.com/stackrun/stack/engine/oci"
	"github.com/stackrun/stack/events"
	"github.com/stackrun/stack/image"
	"github.com/stackrun/stack/network"
	"github.com/stackrun/stack/planner"
	"github.com/stackrun/stack/runtime"
	"github.com/stackrun/stack/runtime/builtin"
	"github.com/stackrun/stack/runtime/cgroups"
	"github.com/stackrun/stack/runtime/monitor"
	"github.com/stackrun/stack/runtime/runtimecli"
	"github.com/stackrun/stack/spec"
	"github.com/stackrun/stack/state"
	"github.com/stackrun/stack/volumes"
)

// Containers implements engine.Containers: one monitor per container, stack's own runtime below.
type Containers struct{ *Host }

var _ engine.Containers = Containers{}

// launchRecord is what Create leaves for Start, and what later commands read back.
type launchRecord struct {
	ID      string         `json:"id"`
	Name    string         `json:"name"`
	ImageID string         `json:"image_id"`
	Monitor monitor.Config `json:"monitor"`
}

func readJSON(path string, v any) error { return state.ReadJSON(path, v) }

// Create prepares everything of the container without starting it: rootfs overlay, network
// namespace, volumes (with copy-up), /etc files, OCI bundle, and the monitor's configuration.
func (c Containers) Create(ctx context.Context, cs *engine.ContainerSpec) (err error) {
	s := cs.Service
	dir := c.containerDir(cs.ID)
	if err := os.MkdirAll(dir, state.DirMode); err != nil {
		return err
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, c.cleanup(context.WithoutCancel(ctx), cs.ID))
		}
	}()
	img, err := c.Images.Get(cs.Image)
	if err != nil {
		return fmt.Errorf("image %s: %w", cs.Image, err)
	}
	cfg, err := c.Images.Config(img)
	if err != nil {
		return err
	}
	rootfs, _, err := c.Images.MountRootfs(ctx, img.ID, dir)
	if err != nil {
		return fmt.Errorf("rootfs: %w", err)
	}
	def := image.ContainerDefaults(cfg, image.Overrides{
		Entrypoint: s.Entrypoint, Command: s.Command, Environment: s.Environment,
		WorkingDir: s.WorkingDir, User: s.User,
	})
	user, err := image.ResolveUser(rootfs, def.User)
	if err != nil {
		return fmt.Errorf("user: %w", err)
	}
	env := def.Env
	if !hasEnv(env, "HOSTNAME") {
		env = append(env, "HOSTNAME="+hostname(s, cs.ID))
	}
	if !hasEnv(env, "HOME") && user.Home != "" {
		env = append(env, "HOME="+user.Home)
	}
	if !hasEnv(env, "PATH") {
		env = append(env, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
	}
	if err := createNetns(c.netnsPath(cs.ID)); err != nil {
		return fmt.Errorf("network namespace: %w", err)
	}
	mounts, err := c.mounts(ctx, cs, rootfs)
	if err != nil {
		return err
	}
	etc, err := c.writeEtc(cs.ID, s)
	if err != nil {
		return err
	}
	hard := func(res int) (uint64, bool) {
		var rl unix.Rlimit
		if unix.Getrlimit(res, &rl) != nil {
			return 0, false
		}
		return rl.Max, true
	}
	annotations := map[string]string{}
	for k, v := range cs.Labels {
		annotations[k] = v
	}
	if s.Init {
		annotations[runtime.AnnotationInit] = "true"
	}
	ocfg, err := oci.Build(oci.Input{
		Service:     s,
		Process:     oci.Process{Args: def.Args, Env: env, Cwd: def.WorkingDir, UID: user.UID, GID: user.GID, AdditionalGids: user.AdditionalGids},
		Rootfs:      "rootfs",
		NetnsPath:   c.netnsPath(cs.ID),
		Mounts:      mounts,
		Etc:         etc,
		CgroupsPath: "stack/" + cs.Project + "/" + cs.ID[:min(12, len(cs.ID))],
		Hostname:    hostname(s, cs.ID),
		Annotations: annotations,
		RlimitHard:  hard,
	})
	if err != nil {
		return err
	}
	if err := state.WriteJSON(filepath.Join(dir, "config.json"), ocfg); err != nil {
		return err
	}
	mc, err := c.monitorConfig(cs, s, def)
	if err != nil {
		return err
	}
	mc.Events = c.eventSink(cs)
	if err := state.WriteJSON(filepath.Join(dir, "local.json"), &launchRecord{ID: cs.ID, Name: cs.Name, ImageID: img.ID, Monitor: mc}); err != nil {
		return err
	}
	c.journal(mc.Events, events.Create, cs.ID)
	return nil
}

func hasEnv(env []string, key string) bool {
	for _, e := range env {
		if strings.HasPrefix(e, key+"=") {
			return true
		}
	}
	return false
}

// hostname is the service's hostname, or the short container id as Docker does.
func hostname(s *spec.Service, id string) string {
	if s.Hostname != "" {
		return s.Hostname
	}
	return id[:min(12, len(id))]
}

func (c Containers) mounts(ctx context.Context, cs *engine.ContainerSpec, rootfs string) ([]specs.Mount, error) {
	st := c.Stack
	if st == nil {
		st = &spec.Stack{Name: cs.Project, Volumes: map[string]*spec.Volume{}}
	}
	home, _ := os.UserHomeDir()
	planned, err := volumes.PlanService(st, cs.Service, volumes.PlanOptions{
		Container: cs.Name, HomeDir: home, StateRoot: c.Root, RunRoot: c.RunRoot,
	})
	if err != nil {
		return nil, err
	}
	return c.Volumes.Prepare(ctx, volumes.Container{ID: cs.ID, Rootfs: rootfs}, planned)
}

// writeEtc writes the files bind-mounted over /etc/hosts, /etc/resolv.conf and /etc/hostname.
// The network attach rewrites hosts in place later (a bind-mounted file keeps its inode).
func (c Containers) writeEtc(id string, s *spec.Service) (oci.EtcFiles, error) {
	dir := c.etcDir(id)
	if err := os.MkdirAll(dir, state.DirMode); err != nil {
		return oci.EtcFiles{}, err
	}
	hostConf, _ := os.ReadFile("/etc/resolv.conf")
	files := oci.EtcFiles{Hosts: filepath.Join(dir, "hosts"), Resolv: filepath.Join(dir, "resolv.conf"), Hostname: filepath.Join(dir, "hostname")}
	hosts := network.RenderHosts(network.Hosts{HostsOptions: network.HostsOptions{Hostname: hostname(s, id), Domainname: s.Domainname}})
	resolv := network.RenderResolvConf(hostConf, network.ResolvOptions{DNS: s.DNS, Search: s.DNSSearch, Options: s.DNSOptions})
	for path, data := range map[string][]byte{files.Hosts: hosts, files.Resolv: resolv, files.Hostname: []byte(hostname(s, id) + "\n")} {
		if err := os.WriteFile(path, data, 0o644); err != nil {
			return oci.EtcFiles{}, err
		}
	}
	return files, nil
}

func (c Containers) monitorConfig(cs *engine.ContainerSpec, s *spec.Service, def image.Defaults) (monitor.Config, error) {
	restart := monitor.RestartPolicy{}
	if s.Restart.Name != "" {
		p := s.Restart.Name
		if p == "on-failure" && s.Restart.MaxRetries > 0 {
			p = fmt.Sprintf("on-failure:%d", s.Restart.MaxRetries)
		}
		var err error
		if restart, err = monitor.ParseRestartPolicy(p); err != nil {
			return monitor.Config{}, err
		}
	}
	mc := monitor.Config{
		ID: cs.ID, Bundle: c.containerDir(cs.ID), StateDir: c.monitorDir(cs.ID), RunDir: c.runDir(cs.ID),
		Restart: restart, Runtime: c.Runtime,
	}
	if s.Logging != nil {
		if v := s.Logging.Options["max-size"]; v != "" {
			n, err := parseSize(v)
			if err != nil {
				return mc, fmt.Errorf("logging.options.max-size: %w", err)
			}
			mc.LogMaxSize = n
		}
		if v := s.Logging.Options["max-file"]; v != "" {
			if _, err := fmt.Sscan(v, &mc.LogMaxFiles); err != nil {
				return mc, fmt.Errorf("logging.options.max-file: %q is not a number", v)
			}
		}
	}
	sig := s.StopSignal
	if sig == "" {
		sig = def.StopSignal
	}
	if sig != "" {
		n := unix.SignalNum(strings.ToUpper(ensureSIG(sig)))
		if n == 0 {
			return mc, fmt.Errorf("stop_signal: unknown signal %q", sig)
		}
		mc.StopSignal = n
	}
	if s.StopGracePeriod != nil {
		mc.StopTimeout = *s.StopGracePeriod
	}
	if h := s.Healthcheck; h != nil && !h.Disable && len(h.Test) > 0 {
		mc.Healthcheck = &monitor.Healthcheck{Test: h.Test, Interval: h.Interval, Timeout: h.Timeout,
			StartPeriod: h.StartPeriod, StartInterval: h.StartInterval, Retries: h.Retries}
	} else if h == nil && def.Healthcheck != nil && len(def.Healthcheck.Test) > 0 {
		hc := def.Healthcheck
		mc.Healthcheck = &monitor.Healthcheck{Test: hc.Test, Interval: hc.Interval, Timeout: hc.Timeout,
			StartPeriod: hc.StartPeriod, Retries: hc.Retries}
	}
	return mc, nil
}

func ensureSIG(s string) string {
	if strings.HasPrefix(strings.ToUpper(s), "SIG") {
		return s
	}
	return "SIG" + s
}

// parseSize reads Docker's log sizes: 10m, 512k, 1g, or bytes.
func parseSize(v string) (int64, error) {
	var n int64
	var unit string
	if _, err := fmt.Sscanf(strings.ToLower(v), "%d%s", &n, &unit); err != nil && unit == "" {
		if _, err := fmt.Sscan(v, &n); err != nil {
			return 0, fmt.Errorf("%q is not a size", v)
		}
	}
	switch strings.TrimSuffix(unit, "b") {
	case "":
	case "k":
		n <<= 10
	case "m":
		n <<= 20
	case "g":
		n <<= 30
	default:
		return 0, fmt.Errorf("%q is not a size", v)
	}
	return n, nil
}

func (c Containers) launch(id string) (*launchRecord, error) {
	var rec launchRecord
	if err := readJSON(filepath.Join(c.containerDir(id), "local.json"), &rec); err != nil {
		if state.IsNotExist(err) {
			return nil, fmt.Errorf("container %s: %w", id, engine.ErrNotFound)
		}
		return nil, err
	}
	return &rec, nil
}

// Start launches the container's monitor, which creates and starts it in the runtime. A
// container that ran before is deleted from the runtime first and started afresh on the same
// rootfs, volumes and network namespace (remounted after a reboot).
//
// The monitor holds the sockets reserving the container's published host ports for as long
// as it supervises: those Publish just made (kept by the Host until now), or, when the ports
// were published earlier (a container started again, or adopted after its monitor died),
// sockets bound again here from the recorded bindings.
func (c Containers) Start(ctx context.Context, id string) error {
	held := c.takeHeld(id)
	defer func() {
		for _, f := range held {
			f.Close() // the monitor has its own copies
		}
	}()
	rec, err := c.launch(id)
	if err != nil {
		return err
	}
	if st, err := monitor.Inspect(rec.Monitor.StateDir, rec.Monitor.RunDir); err == nil {
		switch {
		case st.State == monitor.StateRunning && !st.Unsupervised, st.State == monitor.StateRestarting && !st.Unsupervised:
			return nil
		case st.Unsupervised:
			rec.Monitor.Adopt = true
		}
	}
	if len(held) == 0 {
		pub, err := c.Networks.HoldPorts(id)
		switch {
		case err == nil:
			held = pub.Files
		case rec.Monitor.Adopt:
			// The container runs and its ports are published: supervising it matters more
			// than the reservation, which the records still keep against other stacks.
			c.Log.Warn("adopted container's published ports are not held", "container", id, "err", err)
		default:
			return err
		}
	}
	rec.Monitor.Hold = held
	if !rec.Monitor.Adopt {
		if err := c.ensureRootfs(ctx, id, rec.ImageID); err != nil {
			return err
		}
		if err := c.ensureNetns(ctx, id); err != nil {
			return err
		}
		if rt, err := builtin.New(c.runtimeRoot(id)); err == nil {
			_ = rt.Delete(ctx, id, true)
		}
	}
	// Not recorded: the binaries may move between commands.
	rec.Monitor.Executable, rec.Monitor.RuntimeHelper = monitorPaths()
	if _, err := monitor.Launch(ctx, rec.Monitor); err != nil {
		return err
	}
	return nil
}

func (c Containers) runtimeRoot(id string) string { return filepath.Join(c.runDir(id), "runtime") }

func (c Containers) ensureRootfs(ctx context.Context, id, imageID string) error {
	rootfs := filepath.Join(c.containerDir(id), "rootfs")
	if mounted(rootfs) {
		return nil
	}
	if _, _, err := c.Images.MountRootfs(ctx, imageID, c.containerDir(id)); err != nil {
		return fmt.Errorf("rootfs: %w", err)
	}
	return nil
}

// ensureNetns makes the network namespace of container id again when it is gone (after a
// reboot the run root is empty and the namespace died with the kernel), and attaches it again
// to the networks its records name, with the same interface names and addresses.
func (c Containers) ensureNetns(ctx context.Context, id string) error {
	path := c.netnsPath(id)
	if mounted(path) {
		return nil
	}
	if err := removeNetns(path); err != nil {
		return fmt.Errorf("start container %s: remove stale network namespace: %w", id, err)
	}
	if err := createNetns(path); err != nil {
		return fmt.Errorf("start container %s: %w", id, err)
	}
	atts, err := c.Networks.Attachments(id)
	if err != nil {
		return fmt.Errorf("start container %s: %w", id, err)
	}
	for _, a := range atts {
		opts := network.AttachOptions{IPv4: a.IPv4, IfName: a.IfName, Name: a.Name, Aliases: a.Aliases, Labels: a.Labels}
		if _, err := c.Networks.Attach(ctx, a.Network, id, path, opts); err != nil {
			return fmt.Errorf("start container %s: attach its new network namespace: %w", id, err)
		}
	}
	return nil
}

// mounted reports whether path is a mount point (its device differs from its parent's).
func mounted(path string) bool {
	var a, b unix.Stat_t
	if unix.Lstat(path, &a) != nil || unix.Lstat(filepath.Dir(path), &b) != nil {
		return false
	}
	return a.Dev != b.Dev
}

// Stop asks the monitor to stop the container (stop signal, grace period, SIGKILL); the
// monitor records the stop so its restart policy does not undo it.
func (c Containers) Stop(ctx context.Context, id string, timeout time.Duration) error {
	return c.stop(ctx, id, timeout, false)
}

// StopToRemove is Stop for a container that Remove deletes next: its monitor leaves the
// runtime's record of the exited container to Remove instead of deleting it through a runtime
// helper process of its own (engine.StopToRemover).
func (c Containers) StopToRemove(ctx context.Context, id string, timeout time.Duration) error {
	return c.stop(ctx, id, timeout, true)
}

func (c Containers) stop(ctx context.Context, id string, timeout time.Duration, removing bool) error {
	rec, err := c.launch(id)
	if err != nil {
		return err
	}
	st, err := monitor.Inspect(rec.Monitor.StateDir, rec.Monitor.RunDir)
	if err != nil || st.State.Final() && !st.Unsupervised {
		return nil // never started, or already down
	}
	if st.Unsupervised {
		return c.stopUnsupervised(ctx, id, rec, timeout)
	}
	sig := rec.Monitor.StopSignal
	if sig == 0 {
		sig = unix.SIGTERM
	}
	if removing {
		return monitor.StopToRemove(ctx, rec.Monitor.StateDir, rec.Monitor.RunDir, sig, timeout)
	}
	return monitor.Stop(ctx, rec.Monitor.StateDir, rec.Monitor.RunDir, sig, timeout)
}

// stopUnsupervised stops a container whose monitor died, through the runtime directly or, when
// the runtime's record is gone with the run root while the container still runs, through a
// pidfd on the init the monitor recorded (its pid, start time and boot id checked first).
func (c Containers) stopUnsupervised(ctx context.Context, id string, rec *launchRecord, timeout time.Duration) error {
	sig := rec.Monitor.StopSignal
	if sig == 0 {
		sig = unix.SIGTERM
	}
	rt, err := builtin.New(c.runtimeRoot(id))
	if err == nil {
		_, err = rt.State(ctx, id)
	}
	if err != nil {
		return monitor.Stop(ctx, rec.Monitor.StateDir, rec.Monitor.RunDir, sig, timeout)
	}
	_ = rt.Kill(ctx, id, sig)
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		st, err := rt.State(ctx, id)
		if err != nil || st.Status == string(specs.StateStopped) {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return rt.Kill(ctx, id, unix.SIGKILL)
}

// Remove deletes the container from the runtime and everything it had on the host: rootfs
// mount and upper dir, network namespace, its use of volumes, records and logs.
func (c Containers) Remove(ctx context.Context, id string) error {
	if _, err := os.Stat(c.containerDir(id)); err != nil && state.IsNotExist(err) {
		if _, err := os.Stat(c.runDir(id)); err != nil && state.IsNotExist(err) {
			return fmt.Errorf("container %s: %w", id, engine.ErrNotFound)
		}
	}
	sink := c.sinkOf(id)
	return c.destroyed(sink, id, c.cleanup(ctx, id))
}

func (c Containers) cleanup(ctx context.Context, id string) error {
	var errs []error
	if rt, err := builtin.New(c.runtimeRoot(id)); err == nil {
		errs = append(errs, rt.Delete(ctx, id, true))
	}
	removeEmptyCgroups(filepath.Join(c.containerDir(id), "config.json"))
	rootfs := filepath.Join(c.containerDir(id), "rootfs")
	if mounted(rootfs) {
		if err := unix.Unmount(rootfs, unix.MNT_DETACH); err != nil {
			errs = append(errs, &os.PathError{Op: "unmount", Path: rootfs, Err: err})
		}
	}
	errs = append(errs, removeNetns(c.netnsPath(id)), c.Volumes.ReleaseContainer(id))
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("remove container %s: %w", id, err)
	}
	return errors.Join(os.RemoveAll(c.runDir(id)), os.RemoveAll(c.containerDir(id)))
}

// Inspect reads the monitor's record, with the live facts monitor.Inspect adds.
func (c Containers) Inspect(ctx context.Context, id string) (engine.ContainerState, error) {
	rec, err := c.launch(id)
	if err != nil {
		return engine.ContainerState{}, err
	}
	st, err := monitor.Inspect(rec.Monitor.StateDir, rec.Monitor.RunDir)
	if err != nil {
		if state.IsNotExist(err) || errors.Is(err, monitor.ErrNoRecord) {
			return engine.ContainerState{Status: planner.StatusCreated, NetNS: c.netnsPath(id)}, nil
		}
		return engine.ContainerState{}, err
	}
	out := engine.ContainerState{NetNS: c.netnsPath(id), ExitCode: st.ExitCode, OOMKilled: st.OOMKilled, StartedAt: st.StartedAt, FinishedAt: st.FinishedAt}
	switch {
	case st.Unsupervised:
		out.Status = planner.StatusUnsupervised
		out.Pid = st.ContainerPid
	case st.State == monitor.StateRunning || st.State == monitor.StateRestarting:
		out.Status = planner.StatusRunning
		out.Pid = st.ContainerPid
	case st.State == monitor.StateCreated:
		out.Status = planner.StatusCreated
	default:
		out.Status = planner.StatusExited
	}
	if st.Health != nil {
		out.Health = st.Health.Status
	}
	return out, nil
}

// Status returns the monitor's full record of container id, for ps, inspect and logs.
func (h *Host) Status(id string) (*monitor.Status, error) {
	var rec launchRecord
	if err := readJSON(filepath.Join(h.containerDir(id), "local.json"), &rec); err != nil {
		return nil, err
	}
	return monitor.Inspect(rec.Monitor.StateDir, rec.Monitor.RunDir)
}

// removeEmptyCgroups removes the container's own cgroup and the directories above it (stack/
// and stack/<project>/, made for it by the runtime) once they are empty. The runtime's Delete
// removes the container's cgroup when it still has the container's record; after a reboot (or
// a lost run root) the record is gone, and a cgroup hierarchy that outlived it keeps the empty
// directory. rmdir refuses a cgroup that still has children or processes, so no other
// container's cgroup, and no cgroup with a process in it, is ever removed here.
func removeEmptyCgroups(bundleConfig string) {
	var cfg specs.Spec
	if readJSON(bundleConfig, &cfg) != nil || cfg.Linux == nil || cfg.Linux.CgroupsPath == "" {
		return
	}
	drv, err := cgroups.New("")
	if err != nil {
		return
	}
	for p := filepath.Clean(strings.TrimLeft(cfg.Linux.CgroupsPath, "/")); p != "." && p != "/"; p = filepath.Dir(p) {
		for _, dir := range drv.Paths(p) {
			_ = unix.Rmdir(dir)
		}
	}
}

// ShimPath is cmd/stack-shim when it lies next to the running stack binary: container inits,
// exec helpers and the monitors' runtime helper then run from it instead of the whole CLI. ""
// (stack itself) otherwise.
func ShimPath() string { return runtimecli.Sibling("stack-shim") }

// monitorPaths returns the binaries a monitor runs from and runs stack's runtime in: for the
// monitor cmd/stack-monitor, else cmd/stack-shim, when they lie next to the running stack
// binary; for the runtime helper cmd/stack-shim. "" stands for stack itself, which holds both.
func monitorPaths() (monitorExe, helperExe string) {
	helperExe = ShimPath()
	monitorExe = runtimecli.Sibling("stack-monitor")
	if monitorExe == "" {
		return helperExe, helperExe
	}
	if helperExe == "" {
		if self, err := os.Executable(); err == nil {
			helperExe = self
		}
	}
	return monitorExe, helperExe
}
