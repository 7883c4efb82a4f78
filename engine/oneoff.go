package engine

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/stackrun/stack/planner"
	"github.com/stackrun/stack/spec"
)

// LabelOneOff marks a one-off container (`stack run`): it belongs to its project and is
// listed with it, but it is no replica of its service, so Observe leaves it out of what the
// planner sees (never an orphan, never scaled or recreated). Its value is "true".
const LabelOneOff = "io.stackrun.oneoff"

// OneOff says what one-off container to create.
type OneOff struct {
	Stack   *spec.Stack   // for the networks and volumes the service uses
	Service *spec.Service // the service, with run's overrides (command, entrypoint, env) applied
	Name    string        // container name; "" makes <project>-<service>-run-<id[:12]>
}

// CreateOneOff creates a one-off container of o.Service without starting it: it ensures the
// networks and named volumes the service uses, makes sure its image is present (pulling it
// when missing), records the container with LabelOneOff, creates it on the host and attaches
// it to its networks. Start it with Containers.Start (supervised) or through the runtime
// directly (attached); remove it with RemoveOneOff.
func (e *Engine) CreateOneOff(ctx context.Context, o OneOff) (*Record, error) {
	s := o.Service
	if s == nil || o.Stack == nil {
		return nil, fmt.Errorf("%w: one-off container without a service", ErrInvalid)
	}
	keys := make([]string, 0, len(s.Networks))
	for k := range s.Networks {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if nw := o.Stack.Networks[k]; nw != nil {
			if err := e.cfg.Networks.Ensure(ctx, e.cfg.Project, nw); err != nil {
				return nil, fmt.Errorf("create network %s: %w", k, err)
			}
		}
	}
	for _, m := range s.Mounts {
		if m.Type != spec.MountVolume || m.Source == "" {
			continue
		}
		if v := o.Stack.Volumes[m.Source]; v != nil {
			if err := e.cfg.Volumes.Ensure(ctx, e.cfg.Project, v); err != nil {
				return nil, fmt.Errorf("create volume %s: %w", m.Source, err)
			}
		}
	}
	imgs, err := e.cfg.Images.List(ctx)
	if err != nil {
		return nil, fmt.Errorf("list images: %w", err)
	}
	digest := imgs[s.Image]
	if digest == "" {
		if digest, err = e.cfg.Images.Pull(ctx, s.Image); err != nil {
			return nil, fmt.Errorf("pull image %s: %w", s.Image, err)
		}
	}
	id := e.newContainerID()
	name := o.Name
	if name == "" {
		name = e.cfg.Project + "-" + s.Name + "-run-" + id[:12]
	}
	rec := &Record{
		Version: RecordVersion, ID: id, Name: name, Project: e.cfg.Project, Service: s.Name,
		Hash: s.Hash, Image: s.Image, ImageDigest: digest, Config: s, Phase: RecordCreating, Created: e.cfg.Now(),
		Labels: map[string]string{
			LabelProject: e.cfg.Project, LabelService: s.Name, LabelNumber: "0", LabelConfigHash: s.Hash, LabelOneOff: "true",
		},
	}
	if err := e.writeRecord(rec); err != nil {
		return nil, err
	}
	fail := func(err error) (*Record, error) {
		return nil, errors.Join(fmt.Errorf("create one-off container %s: %w", name, err), e.RemoveOneOff(context.WithoutCancel(ctx), rec))
	}
	cs := &ContainerSpec{ID: id, Name: name, Project: e.cfg.Project, Service: s, Image: s.Image, ImageDigest: digest, Labels: rec.Labels}
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
	if err := e.cfg.Networks.Attach(ctx, e.cfg.Project, Endpoint{ContainerID: id, Name: name, Service: s, NetNS: netns}); err != nil {
		return fail(fmt.Errorf("attach networks: %w", err))
	}
	rec.Phase = RecordCreated
	if err := e.writeRecord(rec); err != nil {
		return fail(err)
	}
	return rec, nil
}

// RemoveOneOff stops nothing: it detaches a stopped one-off (or any) container from its
// networks, removes it from the host and deletes its record last.
func (e *Engine) RemoveOneOff(ctx context.Context, rec *Record) error {
	if err := e.cfg.Networks.Detach(ctx, e.cfg.Project, rec.ID); err != nil {
		return fmt.Errorf("remove container %s: detach networks: %w", rec.Name, err)
	}
	if err := ignoreNotFound(e.cfg.Containers.Remove(ctx, rec.ID)); err != nil {
		return fmt.Errorf("remove container %s: %w", rec.Name, err)
	}
	if err := e.deleteRecord(rec.ID); err != nil {
		return err
	}
	e.pruneDirs()
	return nil
}

// oneOff reports whether a record is of a one-off container (see LabelOneOff).
func oneOff(r *Record) bool { return r.Labels[LabelOneOff] != "" }

// removeOneOffs stops and removes every one-off container of the project: a down takes them
// with it (as Compose's does), before its plan removes the networks they are attached to.
func (e *Engine) removeOneOffs(ctx context.Context, opts ApplyOptions) error {
	recs, err := e.Records()
	if err != nil {
		return err
	}
	var errs []error
	for _, r := range recs {
		if !oneOff(r) {
			continue
		}
		timeout := opts.StopTimeout
		if timeout <= 0 {
			timeout = 10 * time.Second
		}
		if err := ignoreNotFound(e.cfg.Containers.Stop(ctx, r.ID, timeout)); err != nil {
			errs = append(errs, fmt.Errorf("stop container %s: %w", r.Name, err))
			continue
		}
		errs = append(errs, e.RemoveOneOff(ctx, r))
		if opts.OnEvent != nil {
			opts.OnEvent(Event{Action: "remove " + r.Name, Kind: planner.RemoveContainer, Resource: "container:" + r.Service + ":run",
				Phase: PhaseDone, Time: e.cfg.Now(), Message: "one-off"})
		}
	}
	return errors.Join(errs...)
}
