package e2e

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stackrun/stack/runtime"
)

// TestRunTerminal: with stdin on a terminal, run gives the one-off a terminal of its own
// joined to it, passes its exit code, mounts -v binds, and --rm leaves no container.
func TestRunTerminal(t *testing.T) {
	e := newEnv(t)
	e.exampleImage()
	f := e.stackFile(runStack)
	share := t.TempDir()
	os.WriteFile(filepath.Join(share, "x"), []byte("shared file\n"), 0o644)

	master, slave, err := runtime.OpenPty(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer master.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := e.command(ctx, append(f, "run", "--rm", "--no-deps", "-v", share+":/mnt:ro", "app",
		"sh", "-c", "[ -t 0 ] && [ -t 1 ] && echo tty-ok; cat /mnt/x; touch /mnt/y 2>/dev/null || echo read-only; exit 5")...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	slave.Close()
	var out bytes.Buffer
	done := make(chan struct{})
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := master.Read(buf)
			out.Write(buf[:n])
			if err != nil {
				close(done)
				return
			}
		}
	}()
	err = cmd.Wait()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
	}
	text := strings.ReplaceAll(out.String(), "\r\n", "\n")
	if code := exitCode(err); code != 5 || !strings.Contains(text, "tty-ok\nshared file\nread-only\n") {
		t.Fatalf("run on a terminal: exit %d\n%q", code, text)
	}
	if n := len(e.ps(f...).Containers); n != 0 {
		t.Errorf("run --rm on a terminal left %d containers", n)
	}
	if ents, _ := os.ReadDir(filepath.Join(e.root, "containers")); len(ents) != 0 {
		t.Errorf("run --rm on a terminal left %d container directories", len(ents))
	}
}
