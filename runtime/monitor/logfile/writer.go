// Package logfile owns a container's log files: one JSON object per line ({"time", "stream",
// "log", "partial"}), size-rotated into path.1 ... path.N-1, and the reader that returns entries
// in order across the rotated files, optionally following new output. It knows nothing about
// containers or monitors: whoever follows a log says, through ReadOptions.Done, when the writer
// is finished for good.
package logfile

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/stackrun/stack/internal/minijson"
)

// Defaults used when a container's logging options do not say otherwise: 10 MiB per file and
// three files (the current one plus two rotated), so one container keeps at most 30 MiB of log.
const (
	DefaultMaxSize  int64 = 10 << 20
	DefaultMaxFiles       = 3
	// MaxLine is the longest chunk written as one record; a longer line is split into records
	// marked partial, so one runaway line cannot hold the monitor's memory hostage.
	MaxLine = 16 << 10
)

// Entry is one record of a log file.
type Entry struct {
	Time   time.Time `json:"time"`
	Stream string    `json:"stream"`
	// Log is the line without its trailing newline.
	Log string `json:"log"`
	// Partial is set when the line continues in the next record of the same stream (a line
	// longer than MaxLine, or output that ended without a newline).
	Partial bool `json:"partial,omitempty"`
}

// Writer appends entries to a log file and rotates it by size. It is safe for concurrent use
// by one goroutine per stream.
type Writer struct {
	mu       sync.Mutex
	path     string
	maxSize  int64
	maxFiles int
	f        *os.File
	size     int64
	closed   bool
}

// Open opens (appending) or creates the log file at path. maxSize <= 0 and maxFiles <= 0 take
// the defaults; maxFiles 1 means the file is truncated instead of rotated.
func Open(path string, maxSize int64, maxFiles int) (*Writer, error) {
	if maxSize <= 0 {
		maxSize = DefaultMaxSize
	}
	if maxFiles <= 0 {
		maxFiles = DefaultMaxFiles
	}
	w := &Writer{path: path, maxSize: maxSize, maxFiles: maxFiles}
	if err := w.open(); err != nil {
		return nil, err
	}
	return w, nil
}

func (w *Writer) open() error {
	f, err := os.OpenFile(w.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("open log file: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("open log file: %w", err)
	}
	w.f, w.size = f, fi.Size()
	return nil
}

// Write appends one record. The record is written with a single write call, so a reader sees
// whole records except at the very end of the file.
func (w *Writer) Write(e Entry) error {
	return w.writeRecord(appendEntry(nil, e.Time, e.Stream, []byte(e.Log), e.Partial))
}

// appendEntry appends the record of one entry, as encoding/json writes an Entry, and a newline.
func appendEntry(b []byte, t time.Time, stream string, log []byte, partial bool) []byte {
	e := minijson.Enc{B: b}
	e.Open()
	e.Key("time")
	e.Time(t)
	e.Key("stream")
	e.String(stream)
	e.Key("log")
	e.Bytes(log)
	e.BoolOmit("partial", partial)
	e.Close()
	return append(e.B, '\n')
}

// writeRecord appends one encoded record (with its newline) in one write call.
func (w *Writer) writeRecord(b []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return errors.New("write log record: writer closed")
	}
	if w.f == nil { // a rotation failed half-way: try again with a fresh file
		if err := w.open(); err != nil {
			return err
		}
	}
	if w.size > 0 && w.size+int64(len(b)) > w.maxSize {
		if err := w.rotate(); err != nil {
			return err
		}
	}
	n, err := w.f.Write(b)
	w.size += int64(n)
	if err != nil {
		return fmt.Errorf("write log record to %s: %w", w.path, err)
	}
	return nil
}

// rotate shifts path.i to path.i+1 (dropping the oldest) and starts an empty path. Readers
// that hold the old file open keep reading it to its end and then reopen path.
func (w *Writer) rotate() error {
	if err := w.f.Close(); err != nil {
		return fmt.Errorf("rotate %s: %w", w.path, err)
	}
	w.f = nil
	if w.maxFiles == 1 {
		if err := os.Remove(w.path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("rotate %s: %w", w.path, err)
		}
	}
	for i := w.maxFiles - 1; i >= 1; i-- {
		from := rotatedName(w.path, i-1)
		if err := os.Rename(from, rotatedName(w.path, i)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("rotate %s: %w", w.path, err)
		}
	}
	return w.open()
}

// Close closes the current file.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.closed = true
	if w.f == nil {
		return nil
	}
	err := w.f.Close()
	w.f = nil
	return err
}

func rotatedName(path string, i int) string {
	if i == 0 {
		return path
	}
	return path + "." + strconv.Itoa(i)
}

// Copy reads r until EOF and writes one record per line, stamped with now() when the line was
// read. Lines longer than MaxLine, and a last line without a newline, become partial records.
// A failed write (disk full) drops that record but Copy keeps reading, so the writing process
// never blocks on a full pipe; the first write error is returned at the end.
//
// It allocates nothing per line: a monitor whose container only writes output never needs
// a garbage collection, whose metadata would stay resident for the monitor's whole life.
func Copy(w *Writer, stream string, r io.Reader, now func() time.Time) (werr error) {
	br := bufio.NewReaderSize(r, MaxLine)
	var rec []byte
	for {
		line, err := br.ReadSlice('\n')
		if len(line) > 0 {
			partial := line[len(line)-1] != '\n'
			if !partial {
				line = line[:len(line)-1]
			}
			rec = appendEntry(rec[:0], now().UTC(), stream, line, partial)
			if err := w.writeRecord(rec); err != nil && werr == nil {
				werr = err
			}
		}
		switch {
		case err == nil, errors.Is(err, bufio.ErrBufferFull):
		case errors.Is(err, io.EOF):
			return werr
		default:
			return errors.Join(fmt.Errorf("read %s: %w", stream, err), werr)
		}
	}
}
