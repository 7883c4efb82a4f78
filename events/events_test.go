package events

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

func TestAppendReadConcurrent(t *testing.T) {
	path := Path(t.TempDir())
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				code := i
				if err := Append(path, Event{Type: Die, ID: fmt.Sprintf("c%d", w), ExitCode: &code}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	evs, err := Read(path, time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 400 {
		t.Fatalf("read %d events, want 400", len(evs))
	}
	next := map[string]int{}
	for _, ev := range evs {
		if ev.ExitCode == nil || *ev.ExitCode != next[ev.ID] || ev.Time.IsZero() {
			t.Fatalf("event out of order or incomplete: %+v (want code %d)", ev, next[ev.ID])
		}
		next[ev.ID]++
	}
}

func TestReadRange(t *testing.T) {
	path := Path(t.TempDir())
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := 0; i < 5; i++ {
		if err := Append(path, Event{Time: t0.Add(time.Duration(i) * time.Minute), Type: Start, ID: fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
	}
	// A torn last line (crash mid-write) is skipped.
	f, _ := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	f.WriteString(`{"time":"2026-01-01T00:09:00Z","ty`)
	f.Close()
	tests := []struct {
		since, until time.Time
		want         string
	}{
		{time.Time{}, time.Time{}, "01234"},
		{t0.Add(2 * time.Minute), time.Time{}, "234"},
		{time.Time{}, t0.Add(2 * time.Minute), "01"},
		{t0.Add(time.Minute), t0.Add(3 * time.Minute), "12"},
		{t0.Add(time.Hour), time.Time{}, ""},
	}
	for _, tc := range tests {
		evs, err := Read(path, tc.since, tc.until)
		if err != nil {
			t.Fatal(err)
		}
		got := ""
		for _, ev := range evs {
			got += ev.ID
		}
		if got != tc.want {
			t.Errorf("since %v until %v: got %q, want %q", tc.since, tc.until, got, tc.want)
		}
	}
	if evs, err := Read(filepath.Join(t.TempDir(), "none.jsonl"), time.Time{}, time.Time{}); err != nil || len(evs) != 0 {
		t.Errorf("missing journal: %v %v", evs, err)
	}
}

func TestRotation(t *testing.T) {
	path := Path(t.TempDir())
	if err := Append(path, Event{Type: Create, ID: "old"}); err != nil {
		t.Fatal(err)
	}
	// Grow the journal past MaxSize with valid lines, then append: it rotates first.
	f, _ := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	line := []byte(`{"time":"2026-01-01T00:00:00Z","type":"start","id":"filler"}` + "\n")
	for n := 0; n <= MaxSize; n += len(line) {
		f.Write(line)
	}
	f.Close()
	if err := Append(path, Event{Type: Destroy, ID: "new"}); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(path); err != nil || st.Size() > 200 {
		t.Fatalf("journal not rotated: %v %v", st, err)
	}
	evs, err := Read(path, time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if evs[0].ID != "old" || evs[len(evs)-1].ID != "new" {
		t.Errorf("first %+v last %+v", evs[0], evs[len(evs)-1])
	}
}

func TestFollow(t *testing.T) {
	path := Path(t.TempDir())
	if err := Append(path, Event{Type: Create, ID: "a"}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	got := make(chan Event, 10)
	done := make(chan error, 1)
	go func() {
		done <- Follow(ctx, path, time.Time{}, time.Time{}, 10*time.Millisecond, func(ev Event) { got <- ev })
	}()
	if ev := <-got; ev.ID != "a" {
		t.Fatalf("first event %+v", ev)
	}
	if err := Append(path, Event{Type: Start, ID: "b"}, Event{Type: Die, ID: "c"}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"b", "c"} {
		select {
		case ev := <-got:
			if ev.ID != want {
				t.Fatalf("got %+v, want %s", ev, want)
			}
		case <-ctx.Done():
			t.Fatalf("no event %s", want)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// until in the past: Follow returns after the history.
	var n int
	if err := Follow(context.Background(), path, time.Time{}, time.Now(), 0, func(Event) { n++ }); err != nil || n != 3 {
		t.Errorf("follow until now: %d events, %v", n, err)
	}
}

// TestLineLikeEncodingJSON: a journal line is what encoding/json writes for the Event.
func TestLineLikeEncodingJSON(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	code, zero := 137, 0
	for _, ev := range []Event{
		{Time: at, Type: Start, ID: "abc"},
		{Time: at, Type: Die, ID: "abc", Name: "web-1", Project: "p<&>", Service: "web", ExitCode: &code, Signal: 9},
		{Time: at, Type: Die, ID: "abc", ExitCode: &zero},
		{Time: at, Type: HealthStatus, ID: "abc", Health: "healthy"},
	} {
		want, _ := json.Marshal(ev)
		if got := appendEvent(nil, &ev); string(got) != string(want)+"\n" {
			t.Errorf("line:\n got %s\nwant %s", got, want)
		}
	}
}
