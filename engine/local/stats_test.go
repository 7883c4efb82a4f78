package local

import "testing"

func TestParseCounters(t *testing.T) {
	netDev := `Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:     500       5    0    0    0     0          0         0      500       5    0    0    0     0       0          0
  eth0:    1200      10    0    0    0     0          0         0      800       7    0    0    0     0       0          0
  eth1:      34       1    0    0    0     0          0         0       66       1    0    0    0     0       0          0
`
	if rx, tx := parseNetDev([]byte(netDev)); rx != 1234 || tx != 866 {
		t.Errorf("net/dev: rx %d tx %d", rx, tx)
	}
	tests := []struct {
		name  string
		parse func([]byte) (uint64, uint64)
		in    string
		r, w  uint64
	}{
		{"proc io", parseProcIO, "rchar: 99\nwchar: 77\nread_bytes: 4096\nwrite_bytes: 8192\ncancelled_write_bytes: 0\n", 4096, 8192},
		{"io.stat", parseIOStat, "8:0 rbytes=100 wbytes=200 rios=1 wios=2 dbytes=0 dios=0\n8:16 rbytes=1 wbytes=2 rios=1 wios=1\n", 101, 202},
		{"blkio", parseBlkio, "8:0 Read 10\n8:0 Write 20\n8:0 Sync 30\n8:0 Total 30\n8:16 Read 1\n8:16 Write 2\nTotal 33\n", 11, 22},
		{"empty", parseBlkio, "", 0, 0},
	}
	for _, tc := range tests {
		if r, w := tc.parse([]byte(tc.in)); r != tc.r || w != tc.w {
			t.Errorf("%s: got %d/%d, want %d/%d", tc.name, r, w, tc.r, tc.w)
		}
	}
}

func TestStatFields(t *testing.T) {
	stat := "42 (a (weird) name) S 1 42 42 0 -1 4194560 100 0 0 0 250 150 0 0 20 0 1 0 12345 1000000 300 18446744073709551615"
	f, comm, err := statFields([]byte(stat))
	if err != nil {
		t.Fatal(err)
	}
	if comm != "a (weird) name" || f[0] != "S" || f[1] != "1" || f[11] != "250" || f[12] != "150" || f[21] != "300" {
		t.Errorf("fields %q comm %q", f, comm)
	}
	if _, _, err := statFields([]byte("42 noparen S")); err == nil {
		t.Error("no error for a malformed stat")
	}
	for secs, want := range map[uint64]string{0: "00:00", 4: "00:04", 125: "02:05", 3725: "1:02:05"} {
		if got := cpuTime(secs); got != want {
			t.Errorf("cpuTime(%d) = %s, want %s", secs, got, want)
		}
	}
}
