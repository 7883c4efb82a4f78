package monitor

import (
	"testing"
	"time"
)

func TestParseRestartPolicy(t *testing.T) {
	tests := []struct {
		in      string
		want    RestartPolicy
		wantErr bool
	}{
		{"", RestartPolicy{Name: "no"}, false},
		{"no", RestartPolicy{Name: "no"}, false},
		{"always", RestartPolicy{Name: "always"}, false},
		{"unless-stopped", RestartPolicy{Name: "unless-stopped"}, false},
		{"on-failure", RestartPolicy{Name: "on-failure"}, false},
		{"on-failure:3", RestartPolicy{Name: "on-failure", MaxRetries: 3}, false},
		{"on-failure:x", RestartPolicy{}, true},
		{"always:2", RestartPolicy{}, true},
		{"sometimes", RestartPolicy{}, true},
	}
	for _, tc := range tests {
		got, err := ParseRestartPolicy(tc.in)
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("ParseRestartPolicy(%q) = %+v, %v; want %+v, err %v", tc.in, got, err, tc.want, tc.wantErr)
		}
	}
}

func TestDecideRestart(t *testing.T) {
	ms := time.Millisecond
	onFailure3 := RestartPolicy{Name: RestartOnFailure, MaxRetries: 3}
	tests := []struct {
		name      string
		p         RestartPolicy
		code      int
		restarts  int
		lastDelay time.Duration
		uptime    time.Duration
		stopped   bool
		want      restartDecision
	}{
		{"no never restarts", RestartPolicy{Name: RestartNo}, 1, 0, 0, 0, false, restartDecision{}},
		{"always after success", RestartPolicy{Name: RestartAlways}, 0, 0, 0, 0, false, restartDecision{true, 100 * ms}},
		{"always doubles", RestartPolicy{Name: RestartAlways}, 137, 4, 400 * ms, time.Second, false, restartDecision{true, 800 * ms}},
		{"backoff capped", RestartPolicy{Name: RestartAlways}, 1, 20, 50 * time.Second, 0, false, restartDecision{true, time.Minute}},
		{"long run resets backoff", RestartPolicy{Name: RestartAlways}, 1, 5, 3200 * ms, 11 * time.Second, false, restartDecision{true, 100 * ms}},
		{"user stop wins over always", RestartPolicy{Name: RestartAlways}, 137, 0, 0, 0, true, restartDecision{}},
		{"user stop wins over unless-stopped", RestartPolicy{Name: RestartUnlessStopped}, 1, 0, 0, 0, true, restartDecision{}},
		{"on-failure ignores success", onFailure3, 0, 0, 0, 0, false, restartDecision{}},
		{"on-failure first", onFailure3, 1, 0, 0, 0, false, restartDecision{true, 100 * ms}},
		{"on-failure third", onFailure3, 1, 2, 200 * ms, 0, false, restartDecision{true, 400 * ms}},
		{"on-failure exhausted", onFailure3, 1, 3, 400 * ms, 0, false, restartDecision{}},
		{"on-failure unlimited", RestartPolicy{Name: RestartOnFailure}, 2, 100, 0, 0, false, restartDecision{true, 100 * ms}},
	}
	for _, tc := range tests {
		got := decideRestart(tc.p, tc.code, tc.restarts, tc.lastDelay, tc.uptime, tc.stopped)
		if got != tc.want {
			t.Errorf("%s: got %+v, want %+v", tc.name, got, tc.want)
		}
	}
}
