package monitor

import "testing"

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
