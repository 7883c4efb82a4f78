package monitor

import (
	"errors"
	"path/filepath"
	"testing"

	"github.com/stackrun/stack/state"
)

func TestParseStat(t *testing.T) {
	tests := []struct {
		name      string
		in        string
		wantState byte
		wantStart uint64
		wantErr   bool
	}{
		{"plain", "42 (sh) S 1 42 42 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 123456 1000 10", 'S', 123456, false},
		{"name with spaces and parens", "7 (a) b (c)) Z 1 7 7 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 99 0 0", 'Z', 99, false},
		{"truncated", "7 (x) R 1 2 3", 0, 0, true},
		{"garbage", "nothing here", 0, 0, true},
	}
	for _, tc := range tests {
		st, start, err := parseStat([]byte(tc.in))
		if (err != nil) != tc.wantErr || st != tc.wantState || start != tc.wantStart {
			t.Errorf("%s: got %c %d %v", tc.name, st, start, err)
		}
	}
}

// After a reboot (another boot id, the run dir empty) a container recorded as running is
// reported exited with an unknown exit code; final records are returned as they are.
func TestInspectAfterReboot(t *testing.T) {
	tests := []struct {
		name     string
		rec      Status
		intent   bool
		want     ContainerState
		wantCode int
	}{
		{"running becomes exited", Status{State: StateRunning, BootID: "other-boot", MonitorPid: 1, ContainerPid: 1}, false, StateExited, -1},
		{"restarting becomes exited", Status{State: StateRestarting, BootID: "other-boot", ExitCode: 3}, false, StateExited, 3},
		{"stop intent makes it stopped", Status{State: StateRunning, BootID: "other-boot", ContainerPid: 1}, true, StateStopped, -1},
		{"final record kept", Status{State: StateExited, BootID: "other-boot", ExitCode: 2}, false, StateExited, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			stateDir, runDir := t.TempDir(), t.TempDir()
			if err := state.WriteJSON(filepath.Join(stateDir, statusFile), tc.rec); err != nil {
				t.Fatal(err)
			}
			if tc.intent {
				if err := state.WriteFile(filepath.Join(stateDir, intentFile), nil, state.FileMode); err != nil {
					t.Fatal(err)
				}
			}
			got, err := Inspect(stateDir, runDir)
			if err != nil {
				t.Fatal(err)
			}
			if got.State != tc.want || got.ExitCode != tc.wantCode || got.Unsupervised {
				t.Fatalf("got state %s exit %d unsupervised %v", got.State, got.ExitCode, got.Unsupervised)
			}
		})
	}
	if _, err := Inspect(t.TempDir(), t.TempDir()); !errors.Is(err, ErrNoRecord) {
		t.Fatalf("no record: %v", err)
	}
}
