package monitor

import (
	"bytes"
	"context"
	"errors"
	"time"
)

// Health bookkeeping, as Docker does it.
const (
	healthLogLen    = 5    // probes kept in the record
	probeOutputSize = 4096 // bytes of output kept per probe
)

// nextHealth folds one probe into h. A failure inside the start period does not count
// against the container unless it has already been healthy once.
func nextHealth(h HealthState, p Probe, inStartPeriod bool, retries int) HealthState {
	log := append(append([]Probe(nil), h.Log...), p)
	if len(log) > healthLogLen {
		log = log[len(log)-healthLogLen:]
	}
	h.Log = log
	if p.ExitCode == 0 {
		h.Status, h.FailingStreak = HealthHealthy, 0
		return h
	}
	if inStartPeriod && h.Status != HealthHealthy {
		return h
	}
	h.FailingStreak++
	if h.FailingStreak >= retries {
		h.Status = HealthUnhealthy
	}
	return h
}

// cappedBuffer keeps the first n bytes written to it and drops the rest.
type cappedBuffer struct {
	buf bytes.Buffer
	n   int
}

func (c *cappedBuffer) Write(p []byte) (int, error) {
	if room := c.n - c.buf.Len(); room > 0 {
		c.buf.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}

// healthResult is one probe of run generation gen.
type healthResult struct {
	gen           int
	probe         Probe
	inStartPeriod bool
}

// probeLoop probes the container until ctx ends, sending each result on out. It waits
// StartInterval between probes during the start period, Interval after it (Docker's order:
// wait, then probe).
func probeLoop(ctx context.Context, rt OCIRuntime, id string, hc Healthcheck, argv []string, gen int, started time.Time, out chan<- healthResult) {
	for {
		inStart := time.Since(started) < hc.StartPeriod
		wait := hc.Interval
		if inStart {
			wait = hc.StartInterval
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		p := runProbe(ctx, rt, id, argv, hc.Timeout)
		if ctx.Err() != nil {
			return
		}
		select {
		case out <- healthResult{gen: gen, probe: p, inStartPeriod: time.Since(started) < hc.StartPeriod}:
		case <-ctx.Done():
			return
		}
	}
}

func runProbe(ctx context.Context, rt OCIRuntime, id string, argv []string, timeout time.Duration) Probe {
	out := &cappedBuffer{n: probeOutputSize}
	pctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	p := Probe{Start: time.Now().UTC()}
	code, err := rt.Exec(pctx, id, ExecProcess{Args: argv, Stdout: out, Stderr: out})
	p.End = time.Now().UTC()
	p.ExitCode, p.Output = code, out.buf.String()
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		p.ExitCode = -1
		p.Output = "health check exceeded timeout (" + timeout.String() + ")"
	case err != nil:
		p.ExitCode = -1
		p.Output = err.Error()
	}
	return p
}
