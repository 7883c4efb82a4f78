package e2e

import (
	"context"
	"testing"
	"time"
)

// TestStopAfterFailingProbes: a healthcheck whose command does not exist in the image fails
// every probe; the processes those failed probes leave in the container's pid namespace must
// not keep the container from stopping (its init cannot finish exiting while any of them is
// an unreaped zombie).
func TestStopAfterFailingProbes(t *testing.T) {
	e := newEnv(t)
	e.exampleImage()
	f := e.stackFile(`
services:
  app:
    image: stack-example:latest
    command: ["sleep", "3600"]
    healthcheck:
      test: ["CMD", "/no/such/probe"]
      interval: 1s
      timeout: 2s
      retries: 2
`)
	e.must(append(f, "up", "-d")...)
	deadline := time.Now().Add(30 * time.Second)
	for {
		var ci []struct {
			State struct {
				Health *struct {
					Status        string `json:"status"`
					FailingStreak int    `json:"failing_streak"`
				} `json:"health"`
			} `json:"state"`
		}
		e.decode(&ci, append(f, "inspect", "app")...)
		if h := ci[0].State.Health; h != nil && h.Status == "unhealthy" && h.FailingStreak >= 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("never unhealthy: %+v", ci)
		}
		time.Sleep(300 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := e.command(ctx, append(f, "stop", "-t", "2", "app")...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("stop after failing probes: %v (hung: %v)\n%s", err, ctx.Err() != nil, out)
	}
}
