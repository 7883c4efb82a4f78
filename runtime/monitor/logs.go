package monitor

import (
	"context"
	"strings"
	"time"

	"github.com/stackrun/stack/runtime/monitor/logfile"
)

// LogOptions select what ReadLogs returns.
type LogOptions struct {
	// Tail > 0 returns only the last Tail lines existing at the start (across rotated files).
	Tail int
	// Since drops lines stamped before it.
	Since time.Time
	// Follow keeps returning new lines, across rotation and restarts, until the record under
	// StateDir says the container is finally down (exited with no restart to come, or stopped),
	// or ctx ends.
	Follow bool
	// StateDir and RunDir locate the record Follow watches.
	StateDir, RunDir string
	// Done, when set, replaces the record check: following ends once it reports true.
	Done func() bool
}

// ReadLogs calls emit with the lines of the container log at path, in order. Each Entry has
// its time stamp and stream; whether to print the stamp is the caller's choice.
func ReadLogs(ctx context.Context, path string, opts LogOptions, emit func(logfile.Entry) error) error {
	ro := logfile.ReadOptions{Tail: opts.Tail, Since: opts.Since, Follow: opts.Follow}
	if opts.Follow && opts.Done != nil {
		ro.Done = opts.Done
	} else if opts.Follow {
		ro.Done = func() bool {
			s, err := Inspect(opts.StateDir, opts.RunDir)
			return err == nil && s.State.Final()
		}
	}
	return logfile.Read(ctx, path, ro, emit)
}

// FormatLine renders an entry as `stack logs` prints it: the line, preceded by its RFC 3339
// time stamp (nanoseconds, UTC) when timestamps is set, without a trailing newline for a
// partial record.
func FormatLine(e logfile.Entry, timestamps bool) string {
	var b strings.Builder
	if timestamps {
		b.WriteString(e.Time.UTC().Format(time.RFC3339Nano))
		b.WriteByte(' ')
	}
	b.WriteString(e.Log)
	if !e.Partial {
		b.WriteByte('\n')
	}
	return b.String()
}
