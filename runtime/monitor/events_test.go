package monitor

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stackrun/stack/events"
)

func TestTransitions(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	t1 := t0.Add(time.Minute)
	running := Status{State: StateRunning, MonitorPid: 10, ContainerPid: 20, StartedAt: t0}
	healthy := running
	healthy.Health = &HealthState{Status: HealthHealthy}
	tests := []struct {
		name     string
		old, cur Status
		want     string
	}{
		{"first start", Status{}, running, "start"},
		{"start after a stop by another monitor", Status{State: StateStopped, MonitorPid: 9, StartedAt: t0.Add(-time.Hour), FinishedAt: t0.Add(-time.Minute)},
			running, "start"},
		{"no change", running, running, ""},
		{"exit", running, Status{State: StateExited, MonitorPid: 10, ExitCode: 3, StartedAt: t0, FinishedAt: t1}, "die(3)"},
		{"oom", running, Status{State: StateExited, MonitorPid: 10, ExitCode: 137, Signal: 9, OOMKilled: true, StartedAt: t0, FinishedAt: t1}, "oom die(137/9)"},
		{"exit then restart backoff", running, Status{State: StateRestarting, MonitorPid: 10, ExitCode: 1, StartedAt: t0, FinishedAt: t1}, "die(1)"},
		{"policy restart", Status{State: StateRestarting, MonitorPid: 10, ExitCode: 1, StartedAt: t0, FinishedAt: t1},
			Status{State: StateRunning, MonitorPid: 10, ContainerPid: 21, StartedAt: t1, RestartCount: 1}, "restart start"},
		{"restart request", running, Status{State: StateRunning, MonitorPid: 10, ContainerPid: 21, StartedAt: t1}, "restart start"},
		{"stop after backoff: no second die", Status{State: StateRestarting, MonitorPid: 10, ExitCode: 1, FinishedAt: t1},
			Status{State: StateStopped, MonitorPid: 10, ExitCode: 1, FinishedAt: t1}, ""},
		{"adopted: same start time", Status{State: StateRunning, MonitorPid: 9, ContainerPid: 20, StartedAt: t0},
			Status{State: StateRunning, MonitorPid: 10, ContainerPid: 20, StartedAt: t0, Adopted: true}, ""},
		{"healthy", running, healthy, "health_status(healthy)"},
		{"still healthy", healthy, healthy, ""},
		{"starting is not reported", running, func() Status { s := running; s.Health = &HealthState{Status: HealthStarting}; return s }(), ""},
		{"unhealthy", healthy, func() Status { s := running; s.Health = &HealthState{Status: HealthUnhealthy}; return s }(), "health_status(unhealthy)"},
	}
	for _, tc := range tests {
		var got []string
		for _, ev := range transitions(&tc.old, &tc.cur, t1) {
			s := ev.Type
			switch {
			case ev.Type == events.Die && ev.Signal != 0:
				s += "(" + strconv.Itoa(*ev.ExitCode) + "/" + strconv.Itoa(ev.Signal) + ")"
			case ev.Type == events.Die:
				s += "(" + strconv.Itoa(*ev.ExitCode) + ")"
			case ev.Type == events.HealthStatus:
				s += "(" + ev.Health + ")"
			}
			if !ev.Time.Equal(t1) {
				t.Errorf("%s: event time %v", tc.name, ev.Time)
			}
			got = append(got, s)
		}
		if g := strings.Join(got, " "); g != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, g, tc.want)
		}
	}
}
