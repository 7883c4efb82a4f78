package logfile

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func fixedClock() func() time.Time {
	t := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	return func() time.Time {
		t = t.Add(time.Millisecond)
		return t
	}
}

func readAll(t *testing.T, path string, opts ReadOptions) []Entry {
	t.Helper()
	var out []Entry
	if err := Read(context.Background(), path, opts, func(e Entry) error {
		out = append(out, e)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestCopySplitsLines(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		want  []string
		parts []bool
	}{
		{"lines", "a\nb\n", []string{"a", "b"}, []bool{false, false}},
		{"unterminated last line", "a\nb", []string{"a", "b"}, []bool{false, true}},
		{"empty line", "\n", []string{""}, []bool{false}},
		{"long line split", strings.Repeat("x", MaxLine+5) + "\n", []string{strings.Repeat("x", MaxLine), "xxxxx"}, []bool{true, false}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "log")
			w, err := Open(path, 0, 0)
			if err != nil {
				t.Fatal(err)
			}
			if err := Copy(w, "stdout", strings.NewReader(tc.in), fixedClock()); err != nil {
				t.Fatal(err)
			}
			w.Close()
			got := readAll(t, path, ReadOptions{})
			if len(got) != len(tc.want) {
				t.Fatalf("got %d entries %+v, want %d", len(got), got, len(tc.want))
			}
			for i := range got {
				if got[i].Log != tc.want[i] || got[i].Partial != tc.parts[i] || got[i].Stream != "stdout" {
					t.Errorf("entry %d = %+v, want log %q partial %v", i, got[i], tc.want[i], tc.parts[i])
				}
			}
		})
	}
}

func TestRotationKeepsSizeAndTailSpansFiles(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	const maxSize = 1024
	w, err := Open(path, maxSize, 3)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for i := 0; i < 200; i++ {
		fmt.Fprintf(&b, "line %d\n", i)
	}
	if err := Copy(w, "stderr", strings.NewReader(b.String()), fixedClock()); err != nil {
		t.Fatal(err)
	}
	w.Close()
	files, err := Files(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 3 || files[0] != path+".2" || files[2] != path {
		t.Fatalf("files = %v", files)
	}
	for _, f := range files {
		fi, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() > maxSize {
			t.Errorf("%s is %d bytes, over %d", f, fi.Size(), maxSize)
		}
	}
	all := readAll(t, path, ReadOptions{})
	for i := 1; i < len(all); i++ {
		if !all[i].Time.After(all[i-1].Time) {
			t.Fatalf("entries out of order at %d", i)
		}
	}
	if all[len(all)-1].Log != "line 199" {
		t.Fatalf("last = %+v", all[len(all)-1])
	}
	// The last 20 lines must span at least two files for this to test anything.
	cur := readAllFile(t, path)
	if cur >= 20 || len(all) <= 20 {
		t.Fatalf("current file holds %d of %d entries; adjust the tail", cur, len(all))
	}
	tail := readAll(t, path, ReadOptions{Tail: 20})
	if len(tail) != 20 || tail[0].Log != "line 180" || tail[19].Log != "line 199" {
		t.Fatalf("tail = %d entries, first %+v", len(tail), tail[0])
	}
	since := readAll(t, path, ReadOptions{Since: all[len(all)-3].Time})
	if len(since) != 3 {
		t.Fatalf("since returned %d entries, want 3", len(since))
	}
}

func readAllFile(t *testing.T, path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(b), "\n")
}

func TestFollowAcrossRotationUntilDone(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	w, err := Open(path, 512, 2)
	if err != nil {
		t.Fatal(err)
	}
	var done atomic.Bool
	seen := make(chan string, 1000)
	result := make(chan error, 1)
	go func() {
		result <- Read(context.Background(), path, ReadOptions{Follow: true, Done: done.Load, Poll: time.Millisecond},
			func(e Entry) error { seen <- e.Log; return nil })
	}()
	// A follower misses a file only when two rotations happen within one poll; the writer
	// here waits for each record to be seen, so every rotation is crossed by the follower.
	clock := fixedClock()
	var got []string
	for i := 0; i < 100; i++ {
		want := fmt.Sprint(i)
		if err := w.Write(Entry{Time: clock(), Stream: "stdout", Log: want}); err != nil {
			t.Fatal(err)
		}
		for len(got) == 0 || got[len(got)-1] != want {
			select {
			case l := <-seen:
				got = append(got, l)
			case <-time.After(10 * time.Second):
				t.Fatalf("follower did not see record %d; saw %v", i, got)
			}
		}
	}
	w.Close()
	done.Store(true)
	if err := <-result; err != nil {
		t.Fatal(err)
	}
	close(seen)
	for l := range seen {
		got = append(got, l)
	}
	if len(got) != 100 {
		t.Fatalf("follower saw %d records, want 100: %v", len(got), got)
	}
	for i, l := range got {
		if l != fmt.Sprint(i) {
			t.Fatalf("record %d is %q", i, l)
		}
	}
}

// TestRecordLikeEncodingJSON: records are what encoding/json writes for an Entry (readers use
// encoding/json), and writing one allocates nothing once the buffer has grown.
func TestRecordLikeEncodingJSON(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	for _, e := range []Entry{
		{Time: at, Stream: "stdout", Log: "hello"},
		{Time: at, Stream: "stderr", Log: "<b>\"q\"\\ \t\x01 \xff é", Partial: true},
		{Time: at, Stream: "stdout"},
	} {
		want, _ := json.Marshal(e)
		got := appendEntry(nil, e.Time, e.Stream, []byte(e.Log), e.Partial)
		if string(got) != string(want)+"\n" {
			t.Errorf("record:\n got %s\nwant %s", got, want)
		}
	}
	buf := make([]byte, 0, 512)
	line := []byte("a line of output")
	if n := testing.AllocsPerRun(100, func() { buf = appendEntry(buf[:0], at, "stdout", line, false) }); n != 0 {
		t.Errorf("appendEntry allocates %v times per record", n)
	}
}
