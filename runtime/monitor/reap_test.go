package monitor

import "testing"

func TestZombieInChildNS(t *testing.T) {
	tests := []struct {
		status string
		want   bool
	}{
		{"Name:\texe\nState:\tZ (zombie)\nNSpid:\t27962\t12\n", true},
		{"Name:\tsleep\nState:\tZ (zombie)\nNSpid:\t27888\t1\n", false},  // the container's init
		{"Name:\tstack\nState:\tZ (zombie)\nNSpid:\t30000\n", false},     // a helper in our namespace
		{"Name:\texe\nState:\tS (sleeping)\nNSpid:\t27962\t12\n", false}, // alive
		{"Name:\texe\nState:\tZ (zombie)\nNSpid:\t27962\t40\t3\n", true}, // two levels down
	}
	for _, tc := range tests {
		if got := zombieInChildNS(tc.status); got != tc.want {
			t.Errorf("%q: got %v", tc.status, got)
		}
	}
}
