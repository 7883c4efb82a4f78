package engine

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/stackrun/stack/planner"
	"github.com/stackrun/stack/spec"
)

// Phase is where an action is in its execution.
type Phase string

const (
	PhaseStarted  Phase = "started" // the action began
	PhaseWaiting  Phase = "waiting" // waiting: for a depends_on condition, or for the project lock
	PhaseDone     Phase = "done"
	PhaseFailed   Phase = "failed"
	PhaseSkipped  Phase = "skipped"    // not run: an earlier action failed or the apply was cancelled
	PhaseUnneeded Phase = "not needed" // not run: its OnlyIf condition did not hold (image unchanged)
	PhaseWarning  Phase = "warning"    // finished without doing all it would (an image still in use kept); Message says why
)

// errUnneeded reports an action whose condition did not hold.
var errUnneeded = errors.New("not needed")

// warning ends an action that is done as far as it can be, with something the user should know.
type warning struct{ msg string }

func (w *warning) Error() string { return w.msg }

// Event is one progress report. Action is the action id ("start container:web:1"), empty for
// events about the whole apply (waiting for the lock).
type Event struct {
	Action   string
	Kind     planner.Kind
	Resource string
	Phase    Phase
	Time     time.Time
	Message  string
}

// String is a plain progress line: "start container:web:1: done", "...: failed: <error>".
func (e Event) String() string {
	subject := e.Action
	if subject == "" {
		subject = "project"
	}
	if e.Message == "" {
		return subject + ": " + string(e.Phase)
	}
	return subject + ": " + string(e.Phase) + ": " + e.Message
}

// ApplyOptions tune an apply.
type ApplyOptions struct {
	Parallelism  int           // actions in flight at most; 0: DefaultParallelism
	OnEvent      func(Event)   // progress; called from one goroutine at a time
	Lock         LockOptions   // what to do when another command holds the project lock
	StopTimeout  time.Duration // grace period of every stop (down -t); 0: the service's stop_grace_period, else 10s
	PollInterval time.Duration // how often depends_on conditions are checked; 0: 100ms
}

// DefaultParallelism bounds the actions in flight when ApplyOptions.Parallelism is 0.
const DefaultParallelism = 4

// ActionError is the failure of one action of a plan.
type ActionError struct {
	Action string // action id
	Err    error
}

func (e *ActionError) Error() string { return e.Action + ": " + e.Err.Error() }
func (e *ActionError) Unwrap() error { return e.Err }

// Apply takes the project lock, checks that the host still matches what the plan was made
// from (ErrStale otherwise) and executes the plan. See Converge for observe, plan and apply
// under one lock.
func (e *Engine) Apply(ctx context.Context, p *planner.Plan, opts ApplyOptions) error {
	lock, err := e.Lock(ctx, e.lockOptions(opts))
	if err != nil {
		return err
	}
	defer lock.Unlock()
	obs, err := e.Observe(ctx)
	if err != nil {
		return err
	}
	if fp := planner.Fingerprint(obs); fp != p.Fingerprint {
		return fmt.Errorf("apply plan for project %s: %w: the host changed since the plan was made; plan again", p.Project, ErrStale)
	}
	return e.apply(ctx, p, obs, opts)
}

// Converge takes the project lock, observes, computes the plan for desired with popts, hands it
// to review (which may print it, or return an error to stop), and applies it unless it is empty.
// Holding the lock throughout means a second concurrent Converge waits, then sees the first's
// result. desired may be nil for a down of a project without its stack file.
func (e *Engine) Converge(ctx context.Context, desired *spec.Stack, popts planner.Options, opts ApplyOptions,
	review func(*planner.Plan) error) (*planner.Plan, error) {
	lock, err := e.Lock(ctx, e.lockOptions(opts))
	if err != nil {
		return nil, err
	}
	defer lock.Unlock()
	if popts.Down {
		if err := e.removeOneOffs(context.WithoutCancel(ctx), opts); err != nil {
			return nil, err
		}
	}
	obs, err := e.Observe(ctx)
	if err != nil {
		return nil, err
	}
	p, err := planner.Compute(desired, obs, popts)
	if err != nil {
		return nil, err
	}
	return p, e.reviewAndApply(ctx, p, obs, opts, review)
}

// reviewAndApply hands p to review (which may refuse it), then applies it unless it is empty.
func (e *Engine) reviewAndApply(ctx context.Context, p *planner.Plan, obs planner.Observed, opts ApplyOptions,
	review func(*planner.Plan) error) error {
	if review != nil {
		if err := review(p); err != nil {
			return err
		}
	}
	if p.Empty() {
		return nil
	}
	return e.apply(ctx, p, obs, opts)
}

// ApplySaved applies a saved plan (`stack plan -out`), made for this project from desired as
// it was then. It refuses with ErrStale, changing nothing, when desired is not the stack the
// plan was made from (the stack file or the environment changed) or when the host no longer
// is as observed then (a container came, went, stopped or changed; a network, volume or image
// did). Then, under the project lock, it computes the plan again from the same inputs and
// options, checks that it is the saved plan action for action (ErrInvalid otherwise: a plan
// made by another version of stack), hands it to review and applies it.
func (e *Engine) ApplySaved(ctx context.Context, desired *spec.Stack, saved *planner.Saved, opts ApplyOptions,
	review func(*planner.Plan) error) (*planner.Plan, error) {
	if saved.Project != e.cfg.Project {
		return nil, fmt.Errorf("%w: the saved plan is for project %s, not %s", ErrInvalid, saved.Project, e.cfg.Project)
	}
	if desired == nil {
		return nil, fmt.Errorf("%w: applying a saved plan needs its stack file", ErrInvalid)
	}
	if ch := saved.DesiredChanges(desired); len(ch) > 0 {
		return nil, fmt.Errorf("apply saved plan for project %s: %w: the stack changed since the plan was made (%s); plan again",
			e.cfg.Project, ErrStale, listChanges(ch))
	}
	lock, err := e.Lock(ctx, e.lockOptions(opts))
	if err != nil {
		return nil, err
	}
	defer lock.Unlock()
	obs, err := e.Observe(ctx)
	if err != nil {
		return nil, err
	}
	if ch := saved.ObservedChanges(obs, desired); len(ch) > 0 {
		return nil, fmt.Errorf("apply saved plan for project %s: %w: the host changed since the plan was made (%s); plan again",
			e.cfg.Project, ErrStale, listChanges(ch))
	}
	p, err := planner.Compute(desired, obs, saved.PlanOptions())
	if err != nil {
		return nil, err
	}
	if diff := saved.Differs(p); diff != "" {
		return p, fmt.Errorf("apply saved plan for project %s: %w: this stack plans otherwise from the same stack file and host (%s); "+
			"the plan was made by another version of stack: plan again", e.cfg.Project, ErrInvalid, diff)
	}
	return p, e.reviewAndApply(ctx, p, obs, opts, review)
}

// listChanges joins the first few changes, saying how many more there are.
func listChanges(ch []string) string {
	const most = 5
	if len(ch) <= most {
		return strings.Join(ch, "; ")
	}
	return fmt.Sprintf("%s; and %d more", strings.Join(ch[:most], "; "), len(ch)-most)
}

func (e *Engine) lockOptions(opts ApplyOptions) LockOptions {
	lo := opts.Lock
	if lo.OnWait == nil && opts.OnEvent != nil {
		lo.OnWait = func(msg string) {
			opts.OnEvent(Event{Phase: PhaseWaiting, Time: e.cfg.Now(), Message: msg})
		}
	}
	return lo
}

// run is one execution of a plan.
type run struct {
	e    *Engine
	opts ApplyOptions
	emit func(Event)

	mu      sync.Mutex
	records map[string]*Record // live records by container id
	current map[string]string  // container resource -> id of the container created in this run
	images  map[string]string  // ref -> digest, observed and pulled/built
	ran     map[string]bool    // ids of actions that ran to completion
	// removes holds the containers the plan removes: their stop tells the runtime that the
	// container is about to go (StopToRemover).
	removes map[string]bool
}

func (e *Engine) apply(ctx context.Context, p *planner.Plan, obs planner.Observed, opts ApplyOptions) error {
	if p.Project != e.cfg.Project {
		return fmt.Errorf("%w: plan is for project %s, engine for %s", ErrInvalid, p.Project, e.cfg.Project)
	}
	if opts.Parallelism <= 0 {
		opts.Parallelism = DefaultParallelism
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = 100 * time.Millisecond
	}
	r := &run{e: e, opts: opts, records: map[string]*Record{}, current: map[string]string{}, images: map[string]string{}, ran: map[string]bool{},
		removes: map[string]bool{}}
	for _, a := range p.Actions {
		if a.Kind == planner.RemoveContainer {
			r.removes[a.Container] = true
		}
	}
	var emitMu sync.Mutex
	r.emit = func(ev Event) {
		if opts.OnEvent == nil {
			return
		}
		emitMu.Lock()
		defer emitMu.Unlock()
		opts.OnEvent(ev)
	}
	for ref, d := range obs.Images {
		r.images[ref] = d
	}
	recs, err := e.Records()
	if err != nil {
		return err
	}
	for _, rec := range recs {
		r.records[rec.ID] = rec
	}
	err = r.walk(ctx, p)
	if err == nil && p.Down {
		e.pruneDirs()
	}
	return err
}

// walk runs the actions as their dependencies finish, at most Parallelism at a time, in plan
// order among those ready. After a failure or cancellation it starts nothing new, lets the
// actions in flight finish (and be recorded), and reports the first failure.
func (r *run) walk(ctx context.Context, p *planner.Plan) error {
	index := map[string]int{}
	for i, a := range p.Actions {
		if _, dup := index[a.ID]; dup {
			return fmt.Errorf("%w: plan has action %s twice", ErrInvalid, a.ID)
		}
		index[a.ID] = i
	}
	waiting := make([]int, len(p.Actions)) // unfinished dependencies per action
	children := make([][]int, len(p.Actions))
	for i, a := range p.Actions {
		for _, d := range a.DependsOn {
			j, ok := index[d]
			if !ok {
				return fmt.Errorf("%w: action %s depends on unknown action %s", ErrInvalid, a.ID, d)
			}
			waiting[i]++
			children[j] = append(children[j], i)
		}
	}
	ready := []int{}
	for i := range p.Actions {
		if waiting[i] == 0 {
			ready = append(ready, i)
		}
	}
	type result struct {
		i   int
		err error
	}
	results := make(chan result)
	started := make([]bool, len(p.Actions))
	inFlight, done := 0, 0
	var failure error
	for {
		for failure == nil && ctx.Err() == nil && inFlight < r.opts.Parallelism && len(ready) > 0 {
			// lowest plan index first: the plan's order is the tie-break
			best := 0
			for k := range ready {
				if ready[k] < ready[best] {
					best = k
				}
			}
			i := ready[best]
			ready = append(ready[:best], ready[best+1:]...)
			started[i] = true
			inFlight++
			a := p.Actions[i]
			r.emit(Event{Action: a.ID, Kind: a.Kind, Resource: a.Resource, Phase: PhaseStarted, Time: r.e.cfg.Now(), Message: a.Reason})
			go func() { results <- result{i, r.exec(ctx, a)} }()
		}
		if inFlight == 0 {
			break
		}
		res := <-results
		inFlight--
		a := p.Actions[res.i]
		var warn *warning
		if errors.Is(res.err, errUnneeded) {
			r.emit(Event{Action: a.ID, Kind: a.Kind, Resource: a.Resource, Phase: PhaseUnneeded, Time: r.e.cfg.Now(), Message: res.err.Error()})
			res.err = nil
		} else if errors.As(res.err, &warn) {
			r.emit(Event{Action: a.ID, Kind: a.Kind, Resource: a.Resource, Phase: PhaseWarning, Time: r.e.cfg.Now(), Message: warn.msg})
			res.err = nil
		} else if res.err == nil {
			r.emit(Event{Action: a.ID, Kind: a.Kind, Resource: a.Resource, Phase: PhaseDone, Time: r.e.cfg.Now()})
		}
		if res.err != nil {
			r.emit(Event{Action: a.ID, Kind: a.Kind, Resource: a.Resource, Phase: PhaseFailed, Time: r.e.cfg.Now(), Message: res.err.Error()})
			if failure == nil {
				failure = &ActionError{Action: a.ID, Err: res.err}
			}
			continue
		}
		done++
		for _, c := range children[res.i] {
			if waiting[c]--; waiting[c] == 0 {
				ready = append(ready, c)
			}
		}
	}
	for i, a := range p.Actions {
		if !started[i] {
			r.emit(Event{Action: a.ID, Kind: a.Kind, Resource: a.Resource, Phase: PhaseSkipped, Time: r.e.cfg.Now()})
		}
	}
	if failure != nil {
		return fmt.Errorf("apply plan for project %s: %d of %d actions done: %w", p.Project, done, len(p.Actions), failure)
	}
	if err := ctx.Err(); err != nil && done < len(p.Actions) {
		return fmt.Errorf("apply plan for project %s: interrupted, %d of %d actions done: %w", p.Project, done, len(p.Actions), err)
	}
	return nil
}

// exec performs one action. Host steps run with a context that is not cancelled, so a step in
// flight when the apply is cancelled completes and is recorded; only waits are cancellable.
func (r *run) exec(ctx context.Context, a *planner.Action) error {
	if why, ok := r.unneeded(a); ok {
		if a.Kind == planner.RecreateContainer {
			r.mu.Lock()
			r.current[a.Resource] = a.Container // the old container stays
			r.mu.Unlock()
		}
		return fmt.Errorf("%w: %s", errUnneeded, why)
	}
	err := r.do(ctx, a)
	if err == nil {
		r.mu.Lock()
		r.ran[a.ID] = true
		r.mu.Unlock()
	}
	return err
}

// unneeded evaluates a.OnlyIf against what this run found: the digests of pulled and built
// images and which conditional actions ran.
func (r *run) unneeded(a *planner.Action) (string, bool) {
	c := a.OnlyIf
	if c == nil {
		return "", false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if c.ImageChanged && a.Service != nil {
		if old := r.records[a.Container]; old != nil && old.ImageDigest != "" {
			if now := r.images[a.Service.Image]; now != "" && now != old.ImageDigest {
				return "", false
			}
		}
	}
	for _, id := range c.Recreated {
		if r.ran[id] {
			return "", false
		}
	}
	if c.ImageChanged && len(c.Recreated) == 0 {
		return "image digest unchanged", true
	}
	return "nothing it depends on changed", true
}

func (r *run) do(ctx context.Context, a *planner.Action) error {
	step := context.WithoutCancel(ctx)
	e := r.e
	switch a.Kind {
	case planner.PullImage:
		d, err := e.cfg.Images.Pull(step, a.Image)
		if err != nil {
			return fmt.Errorf("pull image %s: %w", a.Image, err)
		}
		r.setImage(a.Image, d)
	case planner.BuildImage:
		d, err := e.cfg.Images.Build(step, a.Service)
		if err != nil {
			return fmt.Errorf("build image %s: %w", a.Image, err)
		}
		r.setImage(a.Image, d)
	case planner.CreateNetwork:
		if err := e.cfg.Networks.Ensure(step, e.cfg.Project, a.Network); err != nil {
			return fmt.Errorf("create network %s: %w", a.Network.Key, err)
		}
	case planner.CreateVolume:
		if err := e.cfg.Volumes.Ensure(step, e.cfg.Project, a.Volume); err != nil {
			return fmt.Errorf("create volume %s: %w", a.Volume.Key, err)
		}
	case planner.RemoveNetwork:
		if err := e.cfg.Networks.Remove(step, e.cfg.Project, a.Network); err != nil {
			return fmt.Errorf("remove network %s: %w", a.Network.Key, err)
		}
	case planner.RemoveVolume:
		if err := e.cfg.Volumes.Remove(step, e.cfg.Project, a.Volume); err != nil {
			return fmt.Errorf("remove volume %s: %w", a.Volume.Key, err)
		}
	case planner.CreateContainer:
		return r.create(step, a)
	case planner.RecreateContainer:
		// Create before destroy: a failing create leaves the old container as it was.
		if a.DestroyFirst {
			if err := r.stop(step, a.Container, true); err != nil {
				return err
			}
			if err := r.remove(step, a.Container); err != nil {
				return err
			}
			return r.create(step, a)
		}
		if err := r.create(step, a); err != nil {
			return err
		}
		if err := r.stop(step, a.Container, true); err != nil {
			return err
		}
		return r.remove(step, a.Container)
	case planner.StartContainer:
		id := a.Container
		if id == "" {
			r.mu.Lock()
			id = r.current[a.Resource]
			r.mu.Unlock()
		}
		if id == "" {
			return fmt.Errorf("%w: start %s: no container was created for it", ErrInvalid, a.Resource)
		}
		if err := r.waitFor(ctx, a); err != nil {
			return err
		}
		return r.start(step, id)
	case planner.StopContainer:
		return r.stop(step, a.Container, r.removes[a.Container])
	case planner.RemoveContainer:
		// The plan stops running containers first; Remove refuses a running one.
		return r.remove(step, a.Container)
	case planner.RemoveImage:
		return r.removeImage(step, a.Image)
	default:
		return fmt.Errorf("%w: action %s of unknown kind", ErrInvalid, a.ID)
	}
	return nil
}

// removeImage removes an image of the project (down --rmi) unless containers of another
// project use it: then it stays, and the action ends with a warning naming them.
func (r *run) removeImage(ctx context.Context, ref string) error {
	r.mu.Lock()
	digest := r.images[ref]
	r.mu.Unlock()
	users, err := r.e.imageUsers(digest)
	if err != nil {
		return fmt.Errorf("remove image %s: %w", ref, err)
	}
	if len(users) > 0 {
		return &warning{fmt.Sprintf("image %s kept: still used by %s", ref, strings.Join(users, ", "))}
	}
	err = r.e.cfg.Images.Remove(ctx, ref)
	switch {
	case errors.Is(err, ErrNotFound):
		return nil // gone already (another spelling of the same reference went first)
	case errors.Is(err, ErrInUse):
		return &warning{fmt.Sprintf("image %s kept: still used by a container (%v)", ref, err)}
	case err != nil:
		return fmt.Errorf("remove image %s: %w", ref, err)
	}
	return nil
}

func (r *run) setImage(ref, digest string) {
	r.mu.Lock()
	r.images[ref] = digest
	r.mu.Unlock()
}

func (r *run) record(id string) *Record {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.records[id]
}

// update changes a record and writes it before returning, so every finished step is on disk
// before the next one starts.
func (r *run) update(rec *Record, change func(*Record)) error {
	r.mu.Lock()
	change(rec)
	c := *rec
	r.mu.Unlock()
	return r.e.writeRecord(&c)
}

func (r *run) create(ctx context.Context, a *planner.Action) error {
	e, s := r.e, a.Service
	if s == nil {
		return fmt.Errorf("%w: create %s: plan carries no service", ErrInvalid, a.Resource)
	}
	id := e.newContainerID()
	name := s.ContainerName
	if name == "" {
		name = e.cfg.Project + "-" + s.Name + "-" + strconv.Itoa(a.Number)
	}
	r.mu.Lock()
	digest := r.images[s.Image]
	r.mu.Unlock()
	rec := &Record{
		Version: RecordVersion, ID: id, Name: name, Project: e.cfg.Project, Service: s.Name, Number: a.Number,
		Hash: s.Hash, Image: s.Image, ImageDigest: digest, Config: s, Phase: RecordCreating, Created: e.cfg.Now(),
		Labels: map[string]string{
			LabelProject: e.cfg.Project, LabelService: s.Name,
			LabelNumber: strconv.Itoa(a.Number), LabelConfigHash: s.Hash,
		},
	}
	// The record goes first: a command killed during Create leaves a record that Observe pairs
	// with whatever the runtime has, so nothing is lost or orphaned.
	if err := e.writeRecord(rec); err != nil {
		return err
	}
	r.mu.Lock()
	r.records[id] = rec
	r.mu.Unlock()
	cs := &ContainerSpec{ID: id, Name: name, Project: e.cfg.Project, Service: s, Number: a.Number,
		Image: s.Image, ImageDigest: digest, Labels: rec.Labels}
	fail := func(err error) error {
		err = fmt.Errorf("create container %s (%s): %w", name, a.Resource, err)
		cleanup := errors.Join(e.cfg.Networks.Detach(ctx, e.cfg.Project, id), ignoreNotFound(e.cfg.Containers.Remove(ctx, id)))
		if cleanup == nil {
			r.forget(id)
			cleanup = e.deleteRecord(id)
		}
		return errors.Join(err, cleanup)
	}
	if err := e.cfg.Containers.Create(ctx, cs); err != nil {
		return fail(err)
	}
	st, err := e.cfg.Containers.Inspect(ctx, id)
	if err != nil {
		return fail(err)
	}
	netns := st.NetNS
	if netns == "" && st.Pid > 0 {
		netns = "/proc/" + strconv.Itoa(st.Pid) + "/ns/net"
	}
	if err := e.cfg.Networks.Attach(ctx, e.cfg.Project, Endpoint{ContainerID: id, Name: name, Service: s, Number: a.Number, NetNS: netns}); err != nil {
		return fail(fmt.Errorf("attach networks: %w", err))
	}
	if err := r.update(rec, func(rec *Record) { rec.Phase = RecordCreated }); err != nil {
		return err
	}
	r.mu.Lock()
	r.current[a.Resource] = id
	r.mu.Unlock()
	return nil
}

func (r *run) forget(id string) {
	r.mu.Lock()
	delete(r.records, id)
	r.mu.Unlock()
}

func (r *run) start(ctx context.Context, id string) error {
	rec := r.record(id)
	if rec == nil || rec.Config == nil {
		return fmt.Errorf("%w: start container %s: no record of it", ErrInvalid, id)
	}
	ep := Endpoint{ContainerID: id, Name: rec.Name, Service: rec.Config, Number: rec.Number}
	if err := r.e.cfg.Networks.Publish(ctx, r.e.cfg.Project, ep); err != nil {
		return fmt.Errorf("start container %s: publish ports: %w", rec.Name, err)
	}
	if err := r.e.cfg.Containers.Start(ctx, id); err != nil {
		return fmt.Errorf("start container %s: %w", rec.Name, err)
	}
	return r.update(rec, func(rec *Record) { rec.Phase, rec.Started = RecordStarted, r.e.cfg.Now() })
}

// stop stops the container; removing says the plan removes it next.
func (r *run) stop(ctx context.Context, id string, removing bool) error {
	rec := r.record(id)
	// An explicit timeout (down -t) wins over the service's stop_grace_period.
	timeout := r.opts.StopTimeout
	if timeout <= 0 {
		timeout = 10 * time.Second
		if rec != nil && rec.Config != nil && rec.Config.StopGracePeriod != nil {
			timeout = *rec.Config.StopGracePeriod
		}
	}
	stop := r.e.cfg.Containers.Stop
	if sr, ok := r.e.cfg.Containers.(StopToRemover); ok && removing {
		stop = sr.StopToRemove
	}
	if err := ignoreNotFound(stop(ctx, id, timeout)); err != nil {
		return fmt.Errorf("stop container %s: %w", nameOf(rec, id), err)
	}
	if rec == nil {
		return nil
	}
	return r.update(rec, func(rec *Record) { rec.Phase, rec.Stopped = RecordStopped, r.e.cfg.Now() })
}

// remove detaches the container from its networks, removes it, and deletes its record last, so
// a failure in between leaves a record that the next plan removes again.
func (r *run) remove(ctx context.Context, id string) error {
	rec := r.record(id)
	if err := r.e.cfg.Networks.Detach(ctx, r.e.cfg.Project, id); err != nil {
		return fmt.Errorf("remove container %s: detach networks: %w", nameOf(rec, id), err)
	}
	if err := ignoreNotFound(r.e.cfg.Containers.Remove(ctx, id)); err != nil {
		return fmt.Errorf("remove container %s: %w", nameOf(rec, id), err)
	}
	if err := r.e.deleteRecord(id); err != nil {
		return err
	}
	r.forget(id)
	return nil
}

func nameOf(rec *Record, id string) string {
	if rec != nil {
		return rec.Name
	}
	return id
}

func ignoreNotFound(err error) error {
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	return err
}

// waitFor blocks until every container of each service in a.Waits meets the condition,
// polling Inspect. It fails at once when the condition can no longer be met (a dependency
// exited non-zero, is unhealthy, has no healthcheck) and when ctx is done.
func (r *run) waitFor(ctx context.Context, a *planner.Action) error {
	for _, w := range a.Waits {
		told := false
		for {
			ok, err := r.conditionMet(ctx, w)
			if err != nil {
				return fmt.Errorf("start %s: %w", a.Resource, err)
			}
			if ok {
				break
			}
			if !told {
				r.emit(Event{Action: a.ID, Kind: a.Kind, Resource: a.Resource, Phase: PhaseWaiting, Time: r.e.cfg.Now(),
					Message: "waiting for " + w.Service + " (" + w.Condition + ")"})
				told = true
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("start %s: waiting for %s (%s): %w", a.Resource, w.Service, w.Condition, ctx.Err())
			case <-time.After(r.opts.PollInterval):
			}
		}
	}
	return nil
}

func (r *run) conditionMet(ctx context.Context, w planner.Wait) (bool, error) {
	r.mu.Lock()
	var recs []*Record
	for _, rec := range r.records {
		// Containers being created, or stopped for removal (scale down), are not the service.
		if rec.Service == w.Service && rec.Phase != RecordCreating && rec.Phase != RecordStopped {
			c := *rec
			recs = append(recs, &c)
		}
	}
	r.mu.Unlock()
	if len(recs) == 0 {
		if !w.Required {
			return true, nil
		}
		return false, fmt.Errorf("%w: dependency %s has no container", ErrFailed, w.Service)
	}
	for _, rec := range recs {
		st, err := r.e.cfg.Containers.Inspect(ctx, rec.ID)
		if errors.Is(err, ErrNotFound) {
			continue // removed since we listed it
		}
		if err != nil {
			return false, fmt.Errorf("inspect dependency %s: %w", rec.Name, err)
		}
		switch w.Condition {
		case spec.ConditionHealthy:
			if rec.Config == nil || rec.Config.Healthcheck == nil || rec.Config.Healthcheck.Disable {
				return false, fmt.Errorf("%w: dependency %s has no healthcheck (depends_on condition service_healthy)", ErrFailed, rec.Name)
			}
			switch {
			case st.Health == "unhealthy":
				return false, fmt.Errorf("%w: dependency %s is unhealthy", ErrFailed, rec.Name)
			case st.Status == planner.StatusExited:
				return false, fmt.Errorf("%w: dependency %s exited (%d) before it was healthy", ErrFailed, rec.Name, st.ExitCode)
			case st.Health != "healthy":
				return false, nil
			}
		case spec.ConditionCompletedSuccessful:
			if st.Status != planner.StatusExited {
				return false, nil
			}
			if st.ExitCode != 0 {
				return false, fmt.Errorf("%w: dependency %s exited with code %d (depends_on condition service_completed_successfully)", ErrFailed, rec.Name, st.ExitCode)
			}
		default: // service_started: it ran, whether it still runs or not
			if st.Status == planner.StatusCreated {
				return false, nil
			}
		}
	}
	return true, nil
}
