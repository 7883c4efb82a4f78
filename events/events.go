// Package events owns the event journal: an append-only file of JSON lines under the state
// root to which commands and monitors append what happened to containers (create, start, die,
// oom, health_status, restart, destroy), and from which `stack events` reads and follows.
//
// Each event is one line written with a single write(2) on a file opened with O_APPEND, so
// lines of concurrent writers (one monitor per container, several commands) never interleave
// or overwrite each other. The journal is rotated once past MaxSize: the current file becomes
// journal.1.jsonl (replacing an older one) under a lock, and readers read both.
//
// The package knows nothing of containers beyond the fields of Event; it does no other I/O.
package events

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/stackrun/stack/internal/minijson"
	"github.com/stackrun/stack/state"
)

// Event types.
const (
	Create       = "create"
	Start        = "start"
	Die          = "die"
	OOM          = "oom"
	HealthStatus = "health_status"
	Restart      = "restart"
	Destroy      = "destroy"
)

// Event is one line of the journal (version 1).
type Event struct {
	Time    time.Time `json:"time"`
	Type    string    `json:"type"`
	ID      string    `json:"id"` // container id
	Name    string    `json:"name,omitempty"`
	Project string    `json:"project,omitempty"`
	Service string    `json:"service,omitempty"`
	// ExitCode is set on die: the exit code, 128+signal when killed, -1 when unknown.
	ExitCode *int `json:"exit_code,omitempty"`
	Signal   int  `json:"signal,omitempty"` // on die, when a signal ended the process
	// Health is set on health_status: healthy or unhealthy.
	Health string `json:"health,omitempty"`
}

// Dir is the journal's directory under a state root; Path the journal itself.
func Dir(root string) string  { return filepath.Join(root, "events") }
func Path(root string) string { return filepath.Join(Dir(root), "journal.jsonl") }

// MaxSize is the size past which Append rotates the journal.
const MaxSize = 8 << 20

func rotated(path string) string { return path[:len(path)-len(".jsonl")] + ".1.jsonl" }

// Append adds evs to the journal at path, one line each, creating it (and its directory) if
// needed. Events without a time get the current time.
func Append(path string, evs ...Event) error {
	if len(evs) == 0 {
		return nil
	}
	var buf bytes.Buffer
	for _, ev := range evs {
		if ev.Time.IsZero() {
			ev.Time = time.Now()
		}
		ev.Time = ev.Time.UTC()
		buf.Write(appendEvent(nil, &ev))
	}
	if err := os.MkdirAll(filepath.Dir(path), state.DirMode); err != nil {
		return err
	}
	if st, err := os.Stat(path); err == nil && st.Size() > MaxSize {
		if err := rotate(path); err != nil {
			return err
		}
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE|unix.O_CLOEXEC, state.FileMode)
	if err != nil {
		return fmt.Errorf("append to event journal: %w", err)
	}
	// One write: with O_APPEND the kernel places it at the end atomically.
	_, err = f.Write(buf.Bytes())
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("append to event journal %s: %w", path, err)
	}
	return nil
}

// appendEvent appends ev's line as encoding/json writes an Event, with its newline, without
// encoding/json: monitors append events and link no encoding/json (see internal/minijson).
func appendEvent(b []byte, ev *Event) []byte {
	e := minijson.Enc{B: b}
	e.Open()
	e.Key("time")
	e.Time(ev.Time)
	e.Key("type")
	e.String(ev.Type)
	e.Key("id")
	e.String(ev.ID)
	e.StringOmit("name", ev.Name)
	e.StringOmit("project", ev.Project)
	e.StringOmit("service", ev.Service)
	if ev.ExitCode != nil {
		e.Key("exit_code")
		e.Int(int64(*ev.ExitCode))
	}
	e.IntOmit("signal", int64(ev.Signal))
	e.StringOmit("health", ev.Health)
	e.Close()
	return append(e.B, '\n')
}

// rotate renames the journal to its .1 name once, under a lock, so two writers that both saw
// it too big do not rotate twice (which would lose the first rotation).
func rotate(path string) error {
	l, err := state.WaitLock(path + ".lock")
	if err != nil {
		return fmt.Errorf("rotate event journal: %w", err)
	}
	defer l.Unlock()
	if st, err := os.Stat(path); err != nil || st.Size() <= MaxSize {
		return nil // another writer rotated it
	}
	if err := os.Rename(path, rotated(path)); err != nil {
		return fmt.Errorf("rotate event journal: %w", err)
	}
	return nil
}

// Read returns the events of the journal at path (the rotated part first) at or after since
// (zero: all) and before until (zero: no bound), in journal order. A missing journal has no
// events. Lines that do not parse (a torn last line after a crash) are skipped.
func Read(path string, since, until time.Time) ([]Event, error) {
	var out []Event
	for _, p := range []string{rotated(path), path} {
		f, err := os.Open(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read event journal: %w", err)
		}
		_, err = scan(f, func(ev Event) {
			if inRange(ev, since, until) {
				out = append(out, ev)
			}
		})
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("read event journal %s: %w", p, err)
		}
	}
	return out, nil
}

func inRange(ev Event, since, until time.Time) bool {
	return (since.IsZero() || !ev.Time.Before(since)) && (until.IsZero() || ev.Time.Before(until))
}

// scan calls fn for each complete line of r and returns the bytes consumed (complete lines).
func scan(r io.Reader, fn func(Event)) (int64, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	var n int64
	for {
		line, err := br.ReadBytes('\n')
		if len(line) > 0 && line[len(line)-1] == '\n' {
			n += int64(len(line))
			var ev Event
			if json.Unmarshal(line, &ev) == nil {
				fn(ev)
			}
		}
		if errors.Is(err, io.EOF) {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

// Follow calls fn with every event of the journal at or after since, then with each event
// appended later, polling every poll (0: 200ms), until ctx is done or an event at or after
// until (when set) is seen. A rotation while following is noticed by the file's identity
// changing; the rest of the old file is read before the new one.
func Follow(ctx context.Context, path string, since, until time.Time, poll time.Duration, fn func(Event)) error {
	if poll <= 0 {
		poll = 200 * time.Millisecond
	}
	done := false
	emit := func(ev Event) {
		if done || !inRange(ev, since, time.Time{}) {
			return
		}
		if !until.IsZero() && !ev.Time.Before(until) {
			done = true
			return
		}
		fn(ev)
	}
	for _, ev := range mustRead(rotated(path)) {
		emit(ev)
	}
	// Read the current file from its start, remembering where complete lines end and which
	// file it was, then poll for growth.
	var offset int64
	var ino uint64
	if f, err := os.Open(path); err == nil {
		if st, err := f.Stat(); err == nil {
			ino = inode(st)
		}
		offset, err = scan(f, emit)
		f.Close()
		if err != nil {
			return fmt.Errorf("read event journal %s: %w", path, err)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("read event journal: %w", err)
	}
	for !done {
		if !until.IsZero() && !time.Now().Before(until) {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(poll):
		}
		st, err := os.Stat(path)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		if inode(st) != ino {
			// Rotated: finish the old file (now the .1), then start the new one from 0.
			if old, err := os.Open(rotated(path)); err == nil {
				if ost, err := old.Stat(); err == nil && inode(ost) == ino {
					old.Seek(offset, io.SeekStart)
					scan(old, emit)
				}
				old.Close()
			}
			offset, ino = 0, inode(st)
		}
		if st.Size() <= offset {
			continue
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		f.Seek(offset, io.SeekStart)
		n, err := scan(f, emit)
		f.Close()
		offset += n
		if err != nil {
			return err
		}
	}
	return nil
}

// mustRead reads the events of one journal file; an unreadable file has none (Follow reads the
// rotated part only for history).
func mustRead(p string) []Event {
	var out []Event
	if f, err := os.Open(p); err == nil {
		scan(f, func(ev Event) { out = append(out, ev) })
		f.Close()
	}
	return out
}

func inode(fi os.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Ino
	}
	return 0
}
