package planner

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/stackrun/stack/spec"
)

// ErrInvalid is the category of errors in the request itself (unknown service, conflicting
// options, a dependency cycle): nothing was planned.
var ErrInvalid = errors.New("invalid")

// Pull policies, as Compose spells them (--pull and pull_policy:).
const (
	PullAlways  = "always"
	PullMissing = "missing"
	PullNever   = "never"
	PullBuild   = "build"
)

// Options are the knobs of `stack up` and `stack down` that change the plan.
type Options struct {
	Services      []string       // only these services (and their dependencies unless NoDeps); empty: all
	NoDeps        bool           // do not include or wait for dependencies of Services
	RemoveOrphans bool           // remove containers (and networks) of services no longer in the file
	ForceRecreate bool           // recreate every container in scope
	NoRecreate    bool           // never recreate existing containers
	NoStart       bool           // create, do not start
	Build         bool           // build images of services with build: before creating containers
	Scale         map[string]int // replica count overrides
	Pull          string         // "", PullAlways, PullMissing, PullNever: overrides each service's pull_policy

	Down          bool   // plan the removal of the project instead (desired may be nil)
	RemoveVolumes bool   // down: also remove the project's named volumes
	RemoveImages  string // down: "", RemoveImagesLocal or RemoveImagesAll (--rmi)
}

// Values of Options.RemoveImages, as Compose spells them (down --rmi).
const (
	RemoveImagesLocal = "local" // only images stack tags itself: services with build: and no image:
	RemoveImagesAll   = "all"   // every image a service of the project uses
)

// Compute compares desired with observed and returns the plan that makes the host match desired
// (or, with opts.Down, the plan that removes the project). It does no I/O.
func Compute(desired *spec.Stack, observed Observed, opts Options) (*Plan, error) {
	if opts.ForceRecreate && opts.NoRecreate {
		return nil, fmt.Errorf("%w: --force-recreate and --no-recreate exclude each other", ErrInvalid)
	}
	project := observed.Project
	if desired != nil {
		if project != "" && project != desired.Name {
			return nil, fmt.Errorf("%w: observed project %q, stack file is project %q", ErrInvalid, project, desired.Name)
		}
		project = desired.Name
	}
	if project == "" {
		return nil, fmt.Errorf("%w: no project name", ErrInvalid)
	}
	b := &builder{
		desired: desired,
		obs:     observed,
		opts:    opts,
		plan:    &Plan{Project: project, Down: opts.Down, Fingerprint: Fingerprint(observed)},
		ids:     map[string]*Action{},
	}
	// Ownership: only records carrying this project count, whatever their names.
	for i := range observed.Containers {
		if c := &observed.Containers[i]; c.Project == project {
			b.containers = append(b.containers, c)
		}
	}
	slices.SortFunc(b.containers, func(x, y *Container) int {
		return strings.Compare(containerKey(x.Service, x.Number)+x.ID, containerKey(y.Service, y.Number)+y.ID)
	})
	var err error
	if opts.Down {
		err = b.down()
	} else {
		if desired == nil {
			return nil, fmt.Errorf("%w: up needs a stack file", ErrInvalid)
		}
		err = b.up()
	}
	if err != nil {
		return nil, err
	}
	if err := b.order(); err != nil {
		return nil, err
	}
	return b.plan, nil
}

type builder struct {
	desired    *spec.Stack
	obs        Observed
	opts       Options
	plan       *Plan
	ids        map[string]*Action
	containers []*Container       // of this project, sorted by service, number, id
	removals   []*Action          // container removals and recreates, which network/volume removals follow
	nets       map[string]*Action // network key -> its create action in this plan
}

func (b *builder) add(a *Action) *Action {
	id := a.Kind.Verb() + " " + a.Resource
	if _, dup := b.ids[id]; dup && a.Container != "" {
		id += " [" + shortID(a.Container) + "]"
	}
	a.ID = id
	b.ids[id] = a
	b.plan.Actions = append(b.plan.Actions, a)
	return a
}

func (b *builder) actionsByID(ids []string) []*Action {
	var out []*Action
	for _, id := range ids {
		out = append(out, b.ids[id])
	}
	return out
}

func after(a *Action, deps ...*Action) {
	for _, d := range deps {
		if d != nil && !slices.Contains(a.DependsOn, d.ID) {
			a.DependsOn = append(a.DependsOn, d.ID)
		}
	}
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// ContainerResource is the resource id of a container: container:<service>:<number>.
func ContainerResource(service string, number int) string {
	return "container:" + service + ":" + strconv.Itoa(number)
}

// containerKey sorts replicas numerically.
func containerKey(service string, number int) string {
	return fmt.Sprintf("%s:%06d:", service, number)
}

// op is what happens to one replica.
type op int

const (
	opKeep op = iota
	opNew
	opRecreate
	opStart
)

type decision struct {
	number int
	c      *Container // existing container, nil for opNew
	op     op
	reason string
	cond   *Condition // a recreate that happens only if this holds at apply time
	orig   op         // what happens when cond does not hold (opKeep or opStart)
}

func (b *builder) up() error {
	d := b.desired
	scope, err := b.scope()
	if err != nil {
		return err
	}
	order, err := serviceOrder(d)
	if err != nil {
		return err
	}
	for _, name := range sortedKeys(b.opts.Scale) {
		if d.Services[name] == nil {
			return fmt.Errorf("%w: --scale %s: no such service", ErrInvalid, name)
		}
		if b.opts.Scale[name] < 0 {
			return fmt.Errorf("%w: --scale %s: negative replica count", ErrInvalid, name)
		}
	}

	byService := map[string][]*Container{}
	for _, c := range b.containers {
		byService[c.Service] = append(byService[c.Service], c)
	}

	nets, err := b.networks(scope, byService)
	if err != nil {
		return err
	}
	b.nets = nets
	vols, err := b.volumes(scope)
	if err != nil {
		return err
	}

	images := map[string]*Action{}
	starts := map[string][]*Action{}
	recreated := map[string]bool{} // services with containers recreated for sure
	maybe := map[string][]string{} // services -> ids of their conditional recreates
	for _, name := range order {
		if !scope[name] {
			continue
		}
		s := d.Services[name]
		replicas := s.Replicas
		if n, ok := b.opts.Scale[name]; ok {
			replicas = n
		}
		decisions, extra := b.decide(s, replicas, byService[name], recreated)
		// A dependency (restart: true) that is recreated only if its image changes makes this
		// service's recreate conditional on that recreate.
		var depIDs, depNames []string
		for _, dep := range sortedKeys(s.DependsOn) {
			if s.DependsOn[dep].Restart && len(maybe[dep]) > 0 {
				depIDs = append(depIDs, maybe[dep]...)
				depNames = append(depNames, dep)
			}
		}
		if len(depIDs) > 0 && !b.opts.NoRecreate {
			for i := range decisions {
				if dc := &decisions[i]; dc.c != nil && (dc.op == opKeep || dc.op == opStart) {
					dc.orig, dc.op, dc.cond = dc.op, opRecreate, &Condition{Recreated: depIDs}
					dc.reason = "dependency may be recreated (" + strings.Join(depNames, ", ") + ")"
				}
			}
		}
		needImage := false
		for _, dc := range decisions {
			if dc.op == opNew || dc.op == opRecreate {
				needImage = true
				if dc.op == opRecreate && dc.cond == nil {
					recreated[name] = true
				}
			}
		}
		img, err := b.image(s, needImage, images)
		if err != nil {
			return err
		}
		// The pull or build may change the image's digest, which is known only then: containers
		// that would stay are recreated if it does.
		if img != nil && !b.opts.NoRecreate {
			for i := range decisions {
				dc := &decisions[i]
				if dc.c == nil || !(dc.op == opKeep || dc.op == opStart || dc.cond != nil) {
					continue
				}
				if dc.cond == nil {
					dc.orig, dc.op, dc.cond = dc.op, opRecreate, &Condition{}
					dc.reason = "image may change (" + img.Reason + ")"
				}
				dc.cond.ImageChanged = true
			}
		}

		for _, dc := range decisions {
			res := ContainerResource(name, dc.number)
			var made *Action
			switch dc.op {
			case opKeep:
				b.plan.Unchanged = append(b.plan.Unchanged, Unchanged{Resource: res, Container: dc.c.ID, Reason: dc.reason})
				continue
			case opNew:
				made = b.add(&Action{Kind: CreateContainer, Resource: res, Reason: dc.reason, Service: s, Number: dc.number})
			case opRecreate:
				made = b.add(&Action{Kind: RecreateContainer, Resource: res, Reason: dc.reason, Service: s,
					Number: dc.number, Container: dc.c.ID, DestroyFirst: destroyFirst(dc.c.Config, s), OnlyIf: dc.cond})
				b.removals = append(b.removals, made)
				if dc.cond != nil {
					maybe[name] = append(maybe[name], made.ID)
					after(made, b.actionsByID(dc.cond.Recreated)...)
				}
			}
			if made != nil {
				after(made, img)
				for _, k := range sortedKeys(s.Networks) {
					after(made, nets[k])
				}
				for _, m := range s.Mounts {
					if m.Type == spec.MountVolume {
						after(made, vols[m.Source])
					}
				}
			}
			if b.opts.NoStart {
				continue
			}
			start := &Action{Kind: StartContainer, Resource: res, Reason: dc.reason, Service: s, Number: dc.number}
			if dc.op == opStart {
				start.Container = dc.c.ID
			}
			if dc.cond != nil && dc.orig == opKeep {
				// It was running (or completed): start the replacement only if there is one.
				start.OnlyIf = &Condition{Recreated: []string{made.ID}}
			}
			b.add(start)
			after(start, made)
			if !b.opts.NoDeps {
				for _, dep := range sortedKeys(s.DependsOn) {
					if !scope[dep] {
						continue // an optional dependency that is not in the file
					}
					dd := s.DependsOn[dep]
					cond := dd.Condition
					if cond == "" {
						cond = spec.ConditionStarted
					}
					start.Waits = append(start.Waits, Wait{Service: dep, Condition: cond, Required: dd.Required})
					after(start, starts[dep]...)
				}
			}
			starts[name] = append(starts[name], start)
		}
		b.stopAndRemove(extra)
	}

	// Orphans: containers of services that left the file.
	var orphans []removal
	for _, c := range b.containers {
		if d.Services[c.Service] != nil {
			continue
		}
		if b.opts.RemoveOrphans {
			orphans = append(orphans, removal{c, "orphan"})
		} else {
			b.plan.Warnings = append(b.plan.Warnings, fmt.Sprintf(
				"orphan %s (%s): service %q is not in the stack file; --remove-orphans removes it",
				ContainerResource(c.Service, c.Number), shortID(c.ID), c.Service))
		}
	}
	b.stopAndRemove(orphans)
	if b.opts.RemoveOrphans {
		for _, n := range sortedBy(b.obs.Networks, func(n Network) string { return n.Key }) {
			if d.Networks[n.Key] == nil {
				rm := b.add(&Action{Kind: RemoveNetwork, Resource: "network:" + n.Key, Reason: "orphan",
					Network: &spec.Network{Key: n.Key, Name: n.Name}})
				after(rm, b.removals...)
			}
		}
	}
	return nil
}

// scope is the set of services this up touches: opts.Services and, unless NoDeps, everything
// they depend on.
func (b *builder) scope() (map[string]bool, error) {
	d := b.desired
	scope := map[string]bool{}
	if len(b.opts.Services) == 0 {
		for name := range d.Services {
			scope[name] = true
		}
		return scope, nil
	}
	queue := []string{}
	for _, name := range b.opts.Services {
		if d.Services[name] == nil {
			return nil, fmt.Errorf("%w: no such service: %s", ErrInvalid, name)
		}
		if !scope[name] {
			scope[name] = true
			queue = append(queue, name)
		}
	}
	for len(queue) > 0 && !b.opts.NoDeps {
		s := d.Services[queue[0]]
		queue = queue[1:]
		for dep := range s.DependsOn {
			if d.Services[dep] != nil && !scope[dep] {
				scope[dep] = true
				queue = append(queue, dep)
			}
		}
	}
	return scope, nil
}

// serviceOrder returns all services, each after the services it depends on, ties by name.
func serviceOrder(d *spec.Stack) ([]string, error) {
	for _, name := range sortedKeys(d.Services) {
		for dep, dd := range d.Services[name].DependsOn {
			if d.Services[dep] == nil && dd.Required {
				return nil, fmt.Errorf("%w: service %s depends on undefined service %s", ErrInvalid, name, dep)
			}
		}
	}
	done := map[string]bool{}
	var order []string
	for len(order) < len(d.Services) {
		progress := false
		for _, name := range sortedKeys(d.Services) {
			if done[name] {
				continue
			}
			ready := true
			for dep := range d.Services[name].DependsOn {
				if d.Services[dep] != nil && !done[dep] {
					ready = false
				}
			}
			if ready {
				done[name] = true
				order = append(order, name)
				progress = true
			}
		}
		if !progress {
			var cycle []string
			for _, name := range sortedKeys(d.Services) {
				if !done[name] {
					cycle = append(cycle, name)
				}
			}
			return nil, fmt.Errorf("%w: dependency cycle between services %s", ErrInvalid, strings.Join(cycle, ", "))
		}
	}
	return order, nil
}

func (b *builder) networks(scope map[string]bool, byService map[string][]*Container) (map[string]*Action, error) {
	d := b.desired
	observed := map[string]bool{}
	for _, n := range b.obs.Networks {
		observed[n.Key] = true
	}
	used := map[string]bool{}
	for name := range scope {
		for k := range d.Services[name].Networks {
			if d.Networks[k] == nil {
				return nil, fmt.Errorf("%w: service %s uses undefined network %s", ErrInvalid, name, k)
			}
			used[k] = true
		}
	}
	acts := map[string]*Action{}
	for _, k := range sortedKeys(used) {
		n := d.Networks[k]
		if n.External || observed[k] {
			continue
		}
		reason := "new"
		for _, c := range b.containers {
			if c.Config != nil && c.Config.Networks != nil {
				if _, ok := c.Config.Networks[k]; ok {
					reason = "missing"
				}
			}
		}
		acts[k] = b.add(&Action{Kind: CreateNetwork, Resource: "network:" + k, Reason: reason, Network: n})
	}
	return acts, nil
}

func (b *builder) volumes(scope map[string]bool) (map[string]*Action, error) {
	d := b.desired
	observed := map[string]bool{}
	for _, v := range b.obs.Volumes {
		observed[v.Key] = true
	}
	used := map[string]bool{}
	for name := range scope {
		for _, m := range d.Services[name].Mounts {
			if m.Type != spec.MountVolume || m.Source == "" {
				continue
			}
			if d.Volumes[m.Source] == nil {
				return nil, fmt.Errorf("%w: service %s mounts undefined volume %s", ErrInvalid, name, m.Source)
			}
			used[m.Source] = true
		}
	}
	acts := map[string]*Action{}
	for _, k := range sortedKeys(used) {
		v := d.Volumes[k]
		if v.External || observed[k] {
			continue
		}
		acts[k] = b.add(&Action{Kind: CreateVolume, Resource: "volume:" + k, Reason: "new", Volume: v})
	}
	return acts, nil
}

// image returns the pull or build action the service's containers wait for, if one is needed.
func (b *builder) image(s *spec.Service, needed bool, made map[string]*Action) (*Action, error) {
	if s.Image == "" {
		return nil, nil
	}
	policy := b.opts.Pull
	if policy == "" {
		policy = s.PullPolicy
	}
	present := b.obs.Images[s.Image] != ""
	var kind Kind
	var reason string
	switch {
	case s.Build != nil && b.opts.Build:
		kind, reason = BuildImage, "--build"
	case s.Build != nil && policy == PullBuild:
		kind, reason = BuildImage, "pull policy build"
	case s.Build != nil && needed && !present:
		kind, reason = BuildImage, "missing"
	case s.Build == nil && policy == PullAlways:
		kind, reason = PullImage, "pull policy always"
	case s.Build == nil && needed && !present:
		if policy == PullNever {
			return nil, fmt.Errorf("%w: service %s: image %s is not present and the pull policy is never", ErrInvalid, s.Name, s.Image)
		}
		kind, reason = PullImage, "missing"
	default:
		return nil, nil
	}
	if a := made[s.Image]; a != nil {
		return a, nil
	}
	a := b.add(&Action{Kind: kind, Resource: "image:" + s.Image, Reason: reason, Image: s.Image, Service: s})
	made[s.Image] = a
	return a, nil
}

// decide picks, for each wanted replica, what happens to it, and returns the containers of the
// service that are not wanted (scaled down, duplicates).
func (b *builder) decide(s *spec.Service, replicas int, existing []*Container, recreated map[string]bool) ([]decision, []removal) {
	byNumber := map[int][]*Container{}
	maxNumber := 0
	for _, c := range existing {
		byNumber[c.Number] = append(byNumber[c.Number], c)
		maxNumber = max(maxNumber, c.Number)
	}
	var extra []removal
	var out []decision
	for _, n := range sortedKeys(byNumber) {
		cs := byNumber[n]
		// Two records for one replica are what a killed recreate leaves: keep the best.
		slices.SortStableFunc(cs, func(x, y *Container) int { return preference(s, y) - preference(s, x) })
		for _, c := range cs[1:] {
			extra = append(extra, removal{c, "duplicate"})
		}
		if n > replicas || n < 1 {
			extra = append(extra, removal{cs[0], "scaled down"})
		}
	}
	for n := 1; n <= replicas; n++ {
		cs := byNumber[n]
		if len(cs) == 0 {
			reason := "new"
			switch {
			case n > maxNumber && maxNumber > 0:
				reason = "scaled up"
			case maxNumber > 0:
				reason = "missing"
			}
			out = append(out, decision{number: n, op: opNew, reason: reason})
			continue
		}
		c := cs[0]
		if c.Status == StatusMissing {
			out = append(out, decision{number: n, c: c, op: opRecreate, reason: "missing from runtime"})
			continue
		}
		if why := b.recreateReason(c, s, recreated); why != "" {
			out = append(out, decision{number: n, c: c, op: opRecreate, reason: why})
			continue
		}
		o, why := statusDecision(c)
		out = append(out, decision{number: n, c: c, op: o, reason: why})
	}
	return out, extra
}

// preference ranks duplicate records of one replica: same config, then running, then newest.
func preference(s *spec.Service, c *Container) int {
	p := 0
	if c.Hash == s.Hash {
		p += 4
	}
	if c.Status == StatusRunning {
		p += 2
	}
	if c.Status != StatusMissing {
		p++
	}
	return p
}

// recreateReason says why c must be replaced by a container of s, or "" when it may stay.
// Only the config hash, the image digest and dependencies recreated decide.
func (b *builder) recreateReason(c *Container, s *spec.Service, recreated map[string]bool) string {
	if b.opts.NoRecreate {
		return ""
	}
	if b.opts.ForceRecreate {
		return "forced (--force-recreate)"
	}
	if c.Status == StatusUnsupervised {
		return "unsupervised (monitor gone)"
	}
	if c.Config != nil {
		// A network it was attached to is gone from the host: it is recreated, and the
		// container with it, since its interface went with the old one.
		for _, k := range sortedKeys(c.Config.Networks) {
			if a := b.nets[k]; a != nil && a.Reason == "missing" {
				return "network " + k + " missing"
			}
		}
	}
	if c.Hash != s.Hash {
		return changedReason(c.Config, s)
	}
	if want := b.obs.Images[s.Image]; want != "" && c.ImageDigest != "" && want != c.ImageDigest {
		return "image digest changed"
	}
	for _, dep := range sortedKeys(s.DependsOn) {
		if s.DependsOn[dep].Restart && recreated[dep] {
			return "dependency recreated (" + dep + ")"
		}
	}
	return ""
}

// changedReason names the changed top-level keys and the changed paths:
// "environment, ports changed (environment.DB_HOST, ports[0].published)".
func changedReason(old, new *spec.Service) string {
	if old == nil {
		return "config changed"
	}
	paths := spec.Diff(old, new)
	if len(paths) == 0 {
		return "config changed"
	}
	var keys []string
	for _, p := range paths {
		k := p
		if i := strings.IndexAny(p, ".["); i > 0 {
			k = p[:i]
		}
		if !slices.Contains(keys, k) {
			keys = append(keys, k)
		}
	}
	const maxPaths = 4
	shown := paths
	if len(shown) > maxPaths {
		shown = append(slices.Clone(paths[:maxPaths]), "...")
	}
	if len(keys) == 1 && len(paths) == 1 && paths[0] == keys[0] {
		return keys[0] + " changed"
	}
	return strings.Join(keys, ", ") + " changed (" + strings.Join(shown, ", ") + ")"
}

// statusDecision is what up does with a container whose config is current. A running one stays.
// A created one is started. An exited one is started again unless it completed: exit code 0
// under restart "no" or "on-failure" is a one-shot that did its job.
func statusDecision(c *Container) (op, string) {
	switch c.Status {
	case StatusRunning:
		return opKeep, "running"
	case StatusCreated:
		return opStart, "created, not started"
	case StatusUnsupervised:
		return opKeep, "unsupervised"
	}
	policy := c.Restart.Name
	if policy == "" && c.Config != nil {
		policy = c.Config.Restart.Name
	}
	if policy == "" {
		policy = "no"
	}
	exited := "exited (" + strconv.Itoa(c.ExitCode) + ")"
	if c.ExitCode == 0 && (policy == "no" || policy == "on-failure") {
		return opKeep, exited + ", completed"
	}
	return opStart, exited + ", restart policy " + policy
}

// destroyFirst reports whether the old and new containers cannot exist side by side: a fixed
// container name or a fixed address.
func destroyFirst(old, new *spec.Service) bool {
	for _, s := range []*spec.Service{old, new} {
		if s == nil {
			continue
		}
		if s.ContainerName != "" {
			return true
		}
		for _, n := range s.Networks {
			if n != nil && n.IPv4Address != "" {
				return true
			}
		}
	}
	return false
}

type removal struct {
	c      *Container
	reason string
}

// stopAndRemove plans stop (when there is a process) and remove for each container. A
// container is stopped only after the containers that depend on its service (per the config
// they were created from) are stopped: reverse dependency order.
func (b *builder) stopAndRemove(rs []removal) {
	stops := map[string][]*Action{} // service -> stop actions
	var pending []struct {
		stop *Action
		c    *Container
	}
	for _, r := range rs {
		c := r.c
		res := ContainerResource(c.Service, c.Number)
		var stop *Action
		if c.Status == StatusRunning || c.Status == StatusUnsupervised || c.Status == StatusCreated {
			stop = b.add(&Action{Kind: StopContainer, Resource: res, Reason: r.reason, Service: c.Config,
				Number: c.Number, Container: c.ID})
			stops[c.Service] = append(stops[c.Service], stop)
			pending = append(pending, struct {
				stop *Action
				c    *Container
			}{stop, c})
		}
		rm := b.add(&Action{Kind: RemoveContainer, Resource: res, Reason: r.reason, Service: c.Config,
			Number: c.Number, Container: c.ID})
		after(rm, stop)
		b.removals = append(b.removals, rm)
	}
	// A stop of service X waits for the stops of every service that depends on X.
	for _, p := range pending {
		for _, other := range rs {
			if other.c.Config == nil || other.c.Service == p.c.Service {
				continue
			}
			if _, ok := other.c.Config.DependsOn[p.c.Service]; ok {
				after(p.stop, stops[other.c.Service]...)
			}
		}
	}
}

func (b *builder) down() error {
	var targets []removal
	kept := map[string]bool{} // networks still used by containers down leaves
	for _, c := range b.containers {
		if b.desired == nil || b.opts.RemoveOrphans || b.desired.Services[c.Service] != nil {
			targets = append(targets, removal{c, "down"})
			continue
		}
		b.plan.Warnings = append(b.plan.Warnings, fmt.Sprintf(
			"orphan %s (%s): service %q is not in the stack file; --remove-orphans removes it",
			ContainerResource(c.Service, c.Number), shortID(c.ID), c.Service))
		if c.Config != nil {
			for k := range c.Config.Networks {
				kept[k] = true
			}
		}
	}
	b.stopAndRemove(targets)
	for _, n := range sortedBy(b.obs.Networks, func(n Network) string { return n.Key }) {
		if kept[n.Key] {
			b.plan.Warnings = append(b.plan.Warnings, "network:"+n.Key+" kept: orphan containers use it")
			continue
		}
		rm := b.add(&Action{Kind: RemoveNetwork, Resource: "network:" + n.Key, Reason: "down",
			Network: &spec.Network{Key: n.Key, Name: n.Name}})
		after(rm, b.removals...)
	}
	if b.opts.RemoveVolumes {
		for _, v := range sortedBy(b.obs.Volumes, func(v Volume) string { return v.Key }) {
			rm := b.add(&Action{Kind: RemoveVolume, Resource: "volume:" + v.Key, Reason: "down -v",
				Volume: &spec.Volume{Key: v.Key, Name: v.Name}})
			after(rm, b.removals...)
		}
	}
	return b.removeImages()
}

// removeImages adds, for down --rmi, the removal of the images the project's services use:
// those of the stack file's services and of the containers down removes (services that left
// the file, or no file at all). Only images present are removed, after every container.
func (b *builder) removeImages() error {
	mode := b.opts.RemoveImages
	switch mode {
	case "":
		return nil
	case RemoveImagesLocal, RemoveImagesAll:
	default:
		return fmt.Errorf("%w: --rmi %q: want local or all", ErrInvalid, mode)
	}
	refs := map[string]bool{}
	use := func(s *spec.Service) {
		if s == nil || s.Image == "" {
			return
		}
		if mode == RemoveImagesLocal && (s.Build == nil || s.Image != spec.DefaultImage(b.plan.Project, s.Name)) {
			return // a custom tag (image:) or a pulled image
		}
		if b.obs.Images[s.Image] != "" {
			refs[s.Image] = true
		}
	}
	if b.desired != nil {
		for _, name := range b.desired.ServiceNames() {
			use(b.desired.Services[name])
		}
	}
	for _, a := range b.removals {
		use(a.Service)
	}
	for _, ref := range slices.Sorted(maps.Keys(refs)) {
		rm := b.add(&Action{Kind: RemoveImage, Resource: "image:" + ref, Image: ref, Reason: "down --rmi " + mode})
		after(rm, b.removals...)
	}
	return nil
}

// order sorts the actions topologically; among actions ready at the same time, by kind rank,
// then resource (replicas numerically), then id. The result is the same for the same input.
func (b *builder) order() error {
	indeg := map[string]int{}
	children := map[string][]*Action{}
	for _, a := range b.plan.Actions {
		slices.Sort(a.DependsOn)
		for _, dep := range a.DependsOn {
			if b.ids[dep] == nil {
				return fmt.Errorf("plan: action %s depends on unknown action %s", a.ID, dep)
			}
			indeg[a.ID]++
			children[dep] = append(children[dep], a)
		}
	}
	key := func(a *Action) string {
		return fmt.Sprintf("%d %s %02d %s", a.Kind.rank(), resourceSortKey(a.Resource), int(a.Kind), a.ID)
	}
	var ready, out []*Action
	for _, a := range b.plan.Actions {
		if indeg[a.ID] == 0 {
			ready = append(ready, a)
		}
	}
	for len(ready) > 0 {
		slices.SortFunc(ready, func(x, y *Action) int { return strings.Compare(key(x), key(y)) })
		a := ready[0]
		ready = ready[1:]
		out = append(out, a)
		for _, c := range children[a.ID] {
			if indeg[c.ID]--; indeg[c.ID] == 0 {
				ready = append(ready, c)
			}
		}
	}
	if len(out) != len(b.plan.Actions) {
		return fmt.Errorf("plan: actions form a cycle")
	}
	b.plan.Actions = out
	slices.SortFunc(b.plan.Unchanged, func(x, y Unchanged) int {
		return strings.Compare(resourceSortKey(x.Resource)+x.Container, resourceSortKey(y.Resource)+y.Container)
	})
	return nil
}

// resourceSortKey makes container:web:10 sort after container:web:9.
func resourceSortKey(res string) string {
	parts := strings.Split(res, ":")
	if len(parts) == 3 && parts[0] == "container" {
		if n, err := strconv.Atoi(parts[2]); err == nil {
			return "container:" + containerKey(parts[1], n)
		}
	}
	return res
}

func sortedKeys[K interface{ ~string | ~int }, V any](m map[K]V) []K {
	keys := make([]K, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func sortedBy[T any](xs []T, key func(T) string) []T {
	out := slices.Clone(xs)
	slices.SortFunc(out, func(a, b T) int { return strings.Compare(key(a), key(b)) })
	return out
}
