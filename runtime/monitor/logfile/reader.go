package logfile

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ReadOptions select what Read returns.
type ReadOptions struct {
	// Tail, when > 0, returns only the last Tail entries that exist when Read starts (across
	// all rotated files); 0 or less returns all of them.
	Tail int
	// Since drops entries stamped before it (zero: keep all).
	Since time.Time
	// Follow keeps reading new entries after the existing ones, across rotation, until Done
	// reports true or ctx ends.
	Follow bool
	// Done is polled while following at the end of the file. Once it reports true the reader
	// drains what is left and returns: the writer promises to have written everything before
	// Done can turn true. A nil Done follows until ctx ends.
	Done func() bool
	// Poll is how often a follower looks for new output; 0 means 100 ms.
	Poll time.Duration
}

// Files lists the log files of path that exist, oldest first (path.N ... path.1, path).
func Files(path string) ([]string, error) {
	matches, err := filepath.Glob(globEscape(path) + ".*")
	if err != nil {
		return nil, fmt.Errorf("list log files of %s: %w", path, err)
	}
	type numbered struct {
		n    int
		name string
	}
	var rotated []numbered
	for _, m := range matches {
		n, err := strconv.Atoi(strings.TrimPrefix(m, path+"."))
		if err != nil || n < 1 {
			continue
		}
		rotated = append(rotated, numbered{n, m})
	}
	sort.Slice(rotated, func(i, j int) bool { return rotated[i].n > rotated[j].n })
	out := make([]string, 0, len(rotated)+1)
	for _, r := range rotated {
		out = append(out, r.name)
	}
	if _, err := os.Stat(path); err == nil {
		out = append(out, path)
	}
	return out, nil
}

func globEscape(s string) string {
	r := strings.NewReplacer(`*`, `\*`, `?`, `\?`, `[`, `\[`, `\`, `\\`)
	return r.Replace(s)
}

// Read calls emit for each selected entry of the log at path, in the order written. It returns
// nil at the end (or, when following, once Done reports true and the rest is drained), ctx's
// error when ctx ends first, or emit's error.
//
// A follower that falls behind by more than one whole rotation between two polls misses the
// file that was rotated away in between; with the default sizes that takes megabytes of output
// within one poll interval.
func Read(ctx context.Context, path string, opts ReadOptions, emit func(Entry) error) error {
	// Open the current file before reading the rotated ones: if the writer rotates meanwhile,
	// this makes the reader see some records twice rather than miss any.
	cur, err := os.Open(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("open log %s: %w", path, err)
	}
	files, err := Files(path)
	if err != nil {
		if cur != nil {
			cur.Close()
		}
		return err
	}
	var ring []Entry
	keep := func(e Entry) error {
		if !opts.Since.IsZero() && e.Time.Before(opts.Since) {
			return nil
		}
		if opts.Tail <= 0 {
			return emit(e)
		}
		if len(ring) == opts.Tail {
			copy(ring, ring[1:])
			ring = ring[:len(ring)-1]
		}
		ring = append(ring, e)
		return nil
	}
	for _, name := range files {
		if name == path {
			continue
		}
		if err := readFile(name, keep); err != nil {
			if cur != nil {
				cur.Close()
			}
			return err
		}
	}
	f := &follower{path: path, f: cur}
	if cur != nil {
		f.r = bufio.NewReader(cur)
	}
	defer f.close()
	if err := f.drain(keep); err != nil {
		return err
	}
	for _, e := range ring {
		if err := emit(e); err != nil {
			return err
		}
	}
	if !opts.Follow {
		return nil
	}
	since := func(e Entry) error {
		if !opts.Since.IsZero() && e.Time.Before(opts.Since) {
			return nil
		}
		return emit(e)
	}
	poll := opts.Poll
	if poll <= 0 {
		poll = 100 * time.Millisecond
	}
	tick := time.NewTicker(poll)
	defer tick.Stop()
	finishing := false
	for {
		if err := f.drain(since); err != nil {
			return err
		}
		switched, err := f.reopenIfRotated()
		if err != nil {
			return err
		}
		if switched {
			continue
		}
		if finishing {
			return nil
		}
		// Done turning true means everything was written before; one more drain (the loop
		// above) picks up what arrived between our last read and the check.
		if opts.Done != nil && opts.Done() {
			finishing = true
			continue
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

func readFile(name string, emit func(Entry) error) error {
	fh, err := os.Open(name)
	if errors.Is(err, os.ErrNotExist) {
		return nil // rotated away meanwhile
	}
	if err != nil {
		return fmt.Errorf("open log %s: %w", name, err)
	}
	defer fh.Close()
	f := &follower{path: name, f: fh, r: bufio.NewReader(fh)}
	return f.drain(emit)
}

// follower reads one log file, keeping an incomplete last line until the rest arrives.
type follower struct {
	path    string
	f       *os.File
	r       *bufio.Reader
	pending []byte
}

func (f *follower) drain(emit func(Entry) error) error {
	if f.f == nil {
		return nil
	}
	for {
		chunk, err := f.r.ReadBytes('\n')
		if len(chunk) > 0 {
			if chunk[len(chunk)-1] != '\n' {
				f.pending = append(f.pending, chunk...)
			} else {
				line := chunk
				if len(f.pending) > 0 {
					line = append(f.pending, chunk...)
					f.pending = nil
				}
				var e Entry
				if jerr := json.Unmarshal(line, &e); jerr != nil {
					return fmt.Errorf("read log %s: bad record: %w", f.path, jerr)
				}
				if eerr := emit(e); eerr != nil {
					return eerr
				}
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read log %s: %w", f.path, err)
		}
	}
}

// reopenIfRotated switches to the file now at path when it is not the one being read (the
// caller has drained the old one to its end).
func (f *follower) reopenIfRotated() (bool, error) {
	st, err := os.Stat(f.path)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("stat log %s: %w", f.path, err)
	}
	if f.f != nil {
		cur, err := f.f.Stat()
		if err != nil {
			return false, fmt.Errorf("stat log %s: %w", f.path, err)
		}
		if sameFile(st, cur) {
			return false, nil
		}
	}
	nf, err := os.Open(f.path)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("open log %s: %w", f.path, err)
	}
	f.close()
	f.f, f.r, f.pending = nf, bufio.NewReader(nf), nil
	return true, nil
}

func sameFile(a, b os.FileInfo) bool {
	sa, ok1 := a.Sys().(*syscall.Stat_t)
	sb, ok2 := b.Sys().(*syscall.Stat_t)
	if !ok1 || !ok2 {
		return os.SameFile(a, b)
	}
	return sa.Dev == sb.Dev && sa.Ino == sb.Ino
}

func (f *follower) close() {
	if f.f != nil {
		f.f.Close()
		f.f = nil
	}
}
