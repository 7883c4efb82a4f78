package monitor

import (
	"path/filepath"
	"time"

	"github.com/stackrun/stack/events"
)

// EventSink says where a monitor appends the container's events (see package events) and
// which names to put on them. A monitor without one appends nothing.
type EventSink struct {
	Path    string `json:"path"` // the journal, events.Path(state root)
	Name    string `json:"name,omitempty"`
	Project string `json:"project,omitempty"`
	Service string `json:"service,omitempty"`
}

// journal appends the events between the record on disk and the one about to be written.
// Every change of the monitor's record goes through write, so comparing the two sees each
// start, exit, restart and health change once; a failure to append is noted, never fatal.
func (m *monitor) journal() {
	sink := m.cfg.Events
	if sink == nil || sink.Path == "" {
		return
	}
	old, _ := readStatus(filepath.Join(m.cfg.StateDir, statusFile))
	evs := transitions(&old, &m.st, time.Now())
	for i := range evs {
		evs[i].ID, evs[i].Name, evs[i].Project, evs[i].Service = m.cfg.ID, sink.Name, sink.Project, sink.Service
	}
	if err := events.Append(sink.Path, evs...); err != nil {
		m.st.Error = err.Error()
	}
}

// transitions are the events that take a container from record old to record cur, in order.
func transitions(old, cur *Status, now time.Time) []events.Event {
	var out []events.Event
	add := func(ev events.Event) {
		ev.Time = now
		out = append(out, ev)
	}
	if !cur.FinishedAt.IsZero() && !cur.FinishedAt.Equal(old.FinishedAt) && cur.ContainerPid == 0 {
		if cur.OOMKilled {
			add(events.Event{Type: events.OOM})
		}
		code := cur.ExitCode
		add(events.Event{Type: events.Die, ExitCode: &code, Signal: cur.Signal})
	}
	if cur.State == StateRunning && cur.ContainerPid != 0 && !cur.StartedAt.Equal(old.StartedAt) {
		// A restart: by the policy, or a run that replaced a running one without an exit
		// record in between (a restart request).
		if cur.RestartCount > old.RestartCount || (old.State == StateRunning && old.MonitorPid == cur.MonitorPid) {
			add(events.Event{Type: events.Restart})
		}
		add(events.Event{Type: events.Start})
	}
	if h := cur.Health; h != nil && h.Status != HealthStarting && (old.Health == nil || old.Health.Status != h.Status || !cur.StartedAt.Equal(old.StartedAt)) {
		add(events.Event{Type: events.HealthStatus, Health: h.Status})
	}
	return out
}
