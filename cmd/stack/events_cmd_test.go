package main

import (
	"testing"
	"time"
)

func TestParseEventTime(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Time
		err  bool
	}{
		{"", time.Time{}, false},
		{"now", now, false},
		{"10m", now.Add(-10 * time.Minute), false},
		{"2026-03-01T11:00:00Z", now.Add(-time.Hour), false},
		{"1772362800", now.Add(-time.Hour), false},
		{"1772362800.5", now.Add(-time.Hour + 500*time.Millisecond), false},
		{"yesterday", time.Time{}, true},
	}
	for _, tc := range tests {
		got, err := parseEventTime(tc.in, now)
		if (err != nil) != tc.err || !got.Equal(tc.want) {
			t.Errorf("%q: got %v, %v; want %v (error %v)", tc.in, got, err, tc.want, tc.err)
		}
	}
}
