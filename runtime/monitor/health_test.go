package monitor

import "testing"

func TestNextHealth(t *testing.T) {
	ok := Probe{ExitCode: 0, Output: "ok"}
	bad := Probe{ExitCode: 1, Output: "bad"}
	starting := HealthState{Status: HealthStarting}
	tests := []struct {
		name       string
		from       HealthState
		probe      Probe
		inStart    bool
		wantStatus string
		wantStreak int
	}{
		{"success makes healthy", starting, ok, false, HealthHealthy, 0},
		{"success in start period", starting, ok, true, HealthHealthy, 0},
		{"failure in start period ignored", starting, bad, true, HealthStarting, 0},
		{"failure counts after start period", starting, bad, false, HealthStarting, 1},
		{"retries reached", HealthState{Status: HealthStarting, FailingStreak: 2}, bad, false, HealthUnhealthy, 3},
		{"healthy then failure in start period counts", HealthState{Status: HealthHealthy}, bad, true, HealthHealthy, 1},
		{"healthy becomes unhealthy", HealthState{Status: HealthHealthy, FailingStreak: 2}, bad, false, HealthUnhealthy, 3},
		{"success resets streak", HealthState{Status: HealthUnhealthy, FailingStreak: 5}, ok, false, HealthHealthy, 0},
	}
	for _, tc := range tests {
		got := nextHealth(tc.from, tc.probe, tc.inStart, 3)
		if got.Status != tc.wantStatus || got.FailingStreak != tc.wantStreak {
			t.Errorf("%s: got %s/%d, want %s/%d", tc.name, got.Status, got.FailingStreak, tc.wantStatus, tc.wantStreak)
		}
		if last := got.Log[len(got.Log)-1]; last.Output != tc.probe.Output {
			t.Errorf("%s: last probe not kept: %+v", tc.name, last)
		}
	}
	h := starting
	for i := 0; i < 2*healthLogLen; i++ {
		h = nextHealth(h, Probe{ExitCode: i}, false, 100)
	}
	if len(h.Log) != healthLogLen || h.Log[healthLogLen-1].ExitCode != 2*healthLogLen-1 {
		t.Fatalf("log keeps %d probes ending with %+v", len(h.Log), h.Log[len(h.Log)-1])
	}
}
