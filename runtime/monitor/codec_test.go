package monitor

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The monitor writes and reads its JSON without encoding/json (codec.go); the commands around
// it use encoding/json. These tests check that both agree, on values with every field set and
// on zero values.

var at = time.Date(2026, 11, 23, 18, 0, 0, 123456789, time.UTC)

func fullStatus() Status {
	return Status{
		ID: "c1", State: StateRunning, BootID: "boot", MonitorPid: 10, MonitorStartTime: 1 << 40,
		ContainerPid: 11, ContainerStartTime: 12, ExitCode: -1, Signal: 9, OOMKilled: true,
		StartedAt: at, FinishedAt: at.Add(time.Second), RestartCount: 3,
		Restarts:      []RestartEvent{{At: at, Delay: time.Second, ExitCode: 1}, {At: at.Add(time.Minute), Delay: 2 * time.Second}},
		StopRequested: true, Adopted: true,
		Health: &HealthState{Status: HealthUnhealthy, FailingStreak: 2, Log: []Probe{
			{Start: at, End: at.Add(time.Millisecond), ExitCode: 1, Output: "bad <output>\n\"quoted\" \xff"},
		}},
		Error: "an error", Unsupervised: true,
	}
}

func TestStatusCodec(t *testing.T) {
	for _, s := range []Status{fullStatus(), {}, {ID: "c2", State: StateExited, Health: &HealthState{Status: HealthStarting}}} {
		want, _ := json.Marshal(&s)
		got := s.appendJSON(nil)
		if string(got) != string(want) {
			t.Errorf("appendJSON:\n got %s\nwant %s", got, want)
		}
		// What encoding/json writes (indented, as state.WriteJSON does) reads back the same.
		indented, _ := json.MarshalIndent(&s, "", "  ")
		var viaJSON Status
		if err := json.Unmarshal(indented, &viaJSON); err != nil {
			t.Fatal(err)
		}
		dec, err := decodeStatus(indented)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(dec, viaJSON) {
			t.Errorf("decodeStatus:\n got %+v\nwant %+v", dec, viaJSON)
		}
	}
}

func fullConfig() Config {
	return Config{
		ID: "c1", Bundle: "/b", StateDir: "/s", RunDir: "/r", LogPath: "/s/log", LogMaxSize: 1 << 20, LogMaxFiles: 2,
		Restart: RestartPolicy{Name: RestartOnFailure, MaxRetries: 4},
		Healthcheck: &Healthcheck{Test: []string{"CMD-SHELL", "true && \"x\""}, Interval: time.Second, Timeout: 2 * time.Second,
			Retries: 5, StartPeriod: 3 * time.Second, StartInterval: 4 * time.Second},
		StopSignal: unix.SIGINT, StopTimeout: 7 * time.Second, Runtime: "builtin", RuntimeRoot: "/rr", RuntimeHelper: "/bin/h",
		Executable: "/not/sent", Adopt: true,
		Events:  &EventSink{Path: "/e", Name: "web-1", Project: "p", Service: "web"},
		HoldFDs: []int{5, 6},
	}
}

func TestConfigCodec(t *testing.T) {
	full := fullConfig()
	for _, c := range []Config{full, {}, {ID: "x", Healthcheck: &Healthcheck{}}} {
		b, _ := json.Marshal(c)
		var want Config
		if err := json.Unmarshal(b, &want); err != nil {
			t.Fatal(err)
		}
		got, err := decodeConfig(b)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("decodeConfig:\n got %+v\nwant %+v", got, want)
		}
	}
}

func TestProtocolCodecs(t *testing.T) {
	for _, m := range []readyMsg{{OK: true}, {Step: "create", Error: "boom"}} {
		if want, _ := json.Marshal(m); string(m.appendJSON(nil)) != string(want) {
			t.Errorf("readyMsg: got %s, want %s", m.appendJSON(nil), want)
		}
	}
	for _, r := range []reply{{}, {Error: "no"}} {
		if want, _ := json.Marshal(r); string(r.appendJSON(nil)) != string(want) {
			t.Errorf("reply: got %s, want %s", r.appendJSON(nil), want)
		}
	}
	for _, r := range []request{{Op: "stop", Signal: unix.SIGTERM, Timeout: time.Second, Removing: true}, {Op: "restart"}} {
		b, _ := json.Marshal(r)
		if got, err := decodeRequest(b); err != nil || got != r {
			t.Errorf("request: got %+v, %v; want %+v", got, err, r)
		}
	}
	for _, r := range []HelperRequest{
		{Op: "exec", Root: "/r", ID: "c", Bundle: "/b", Signal: unix.SIGKILL, Force: true, Args: []string{"sh", "-c", "x"}, Env: []string{"A=1"}, Cwd: "/"},
		{Op: "state", Root: "/r", ID: "c"},
	} {
		if want, _ := json.Marshal(r); string(r.appendJSON(nil)) != string(want) {
			t.Errorf("HelperRequest: got %s, want %s", r.appendJSON(nil), want)
		}
	}
	for _, r := range []HelperResponse{
		{Pid: 1, Step: "start", State: &State{ID: "c", Status: "running", Pid: 2, Bundle: "/b"}, Code: 3, Error: "e", NotFound: true},
		{},
	} {
		b, _ := json.Marshal(r)
		if got, err := decodeHelperResponse(b); err != nil || !reflect.DeepEqual(got, r) {
			t.Errorf("HelperResponse: got %+v, %v; want %+v", got, err, r)
		}
	}
}

// TestCodecValuesComplete: the values above set every field encoding/json writes, so a field
// added to one of these types fails the tests here until codec.go writes and reads it too.
func TestCodecValuesComplete(t *testing.T) {
	full, cfg := fullStatus(), fullConfig()
	for _, v := range []any{
		full, *full.Health, full.Health.Log[0], full.Restarts[0],
		cfg, cfg.Restart, *cfg.Healthcheck, *cfg.Events,
		request{Op: "stop", Signal: unix.SIGTERM, Timeout: time.Second, Removing: true},
		HelperRequest{Op: "exec", Root: "/r", ID: "c", Bundle: "/b", Signal: unix.SIGKILL, Force: true, Args: []string{"x"}, Env: []string{"A=1"}, Cwd: "/"},
		HelperResponse{Pid: 1, Step: "start", State: &State{}, Code: 3, Error: "e", NotFound: true},
		State{ID: "c", Status: "running", Pid: 2, Bundle: "/b"},
		readyMsg{OK: true, Step: "s", Error: "e"},
		reply{Error: "e"},
	} {
		rv := reflect.ValueOf(v)
		for i := 0; i < rv.NumField(); i++ {
			f := rv.Type().Field(i)
			if f.IsExported() && f.Tag.Get("json") != "-" && rv.Field(i).IsZero() {
				t.Errorf("%T.%s is not set in the codec tests' values", v, f.Name)
			}
		}
	}
}
