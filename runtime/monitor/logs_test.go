package monitor

import (
	"testing"
	"time"

	"github.com/stackrun/stack/runtime/monitor/logfile"
)

func TestFormatLine(t *testing.T) {
	ts := time.Date(2026, 11, 23, 13, 4, 5, 123456789, time.UTC)
	tests := []struct {
		e          logfile.Entry
		timestamps bool
		want       string
	}{
		{logfile.Entry{Time: ts, Log: "hello"}, false, "hello\n"},
		{logfile.Entry{Time: ts, Log: "hello"}, true, "2026-11-23T13:04:05.123456789Z hello\n"},
		{logfile.Entry{Time: ts, Log: "par", Partial: true}, false, "par"},
	}
	for _, tc := range tests {
		if got := FormatLine(tc.e, tc.timestamps); got != tc.want {
			t.Errorf("FormatLine(%+v, %v) = %q, want %q", tc.e, tc.timestamps, got, tc.want)
		}
	}
}
