package monitor

import "time"

// Backoff of restarts, as Docker does: the first restart waits minBackoff, each further one
// twice as long up to maxBackoff; a container that stayed up resetAfter starts over.
const (
	minBackoff = 100 * time.Millisecond
	maxBackoff = time.Minute
	resetAfter = 10 * time.Second
)

// restartDecision is what to do after the container exited.
type restartDecision struct {
	restart bool
	delay   time.Duration
}

// decideRestart applies policy to an exit. restarts is how many times the policy restarted
// the container so far, lastDelay the previous backoff (0 if none), uptime how long the run
// that just ended lasted, stopped whether the user asked for the stop (which always wins).
func decideRestart(p RestartPolicy, exitCode, restarts int, lastDelay, uptime time.Duration, stopped bool) restartDecision {
	if stopped {
		return restartDecision{}
	}
	switch p.Name {
	case RestartAlways, RestartUnlessStopped:
	case RestartOnFailure:
		if exitCode == 0 {
			return restartDecision{}
		}
		if p.MaxRetries > 0 && restarts >= p.MaxRetries {
			return restartDecision{}
		}
	default:
		return restartDecision{}
	}
	delay := minBackoff
	if lastDelay > 0 && uptime < resetAfter {
		delay = min(lastDelay*2, maxBackoff)
	}
	return restartDecision{restart: true, delay: delay}
}
