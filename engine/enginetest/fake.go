// Package enginetest holds in-memory fakes of the engine's host interfaces (Containers,
// Networks, Volumes, Images) for tests that need no root. One Host backs all four and records
// every call in order; containers are steerable per service like nomad's mock driver: exit after
// a time with a code, fail on create or start, take a while to stop, become healthy after a
// time, report an OOM kill. The fakes run on the real clock; they never touch the host.
package enginetest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/stackrun/stack/engine"
	"github.com/stackrun/stack/planner"
	"github.com/stackrun/stack/spec"
)

// Behavior steers the fake containers of one service (or one replica).
type Behavior struct {
	CreateError  error         // Create fails with this
	StartError   error         // Start fails with this
	ExitAfter    time.Duration // the process exits this long after start; 0: runs until stopped
	ExitCode     int           // exit code when it exits by itself
	OOM          bool          // the exit is reported as an OOM kill (exit code 137)
	StopDelay    time.Duration // Stop takes this long
	HealthyAfter time.Duration // with a healthcheck: "healthy" this long after start ("starting" before)
	Unhealthy    bool          // with a healthcheck: "unhealthy" instead, after HealthyAfter
}

// Call is one recorded call on a fake.
type Call struct {
	Op       string // create, start, stop, remove, ensure, attach, detach, pull, build, ...
	Resource string // container:web:1, network:default, volume:data, image:<ref>
	ID       string // container id for container calls
	At       time.Time
}

// String is "<op> <resource>".
func (c Call) String() string { return c.Op + " " + c.Resource }

// Host is the fake host. Its zero value is not usable; use New.
type Host struct {
	// OpDelay is how long every mutating call takes (so concurrency is observable).
	OpDelay time.Duration

	mu          sync.Mutex
	calls       []Call
	behaviors   map[string]Behavior
	containers  map[string]*container
	networks    map[string]map[string]*spec.Network // project -> key -> network
	volumes     map[string]map[string]*spec.Volume
	images      map[string]string // ref -> digest present
	remote      map[string]string // ref -> digest a pull fetches
	inFlight    int
	maxInFlight int
	failOps     map[string]error  // "<op> <resource>" -> error
	ports       map[string]string // "<host ip>:<port>/<proto>" -> container id
}

type container struct {
	spec      engine.ContainerSpec
	resource  string
	b         Behavior
	status    planner.ContainerStatus
	exitCode  int
	oom       bool
	pid       int
	startedAt time.Time
	stoppedAt time.Time
}

// New returns an empty fake host.
func New() *Host {
	return &Host{
		behaviors:  map[string]Behavior{},
		containers: map[string]*container{},
		networks:   map[string]map[string]*spec.Network{},
		volumes:    map[string]map[string]*spec.Volume{},
		images:     map[string]string{},
		remote:     map[string]string{},
		failOps:    map[string]error{},
		ports:      map[string]string{},
	}
}

// Set steers the containers of service (key "web") or of one replica (key "web:2"), for
// containers created from now on.
func (h *Host) Set(key string, b Behavior) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.behaviors[key] = b
}

// FailOn makes the call "<op> <resource>" (e.g. "ensure network:default") fail with err.
func (h *Host) FailOn(call string, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.failOps[call] = err
}

// SetRemote sets the digest a pull of ref fetches.
func (h *Host) SetRemote(ref, digest string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.remote[ref] = digest
}

// SetImage makes ref present locally with digest.
func (h *Host) SetImage(ref, digest string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.images[ref] = digest
}

// Calls returns the recorded calls in order.
func (h *Host) Calls() []Call {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.calls)
}

// ResetCalls forgets the recorded calls and the concurrency high-water mark.
func (h *Host) ResetCalls() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.calls, h.maxInFlight = nil, 0
}

// MaxConcurrent is the most mutating calls that were in flight at once.
func (h *Host) MaxConcurrent() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.maxInFlight
}

// Container returns the live state of the container, and whether it exists.
func (h *Host) Container(id string) (engine.ContainerState, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	c := h.containers[id]
	if c == nil {
		return engine.ContainerState{}, false
	}
	return c.state(time.Now()), true
}

// ContainerIDs returns the ids of all containers that exist, sorted.
func (h *Host) ContainerIDs() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Sorted(maps.Keys(h.containers))
}

// Kill makes a running container exit now with code, as if it crashed or was killed.
func (h *Host) Kill(id string, code int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if c := h.containers[id]; c != nil && c.state(time.Now()).Status == planner.StatusRunning {
		c.status, c.exitCode, c.stoppedAt, c.pid = planner.StatusExited, code, time.Now(), 0
	}
}

// Lose makes the runtime forget a container (as after a reboot wiped its state).
func (h *Host) Lose(id string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.containers, id)
}

// Containers, Networks, Volumes and Images return the fakes of the engine interfaces.
func (h *Host) Containers() *Containers { return &Containers{h} }
func (h *Host) Networks() *Networks     { return &Networks{h} }
func (h *Host) Volumes() *Volumes       { return &Volumes{h} }
func (h *Host) Images() *Images         { return &Images{h} }

// Config fills the host interfaces of an engine.Config.
func (h *Host) Config(cfg engine.Config) engine.Config {
	cfg.Containers, cfg.Networks, cfg.Volumes, cfg.Images = h.Containers(), h.Networks(), h.Volumes(), h.Images()
	return cfg
}

// begin records a mutating call and counts it in flight; the returned func ends it.
func (h *Host) begin(op, resource, id string) (end func(), err error) {
	h.mu.Lock()
	h.calls = append(h.calls, Call{Op: op, Resource: resource, ID: id, At: time.Now()})
	h.inFlight++
	h.maxInFlight = max(h.maxInFlight, h.inFlight)
	err = h.failOps[op+" "+resource]
	h.mu.Unlock()
	if h.OpDelay > 0 {
		time.Sleep(h.OpDelay) // the fake's simulated work, not a test wait
	}
	return func() {
		h.mu.Lock()
		h.inFlight--
		h.mu.Unlock()
	}, err
}

// state computes the live state at now from the behaviour: exits and health are lazy.
func (c *container) state(now time.Time) engine.ContainerState {
	if c.status == planner.StatusRunning && c.b.ExitAfter > 0 && now.Sub(c.startedAt) >= c.b.ExitAfter {
		c.status, c.exitCode, c.oom, c.pid = planner.StatusExited, c.b.ExitCode, c.b.OOM, 0
		c.stoppedAt = c.startedAt.Add(c.b.ExitAfter)
		if c.b.OOM {
			c.exitCode = 137
		}
	}
	st := engine.ContainerState{Status: c.status, ExitCode: c.exitCode, OOMKilled: c.oom, Pid: c.pid,
		StartedAt: c.startedAt, FinishedAt: c.stoppedAt}
	if hc := c.spec.Service.Healthcheck; hc != nil && !hc.Disable && c.status == planner.StatusRunning {
		switch {
		case now.Sub(c.startedAt) < c.b.HealthyAfter:
			st.Health = "starting"
		case c.b.Unhealthy:
			st.Health = "unhealthy"
		default:
			st.Health = "healthy"
		}
	}
	return st
}

// Containers is the fake engine.Containers.
type Containers struct{ h *Host }

var _ engine.Containers = (*Containers)(nil)

func (f *Containers) Create(ctx context.Context, cs *engine.ContainerSpec) error {
	h := f.h
	res := planner.ContainerResource(cs.Service.Name, cs.Number)
	end, err := h.begin("create", res, cs.ID)
	defer end()
	if err != nil {
		return err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	b, ok := h.behaviors[cs.Service.Name+":"+strconv.Itoa(cs.Number)]
	if !ok {
		b = h.behaviors[cs.Service.Name]
	}
	if b.CreateError != nil {
		return b.CreateError
	}
	if _, dup := h.containers[cs.ID]; dup {
		return fmt.Errorf("container %s already exists", cs.ID)
	}
	for _, c := range h.containers {
		if c.spec.Name == cs.Name && cs.Service.ContainerName != "" {
			return fmt.Errorf("container name %s already in use", cs.Name)
		}
	}
	h.containers[cs.ID] = &container{spec: *cs, resource: res, b: b, status: planner.StatusCreated, pid: 1000 + len(h.calls)}
	return nil
}

func (f *Containers) lookup(id string) (*container, error) {
	c := f.h.containers[id]
	if c == nil {
		return nil, fmt.Errorf("container %s: %w", id, engine.ErrNotFound)
	}
	return c, nil
}

func (f *Containers) resource(id string) string {
	f.h.mu.Lock()
	defer f.h.mu.Unlock()
	if c := f.h.containers[id]; c != nil {
		return c.resource
	}
	return "container:?"
}

func (f *Containers) Start(ctx context.Context, id string) error {
	h := f.h
	end, err := h.begin("start", f.resource(id), id)
	defer end()
	if err != nil {
		return err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	c, err := f.lookup(id)
	if err != nil {
		return err
	}
	if st := c.state(time.Now()); st.Status == planner.StatusRunning {
		return fmt.Errorf("container %s is already running", id)
	}
	if c.b.StartError != nil {
		return c.b.StartError
	}
	c.status, c.exitCode, c.oom, c.startedAt, c.stoppedAt = planner.StatusRunning, 0, false, time.Now(), time.Time{}
	return nil
}

func (f *Containers) Stop(ctx context.Context, id string, timeout time.Duration) error {
	h := f.h
	end, err := h.begin("stop", f.resource(id), id)
	defer end()
	if err != nil {
		return err
	}
	h.mu.Lock()
	c, err := f.lookup(id)
	var delay time.Duration
	if err == nil {
		delay = c.b.StopDelay
	}
	h.mu.Unlock()
	if err != nil {
		return err
	}
	if delay > 0 {
		time.Sleep(min(delay, timeout)) // simulated slow stop
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if st := c.state(time.Now()); st.Status == planner.StatusRunning || st.Status == planner.StatusCreated {
		c.status, c.exitCode, c.stoppedAt, c.pid = planner.StatusExited, 143, time.Now(), 0
	}
	return nil
}

func (f *Containers) Remove(ctx context.Context, id string) error {
	h := f.h
	end, err := h.begin("remove", f.resource(id), id)
	defer end()
	if err != nil {
		return err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	c, err := f.lookup(id)
	if err != nil {
		return err
	}
	if c.state(time.Now()).Status == planner.StatusRunning {
		return fmt.Errorf("container %s is running", id)
	}
	delete(h.containers, id)
	return nil
}

func (f *Containers) Inspect(ctx context.Context, id string) (engine.ContainerState, error) {
	f.h.mu.Lock()
	defer f.h.mu.Unlock()
	c, err := f.lookup(id)
	if err != nil {
		return engine.ContainerState{}, err
	}
	return c.state(time.Now()), nil
}

// Networks is the fake engine.Networks.
type Networks struct{ h *Host }

var _ engine.Networks = (*Networks)(nil)

func (f *Networks) List(ctx context.Context, project string) ([]planner.Network, error) {
	return listKeyed(f.h, f.h.networks, project, func(k string, n *spec.Network) planner.Network {
		return planner.Network{Key: k, Name: n.Name}
	}), nil
}

func (f *Networks) Ensure(ctx context.Context, project string, n *spec.Network) error {
	return setKeyed(f.h, f.h.networks, "ensure", "network", project, n.Key, n)
}

func (f *Networks) Remove(ctx context.Context, project string, n *spec.Network) error {
	return setKeyed(f.h, f.h.networks, "remove", "network", project, n.Key, nil)
}

func (f *Networks) Attach(ctx context.Context, project string, e engine.Endpoint) error {
	end, err := f.h.begin("attach", planner.ContainerResource(e.Service.Name, e.Number), e.ContainerID)
	defer end()
	if err != nil {
		return err
	}
	f.h.mu.Lock()
	defer f.h.mu.Unlock()
	if len(e.Service.Networks) > 0 && e.NetNS == "" {
		return fmt.Errorf("attach container %s: no network namespace", e.ContainerID)
	}
	for k := range e.Service.Networks {
		if f.h.networks[project][k] == nil {
			return fmt.Errorf("network %s of project %s does not exist", k, project)
		}
	}
	return nil
}

// Publish reserves the container's fixed host ports; a port another container holds is an
// error, as on a real host.
func (f *Networks) Publish(ctx context.Context, project string, e engine.Endpoint) error {
	end, err := f.h.begin("publish", planner.ContainerResource(e.Service.Name, e.Number), e.ContainerID)
	defer end()
	if err != nil {
		return err
	}
	f.h.mu.Lock()
	defer f.h.mu.Unlock()
	var keys []string
	for _, p := range e.Service.Ports {
		if p.Published == 0 {
			continue
		}
		k := fmt.Sprintf("%s:%d/%s", p.HostIP, p.Published, p.Protocol)
		if holder := f.h.ports[k]; holder != "" && holder != e.ContainerID {
			return fmt.Errorf("port %s is already published by container %s", k, holder)
		}
		keys = append(keys, k)
	}
	for _, k := range keys {
		f.h.ports[k] = e.ContainerID
	}
	return nil
}

// Detach releases the container's ports. It is not recorded, so call logs read as plans.
func (f *Networks) Detach(ctx context.Context, project string, id string) error {
	f.h.mu.Lock()
	defer f.h.mu.Unlock()
	for k, holder := range f.h.ports {
		if holder == id {
			delete(f.h.ports, k)
		}
	}
	return nil
}

// Volumes is the fake engine.Volumes.
type Volumes struct{ h *Host }

var _ engine.Volumes = (*Volumes)(nil)

func (f *Volumes) List(ctx context.Context, project string) ([]planner.Volume, error) {
	return listKeyed(f.h, f.h.volumes, project, func(k string, v *spec.Volume) planner.Volume {
		return planner.Volume{Key: k, Name: v.Name}
	}), nil
}

func (f *Volumes) Ensure(ctx context.Context, project string, v *spec.Volume) error {
	return setKeyed(f.h, f.h.volumes, "ensure", "volume", project, v.Key, v)
}

func (f *Volumes) Remove(ctx context.Context, project string, v *spec.Volume) error {
	return setKeyed(f.h, f.h.volumes, "remove", "volume", project, v.Key, nil)
}

// listKeyed lists a project's networks or volumes in key order, under the host's lock.
func listKeyed[T, O any](h *Host, all map[string]map[string]*T, project string, out func(string, *T) O) []O {
	h.mu.Lock()
	defer h.mu.Unlock()
	m := all[project]
	var list []O
	for _, k := range slices.Sorted(maps.Keys(m)) {
		list = append(list, out(k, m[k]))
	}
	return list
}

// setKeyed records (v non-nil) or forgets (v nil) a project's network or volume, as the call
// verb on kind:key, steerable and recorded like every fake call.
func setKeyed[T any](h *Host, all map[string]map[string]*T, verb, kind, project, key string, v *T) error {
	end, err := h.begin(verb, kind+":"+key, "")
	defer end()
	if err != nil {
		return err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if v == nil {
		delete(all[project], key)
		return nil
	}
	if all[project] == nil {
		all[project] = map[string]*T{}
	}
	all[project][key] = v
	return nil
}

// Images is the fake engine.Images. Remove refuses an image a container (of any project) was
// created from, as the image store does. A pull fetches the digest set with SetRemote, or a digest
// derived from the reference.
type Images struct{ h *Host }

var _ engine.Images = (*Images)(nil)

func (f *Images) List(ctx context.Context) (map[string]string, error) {
	f.h.mu.Lock()
	defer f.h.mu.Unlock()
	return maps.Clone(f.h.images), nil
}

func (f *Images) Pull(ctx context.Context, ref string) (string, error) {
	end, err := f.h.begin("pull", "image:"+ref, "")
	defer end()
	if err != nil {
		return "", err
	}
	f.h.mu.Lock()
	defer f.h.mu.Unlock()
	d := f.h.remote[ref]
	if d == "" {
		sum := sha256.Sum256([]byte(ref))
		d = "sha256:" + hex.EncodeToString(sum[:])
	}
	f.h.images[ref] = d
	return d, nil
}

func (f *Images) Build(ctx context.Context, s *spec.Service) (string, error) {
	end, err := f.h.begin("build", "image:"+s.Image, "")
	defer end()
	if err != nil {
		return "", err
	}
	f.h.mu.Lock()
	defer f.h.mu.Unlock()
	sum := sha256.Sum256([]byte("build " + s.Image + " " + s.Build.Context))
	d := "sha256:" + hex.EncodeToString(sum[:])
	f.h.images[s.Image] = d
	return d, nil
}

func (f *Images) Remove(ctx context.Context, ref string) error {
	end, err := f.h.begin("remove", "image:"+ref, "")
	defer end()
	if err != nil {
		return err
	}
	f.h.mu.Lock()
	defer f.h.mu.Unlock()
	d, ok := f.h.images[ref]
	if !ok {
		return fmt.Errorf("image %s: %w", ref, engine.ErrNotFound)
	}
	for _, c := range f.h.containers {
		if c.spec.ImageDigest == d {
			return fmt.Errorf("image %s: %w by container %s", ref, engine.ErrInUse, c.spec.Name)
		}
	}
	delete(f.h.images, ref)
	return nil
}

// Image returns the digest of ref when it is present.
func (h *Host) Image(ref string) (string, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	d, ok := h.images[ref]
	return d, ok
}
