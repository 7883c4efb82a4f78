package volumes

import (
	"github.com/stackrun/stack/spec/compose"

	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stackrun/stack/spec"
)

// The stack file, through spec.Load and compose-go, into Plan: checks the glue (which syntax
// creates a missing bind source, how volumes are named) against what the loader really produces.
const loadTestFile = `
services:
  db:
    image: busybox
    volumes:
      - data:/var/lib/db
      - ./conf:/etc/db:ro
      - type: bind
        source: ./strict
        target: /strict
      - type: bind
        source: ./created
        target: /created
        bind:
          propagation: rslave
      - type: volume
        source: cache
        target: /cache
        volume:
          nocopy: true
      - /anon
    tmpfs:
      - /run:exec,size=1m,mode=755
volumes:
  data: {}
  cache:
    name: shared-cache
  ext:
    external: true
`

func loadPlan(t *testing.T, project string) []Planned {
	t.Helper()
	dir := t.TempDir()
	file := filepath.Join(dir, "stack.yaml")
	if err := os.WriteFile(file, []byte(loadTestFile), 0o600); err != nil {
		t.Fatal(err)
	}
	st, err := spec.Load(context.Background(), spec.Options{Files: []string{file}, ProjectName: project, Environ: []string{}, Loader: compose.Load})
	if err != nil {
		t.Fatal(err)
	}
	plan, err := PlanService(st, st.Services["db"], PlanOptions{Container: project + "-db-1", StateRoot: "/var/lib/stack", HomeDir: "/root"})
	if err != nil {
		t.Fatal(err)
	}
	// Make the planned sources independent of the temp dir, for comparison.
	for i := range plan {
		plan[i].Mount.Source = strings.TrimPrefix(plan[i].Mount.Source, st.WorkingDir)
		if plan[i].Confine == st.WorkingDir {
			plan[i].Confine = "<project dir>"
		}
	}
	return plan
}

func TestPlanFromStackFile(t *testing.T) {
	plan := loadPlan(t, "shop")
	got := map[string]string{}
	for _, p := range plan {
		line := string(p.Type) + " " + p.Mount.Source + " " + strings.Join(p.Mount.Options, ",")
		if p.CreateSource {
			line += " create"
		}
		if p.NoCopy {
			line += " nocopy"
		}
		if p.Confine == "<project dir>" {
			line += " confined"
		}
		got[p.Mount.Destination] = line
	}
	anon := AnonymousName("shop", "shop-db-1", "/anon")
	want := map[string]string{
		"/var/lib/db": "volume /var/lib/stack/volumes/shop_data/_data rbind,rprivate",
		"/etc/db":     "bind /conf rbind,rprivate,ro create confined", // short syntax creates, as Compose
		"/strict":     "bind /strict rbind,rprivate confined",         // long syntax without bind: does not
		"/created":    "bind /created rbind,rslave create confined",   // compose-go defaults create_host_path under bind:
		"/cache":      "volume /var/lib/stack/volumes/shared-cache/_data rbind,rprivate nocopy",
		"/anon":       "volume /var/lib/stack/volumes/" + anon + "/_data rbind,rprivate",
		"/run":        "tmpfs tmpfs nosuid,nodev,exec,size=1048576,mode=755",
	}
	for dest, w := range want {
		if got[dest] != w {
			t.Errorf("%s: got %q, want %q", dest, got[dest], w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("planned %d mounts, want %d: %v", len(got), len(want), got)
	}
}

func TestTwoStacksSameVolumeKey(t *testing.T) {
	a, b := loadPlan(t, "shop"), loadPlan(t, "blog")
	src := func(plan []Planned, dest string) string {
		for _, p := range plan {
			if p.Mount.Destination == dest {
				return p.Mount.Source
			}
		}
		return ""
	}
	if sa, sb := src(a, "/var/lib/db"), src(b, "/var/lib/db"); sa == sb || !strings.Contains(sa, "shop_data") || !strings.Contains(sb, "blog_data") {
		t.Errorf("volume data of two stacks: %s and %s, want shop_data and blog_data", sa, sb)
	}
	// name: is global on purpose: both stacks share it, as in Compose.
	if sa, sb := src(a, "/cache"), src(b, "/cache"); sa != sb {
		t.Errorf("explicitly named volume differs between stacks: %s, %s", sa, sb)
	}
}
