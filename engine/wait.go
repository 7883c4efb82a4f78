package engine

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/stackrun/stack/planner"
	"github.com/stackrun/stack/spec"
)

// WaitReady blocks until every container of services (all services of desired when empty) is
// ready: running, and healthy when its service has a healthcheck. A service that another
// service needs with service_completed_successfully is ready once all its containers exited 0
// (`up --wait` counts such one-shots as done). It fails as soon as a container can no longer
// become ready (exited otherwise, unhealthy), or when ctx is done. poll 0 means 100ms.
func (e *Engine) WaitReady(ctx context.Context, desired *spec.Stack, services []string, poll time.Duration) error {
	if poll <= 0 {
		poll = 100 * time.Millisecond
	}
	if len(services) == 0 {
		services = desired.ServiceNames()
	}
	oneShot := map[string]bool{}
	for _, s := range desired.Services {
		for d, dd := range s.DependsOn {
			if dd.Condition == spec.ConditionCompletedSuccessful {
				oneShot[d] = true
			}
		}
	}
	for {
		recs, err := e.Records()
		if err != nil {
			return err
		}
		pending := ""
		for _, r := range recs {
			if !slices.Contains(services, r.Service) {
				continue
			}
			st, err := e.cfg.Containers.Inspect(ctx, r.ID)
			if err != nil {
				return fmt.Errorf("wait for container %s: %w", r.Name, err)
			}
			hc := r.Config != nil && r.Config.Healthcheck != nil && !r.Config.Healthcheck.Disable
			switch {
			case oneShot[r.Service] && st.Status == planner.StatusExited && st.ExitCode == 0:
				// done
			case st.Status == planner.StatusExited:
				return fmt.Errorf("wait for container %s: %w: exited (%d)", r.Name, ErrFailed, st.ExitCode)
			case st.Health == "unhealthy":
				return fmt.Errorf("wait for container %s: %w: unhealthy", r.Name, ErrFailed)
			case st.Status != planner.StatusRunning || (hc && st.Health != "healthy") || oneShot[r.Service]:
				if pending == "" {
					pending = r.Name
				}
			}
		}
		if pending == "" {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for container %s: %w", pending, ctx.Err())
		case <-time.After(poll):
		}
	}
}
