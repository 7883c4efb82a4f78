package main

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/stackrun/stack/volumes"
)

func runStack(t *testing.T, stdin string, args ...string) (string, error) {
	t.Helper()
	app := newApp()
	var out bytes.Buffer
	app.Writer, app.ErrWriter, app.Reader = &out, &out, strings.NewReader(stdin)
	err := app.Run(append([]string{"stack"}, args...))
	return out.String(), err
}

func TestVolumeCommands(t *testing.T) {
	root := t.TempDir()
	if out, err := runStack(t, "", "--root", root, "volume", "create", "--label", "a=b", "mine"); err != nil || out != "mine\n" {
		t.Fatalf("create: %q, %v", out, err)
	}
	s, err := volumes.Open(root + "/volumes")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Ensure(context.Background(), volumes.Spec{Project: "shop", Key: "data"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Use("shop_data", "c1"); err != nil {
		t.Fatal(err)
	}
	if out, err := runStack(t, "", "--root", root, "volume", "ls", "-q"); err != nil || out != "mine\nshop_data\n" {
		t.Errorf("ls -q: %q, %v", out, err)
	}
	if out, err := runStack(t, "", "--root", root, "volume", "ls", "--project", "shop"); err != nil || !strings.Contains(out, "shop_data") || strings.Contains(out, "mine") {
		t.Errorf("ls --project shop: %q, %v", out, err)
	}
	out, err := runStack(t, "", "--root", root, "volume", "inspect", "mine")
	if err != nil || !strings.Contains(out, `"a": "b"`) {
		t.Errorf("inspect: %q, %v", out, err)
	}
	if _, err := runStack(t, "", "--root", root, "volume", "rm", "shop_data"); !errors.Is(err, volumes.ErrInUse) {
		t.Errorf("rm of a volume in use: %v, want ErrInUse", err)
	}
	if _, err := runStack(t, "n\n", "--root", root, "volume", "prune"); err == nil {
		t.Errorf("prune went ahead without confirmation")
	}
	if _, err := s.Ensure(context.Background(), volumes.Spec{Name: volumes.AnonymousName("shop", "shop-web-1", "/tmp"), Project: "shop", Anonymous: true}); err != nil {
		t.Fatal(err)
	}
	if out, err := runStack(t, "y\n", "--root", root, "volume", "prune"); err != nil || strings.Contains(out, "mine") || strings.Count(out, "\n") != 1 {
		t.Errorf("prune (anonymous only): %q, %v", out, err)
	}
	if out, err := runStack(t, "", "--root", root, "volume", "ls", "-q"); err != nil || out != "mine\nshop_data\n" {
		t.Errorf("after prune: %q, %v (named volumes must stay)", out, err)
	}
	if out, err := runStack(t, "y\n", "--root", root, "volume", "prune", "--all"); err != nil || !strings.HasSuffix(out, "mine\n") {
		t.Errorf("prune --all: %q, %v", out, err)
	}
	if out, err := runStack(t, "", "--root", root, "volume", "ls", "-q"); err != nil || out != "shop_data\n" {
		t.Errorf("after prune: %q, %v (the volume in use must stay)", out, err)
	}
	if out, err := runStack(t, "", "--root", root, "volume", "rm", "-f", "shop_data", "gone"); err != nil || out != "shop_data\ngone\n" {
		t.Errorf("rm -f: %q, %v", out, err)
	}
}
