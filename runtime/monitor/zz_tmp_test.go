package monitor

import (
	"context"
	"testing"
	"time"
)

func TestTmpStopGrace(t *testing.T) {
	f := newFixture(t, `while true; do sleep 1; done`)
	f.cfg.StopTimeout = 100 * time.Millisecond
	f.cfg.Executable = "/tmp/stack-mon-bench"
	h := f.launch(f.cfg)
	time.Sleep(time.Second)
	t.Logf("alive: %v", processAlive(h.Pid, 0))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := Stop(ctx, f.cfg.StateDir, f.cfg.RunDir, 0, 0); err != nil {
		t.Fatal(err)
	}
	st, _ := Inspect(f.cfg.StateDir, f.cfg.RunDir)
	t.Logf("%+v", st)
}
