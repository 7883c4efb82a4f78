package local

import (
	"path/filepath"

	"github.com/stackrun/stack/engine"
	"github.com/stackrun/stack/events"
	"github.com/stackrun/stack/runtime/monitor"
)

// eventSink is where container cs's monitor appends its events: the journal under the state
// root, with the container's names.
func (h *Host) eventSink(cs *engine.ContainerSpec) *monitor.EventSink {
	return &monitor.EventSink{Path: events.Path(h.Root), Name: cs.Name, Project: cs.Project, Service: cs.Labels[engine.LabelService]}
}

// sinkOf reads back the event sink recorded for container id (nil when unknown).
func (h *Host) sinkOf(id string) *monitor.EventSink {
	var rec launchRecord
	if readJSON(filepath.Join(h.containerDir(id), "local.json"), &rec) != nil {
		return nil
	}
	return rec.Monitor.Events
}

// journal appends an event of type typ about container id named by sink; the journal is a
// record for users, so a failure to append is logged and never fails the operation.
func (h *Host) journal(sink *monitor.EventSink, typ, id string) {
	if sink == nil {
		return
	}
	ev := events.Event{Type: typ, ID: id, Name: sink.Name, Project: sink.Project, Service: sink.Service}
	if err := events.Append(events.Path(h.Root), ev); err != nil {
		h.Log.Warn("append to event journal", "event", typ, "container", id, "err", err)
	}
}

// destroyed journals the destroy of container id (named by sink) when err is nil, and
// returns err.
func (h *Host) destroyed(sink *monitor.EventSink, id string, err error) error {
	if err == nil {
		h.journal(sink, events.Destroy, id)
	}
	return err
}
