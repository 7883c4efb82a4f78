package planner

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stackrun/stack/spec"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

const (
	digestA = "sha256:aaaa"
	digestB = "sha256:bbbb"
)

// hashOf stands in for spec's config hash in tests: a digest of the fields Diff compares.
func hashOf(s *spec.Service) string {
	c := *s
	c.Replicas, c.PullPolicy, c.Profiles, c.DependsOn, c.Build, c.Hash = 0, "", nil, nil, nil, ""
	b, err := json.Marshal(c)
	if err != nil {
		panic(err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

type svcOpt func(*spec.Service)

func svc(name string, opts ...svcOpt) *spec.Service {
	s := &spec.Service{
		Name:        name,
		Image:       "busybox:1",
		Command:     []string{"sleep", "1d"},
		Environment: map[string]string{"SERVICE": name},
		Networks:    map[string]*spec.ServiceNetwork{"default": nil},
		Restart:     spec.RestartPolicy{Name: "no"},
		Replicas:    1,
	}
	for _, o := range opts {
		o(s)
	}
	s.Hash = hashOf(s)
	return s
}

func env(k, v string) svcOpt  { return func(s *spec.Service) { s.Environment[k] = v } }
func image(ref string) svcOpt { return func(s *spec.Service) { s.Image = ref } }
func replicas(n int) svcOpt   { return func(s *spec.Service) { s.Replicas = n } }
func restart(p string) svcOpt {
	return func(s *spec.Service) { s.Restart = spec.RestartPolicy{Name: p} }
}
func port(pub, target uint16) svcOpt {
	return func(s *spec.Service) {
		s.Ports = append(s.Ports, spec.Port{Published: pub, Target: target, Protocol: "tcp"})
	}
}
func volume(src, target string) svcOpt {
	return func(s *spec.Service) {
		s.Mounts = append(s.Mounts, spec.Mount{Type: spec.MountVolume, Source: src, Target: target})
	}
}
func dependsOn(dep, cond string, restartDep bool) svcOpt {
	return func(s *spec.Service) {
		if s.DependsOn == nil {
			s.DependsOn = map[string]spec.Dependency{}
		}
		s.DependsOn[dep] = spec.Dependency{Condition: cond, Restart: restartDep, Required: true}
	}
}
func network(key string) svcOpt {
	return func(s *spec.Service) { s.Networks[key] = &spec.ServiceNetwork{Aliases: []string{s.Name + "-" + key}} }
}
func build() svcOpt {
	return func(s *spec.Service) { s.Build = &spec.Build{Context: "/src/" + s.Name, Dockerfile: "Dockerfile"} }
}
func containerName(n string) svcOpt { return func(s *spec.Service) { s.ContainerName = n } }

func stack(services ...*spec.Service) *spec.Stack {
	st := &spec.Stack{
		Name:     "demo",
		Services: map[string]*spec.Service{},
		Networks: map[string]*spec.Network{
			"default": {Key: "default", Name: "demo_default"},
			"back":    {Key: "back", Name: "demo_back"},
		},
		Volumes: map[string]*spec.Volume{
			"data": {Key: "data", Name: "demo_data"},
			"logs": {Key: "logs", Name: "demo_logs"},
		},
	}
	for _, s := range services {
		st.Services[s.Name] = s
	}
	return st
}

type ctrOpt func(*Container)

// ctr is an observed container created from s (as the engine would have recorded it).
func ctr(s *spec.Service, n int, opts ...ctrOpt) Container {
	c := Container{
		ID:          "c-" + s.Name + "-" + strconv.Itoa(n),
		Project:     "demo",
		Service:     s.Name,
		Number:      n,
		Hash:        s.Hash,
		Config:      s,
		ImageDigest: digestA,
		Status:      StatusRunning,
		Restart:     s.Restart,
	}
	for _, o := range opts {
		o(&c)
	}
	return c
}

func status(st ContainerStatus, code int) ctrOpt {
	return func(c *Container) { c.Status, c.ExitCode = st, code }
}
func id(s string) ctrOpt     { return func(c *Container) { c.ID = s } }
func digest(d string) ctrOpt { return func(c *Container) { c.ImageDigest = d } }
func project(p string) ctrOpt {
	return func(c *Container) { c.Project = p }
}

func observed(cs ...Container) Observed {
	o := Observed{
		Project:    "demo",
		Containers: cs,
		Networks:   []Network{{Key: "default", Name: "demo_default"}, {Key: "back", Name: "demo_back"}},
		Volumes:    []Volume{{Key: "data", Name: "demo_data"}},
		Images:     map[string]string{"busybox:1": digestA},
	}
	return o
}

func withImage(o Observed, ref, digest string) Observed {
	o.Images = maps.Clone(o.Images)
	o.Images[ref] = digest
	return o
}

func withoutNetworks(o Observed, keys ...string) Observed {
	var keep []Network
	for _, n := range o.Networks {
		if !strings.Contains(strings.Join(keys, ","), n.Key) {
			keep = append(keep, n)
		}
	}
	o.Networks = keep
	return o
}

type scenario struct {
	name     string
	desired  *spec.Stack
	observed Observed
	opts     Options
}

func scenarios() []scenario {
	web := svc("web", port(8080, 80), dependsOn("db", spec.ConditionHealthy, true))
	db := svc("db", volume("data", "/var/lib/db"))
	cache := svc("cache")
	webEnv := svc("web", port(8080, 80), dependsOn("db", spec.ConditionHealthy, true), env("DB_HOST", "db2"))
	dbEnv := svc("db", volume("data", "/var/lib/db"), env("DB_HOST", "db2"))

	// A chain for depends_on.restart: proxy -> web -> db (restart: true), worker -> db (restart: false).
	chainDB := svc("db")
	chainDB2 := svc("db", env("MODE", "new"))
	chainWeb := svc("web", dependsOn("db", spec.ConditionStarted, true))
	chainProxy := svc("proxy", dependsOn("web", spec.ConditionStarted, true))
	chainWorker := svc("worker", dependsOn("db", spec.ConditionStarted, false))

	old := svc("old", dependsOn("olddb", "", false))
	olddb := svc("olddb")

	exited := func(policy string, code int) scenario {
		s := svc("job", restart(policy))
		return scenario{
			name:     "exited_" + strings.ReplaceAll(policy, "-", "_") + "_code_" + strconv.Itoa(code),
			desired:  stack(s),
			observed: observed(ctr(s, 1, status(StatusExited, code))),
		}
	}
	emptyObs := Observed{Project: "demo"}
	built := svc("app", build(), image("demo-app"))    // build: without image: (spec names it demo-app)
	tagged := svc("tool", build(), image("busybox:1")) // build: with image:, a custom tag

	return []scenario{
		{name: "new_stack", desired: stack(web, db, cache), observed: emptyObs},
		{name: "new_stack_images_present", desired: stack(web, db, cache),
			observed: Observed{Project: "demo", Images: map[string]string{"busybox:1": digestA}}},
		{name: "noop", desired: stack(web, db, cache),
			observed: observed(ctr(web, 1), ctr(db, 1), ctr(cache, 1))},
		{name: "env_change", desired: stack(webEnv, db, cache),
			observed: observed(ctr(web, 1), ctr(db, 1), ctr(cache, 1))},
		{name: "image_digest_change", desired: stack(cache),
			observed: observed(ctr(cache, 1, digest(digestB)))},
		{name: "image_ref_change", desired: stack(svc("cache", image("busybox:2"))),
			observed: observed(ctr(cache, 1))},
		{name: "port_change", desired: stack(svc("web", port(8081, 80), dependsOn("db", spec.ConditionHealthy, true)), db),
			observed: observed(ctr(web, 1), ctr(db, 1))},
		{name: "volume_change", desired: stack(svc("db", volume("logs", "/var/lib/db"))),
			observed: observed(ctr(db, 1))},
		{name: "dependency_recreated_with_restart", desired: stack(web, dbEnv),
			observed: observed(ctr(web, 1), ctr(db, 1))},
		{name: "dependency_chain_restart", desired: stack(chainDB2, chainWeb, chainProxy, chainWorker),
			observed: observed(ctr(chainDB, 1), ctr(chainWeb, 1), ctr(chainProxy, 1), ctr(chainWorker, 1))},
		{name: "dependency_chain_no_recreate_upstream", desired: stack(chainDB, svc("web", dependsOn("db", spec.ConditionStarted, true), env("X", "1")), chainProxy),
			observed: observed(ctr(chainDB, 1), ctr(chainWeb, 1), ctr(chainProxy, 1))},
		{name: "scale_3_to_1", desired: stack(cache),
			observed: observed(ctr(cache, 1), ctr(cache, 2), ctr(cache, 3))},
		{name: "scale_1_to_3", desired: stack(cache), observed: observed(ctr(cache, 1)),
			opts: Options{Scale: map[string]int{"cache": 3}}},
		{name: "scale_replicas_to_0", desired: stack(svc("cache", replicas(0))),
			observed: observed(ctr(cache, 1), ctr(cache, 2))},
		{name: "scale_12_numeric_order", desired: stack(svc("cache", replicas(12))),
			observed: observed(ctr(cache, 1))},
		{name: "orphan_kept", desired: stack(cache),
			observed: observed(ctr(cache, 1), ctr(old, 1))},
		{name: "orphan_removed", desired: stack(cache),
			observed: observed(ctr(cache, 1), ctr(old, 1), ctr(olddb, 1)),
			opts:     Options{RemoveOrphans: true}},
		{name: "orphan_network_removed", desired: func() *spec.Stack {
			st := stack(cache)
			delete(st.Networks, "back")
			return st
		}(), observed: observed(ctr(cache, 1), ctr(old, 1, status(StatusExited, 0))), opts: Options{RemoveOrphans: true}},
		{name: "foreign_project_ignored", desired: stack(cache),
			observed: observed(ctr(cache, 1), ctr(svc("cache"), 1, project("other"), id("c-foreign")))},
		exited("no", 0),
		exited("no", 1),
		exited("always", 0),
		exited("always", 137),
		exited("on-failure", 0),
		exited("on-failure", 2),
		exited("unless-stopped", 0),
		{name: "missing_network", desired: stack(cache, svc("api", network("back"))),
			observed: withoutNetworks(observed(ctr(cache, 1), ctr(svc("api", network("back")), 1)), "back")},
		{name: "partial_previous_up", desired: stack(web, db, cache),
			observed: observed(ctr(db, 1, status(StatusCreated, 0)), ctr(web, 1, status(StatusCreated, 0)))},
		{name: "down", desired: stack(web, db, cache),
			observed: observed(ctr(web, 1), ctr(db, 1), ctr(cache, 1), ctr(cache, 2, status(StatusExited, 0))),
			opts:     Options{Down: true}},
		{name: "down_volumes", desired: stack(web, db),
			observed: observed(ctr(web, 1), ctr(db, 1)),
			opts:     Options{Down: true, RemoveVolumes: true}},
		{name: "down_without_stack_file", desired: nil,
			observed: observed(ctr(web, 1), ctr(db, 1), ctr(old, 1)),
			opts:     Options{Down: true}},
		{name: "down_keeps_orphans", desired: stack(cache),
			observed: observed(ctr(cache, 1), ctr(old, 1)),
			opts:     Options{Down: true}},
		{name: "down_nothing", desired: stack(cache), observed: Observed{Project: "demo"}, opts: Options{Down: true}},
		// --rmi: all takes busybox:1 and the built image; local only the image stack tagged
		// itself (build: without image:), from the file or, without it, from the records.
		{name: "down_rmi_all", desired: stack(cache, built, tagged),
			observed: withImage(observed(ctr(cache, 1), ctr(built, 1), ctr(tagged, 1)), "demo-app", digestB),
			opts:     Options{Down: true, RemoveImages: RemoveImagesAll}},
		{name: "down_rmi_local", desired: stack(cache, built, tagged),
			observed: withImage(observed(ctr(cache, 1), ctr(built, 1), ctr(tagged, 1)), "demo-app", digestB),
			opts:     Options{Down: true, RemoveImages: RemoveImagesLocal}},
		{name: "down_rmi_local_without_stack_file", desired: nil,
			observed: withImage(observed(ctr(cache, 1), ctr(built, 1), ctr(tagged, 1)), "demo-app", digestB),
			opts:     Options{Down: true, RemoveImages: RemoveImagesLocal}},
		{name: "force_recreate", desired: stack(web, db),
			observed: observed(ctr(web, 1), ctr(db, 1)),
			opts:     Options{ForceRecreate: true}},
		{name: "no_recreate", desired: stack(webEnv, db, cache),
			observed: observed(ctr(web, 1), ctr(db, 1), ctr(cache, 1, status(StatusCreated, 0))),
			opts:     Options{NoRecreate: true}},
		{name: "subset_with_deps", desired: stack(web, db, cache), observed: observed(),
			opts: Options{Services: []string{"web"}}},
		{name: "subset_no_deps", desired: stack(web, db, cache), observed: observed(),
			opts: Options{Services: []string{"web"}, NoDeps: true}},
		{name: "no_start", desired: stack(web, db), observed: observed(), opts: Options{NoStart: true}},
		{name: "unsupervised", desired: stack(cache), observed: observed(ctr(cache, 1, status(StatusUnsupervised, 0)))},
		{name: "missing_from_runtime", desired: stack(cache), observed: observed(ctr(cache, 1, status(StatusMissing, 0)))},
		{name: "duplicate_after_killed_recreate", desired: stack(cache),
			observed: observed(ctr(cache, 1, id("c-old"), status(StatusExited, 137), digest(digestB)), ctr(cache, 1, id("c-new")))},
		{name: "pull_always", desired: stack(cache), observed: observed(ctr(cache, 1)), opts: Options{Pull: PullAlways}},
		{name: "pull_always_dependency_chain", desired: stack(chainDB, chainWeb, chainProxy, chainWorker),
			observed: observed(ctr(chainDB, 1), ctr(chainWeb, 1, status(StatusExited, 1)), ctr(chainProxy, 1), ctr(chainWorker, 1)),
			opts:     Options{Pull: PullAlways, Services: []string{"proxy"}}},
		{name: "pull_never_missing", desired: stack(cache), observed: Observed{Project: "demo"}, opts: Options{Pull: PullNever}},
		{name: "build_missing", desired: stack(svc("app", build(), image("demo-app"))), observed: observed()},
		{name: "build_flag", desired: stack(svc("app", build(), image("demo-app"))),
			observed: func() Observed {
				app := svc("app", build(), image("demo-app"))
				o := observed(ctr(app, 1))
				o.Images["demo-app"] = digestA
				return o
			}(),
			opts: Options{Build: true}},
		{name: "conditions", desired: stack(
			svc("migrate", restart("no")),
			svc("db", func(s *spec.Service) { s.Healthcheck = &spec.Healthcheck{Test: []string{"CMD", "true"}} }),
			svc("app", dependsOn("db", spec.ConditionHealthy, false), dependsOn("migrate", spec.ConditionCompletedSuccessful, false),
				func(s *spec.Service) { s.DependsOn["metrics"] = spec.Dependency{Required: false} })),
			observed: observed()},
		{name: "container_name_destroy_first", desired: stack(svc("db", containerName("the-db"), env("A", "2"))),
			observed: observed(ctr(svc("db", containerName("the-db")), 1))},
		{name: "shared_image_pulled_once", desired: stack(svc("a"), svc("b"), svc("c")), observed: Observed{Project: "demo"}},
		{name: "error_cycle", desired: stack(svc("a", dependsOn("b", "", false)), svc("b", dependsOn("a", "", false))), observed: observed()},
		{name: "error_unknown_service", desired: stack(cache), observed: observed(), opts: Options{Services: []string{"nope"}}},
		{name: "error_force_and_no_recreate", desired: stack(cache), observed: observed(), opts: Options{ForceRecreate: true, NoRecreate: true}},
	}
}

func TestComputeGolden(t *testing.T) {
	for _, sc := range scenarios() {
		t.Run(sc.name, func(t *testing.T) {
			var buf bytes.Buffer
			p, err := Compute(sc.desired, sc.observed, sc.opts)
			if err != nil {
				buf.WriteString("error: " + err.Error() + "\n")
			} else if err := p.WriteText(&buf); err != nil {
				t.Fatal(err)
			}
			golden(t, sc.name+".golden", buf.Bytes())
			if err == nil {
				// Same input, same plan: no map order leaks into the output.
				for range 3 {
					again, _ := Compute(sc.desired, sc.observed, sc.opts)
					var b2 bytes.Buffer
					again.WriteText(&b2)
					if b2.String() != buf.String() {
						t.Fatalf("plan not deterministic:\n%s\nvs\n%s", buf.String(), b2.String())
					}
				}
				checkOrder(t, p)
			}
		})
	}
}

// checkOrder verifies the action list is a topological order of its dependencies.
func checkOrder(t *testing.T, p *Plan) {
	t.Helper()
	seen := map[string]bool{}
	for _, a := range p.Actions {
		for _, d := range a.DependsOn {
			if !seen[d] {
				t.Errorf("action %q comes before its dependency %q", a.ID, d)
			}
		}
		if seen[a.ID] {
			t.Errorf("duplicate action id %q", a.ID)
		}
		seen[a.ID] = true
	}
}

func TestWriteJSONGolden(t *testing.T) {
	for _, name := range []string{"new_stack", "dependency_recreated_with_restart", "down_volumes", "noop"} {
		t.Run(name, func(t *testing.T) {
			for _, sc := range scenarios() {
				if sc.name != name {
					continue
				}
				p, err := Compute(sc.desired, sc.observed, sc.opts)
				if err != nil {
					t.Fatal(err)
				}
				// The fingerprint hashes the test's service hashes, which follow spec.Service's
				// fields; TestFingerprint covers it, the goldens keep a fixed one.
				p.Fingerprint = "sha256:fingerprint"
				var buf bytes.Buffer
				if err := p.WriteJSON(&buf); err != nil {
					t.Fatal(err)
				}
				var v struct {
					Version int `json:"version"`
				}
				if err := json.Unmarshal(buf.Bytes(), &v); err != nil || v.Version != 1 {
					t.Fatalf("JSON plan does not decode with version 1: %v %d", err, v.Version)
				}
				// Likewise the test's config hashes.
				out := regexp.MustCompile(`"config_hash": "[0-9a-f]+"`).ReplaceAll(buf.Bytes(), []byte(`"config_hash": "<hash>"`))
				golden(t, name+".json.golden", out)
			}
		})
	}
}

func TestEmpty(t *testing.T) {
	web := svc("web")
	p, err := Compute(stack(web), observed(ctr(web, 1)), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !p.Empty() {
		t.Errorf("no-op plan has actions: %v", p.Actions)
	}
	p, err = Compute(stack(svc("web", env("A", "1"))), observed(ctr(web, 1)), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if p.Empty() {
		t.Error("plan with a changed service is empty")
	}
}

func TestFingerprint(t *testing.T) {
	web := svc("web")
	a := observed(ctr(web, 1))
	b := observed(ctr(web, 1, status(StatusExited, 1)))
	if Fingerprint(a) == Fingerprint(b) {
		t.Error("fingerprint ignores a status change")
	}
	if Fingerprint(a) != Fingerprint(observed(ctr(web, 1))) {
		t.Error("fingerprint not stable")
	}
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden (run go test ./planner -update to create it): %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (go test ./planner -update rewrites it):\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

func BenchmarkComputeNoop30(b *testing.B) {
	var services []*spec.Service
	var cs []Container
	for i := range 30 {
		name := "svc" + string(rune('a'+i%26)) + string(rune('0'+i/26))
		var opts []svcOpt
		if i > 0 {
			opts = append(opts, dependsOn(services[i-1].Name, spec.ConditionStarted, true))
		}
		s := svc(name, append(opts, port(uint16(8000+i), 80), volume("data", "/d"))...)
		services = append(services, s)
		cs = append(cs, ctr(s, 1))
	}
	desired := stack(services...)
	obs := observed(cs...)
	b.ReportAllocs()
	for b.Loop() {
		p, err := Compute(desired, obs, Options{})
		if err != nil || !p.Empty() {
			b.Fatalf("not a no-op: %v %v", err, p.Actions)
		}
	}
}

func TestEqual(t *testing.T) {
	web := svc("web")
	obs := observed(ctr(web, 1))
	a, _ := Compute(stack(svc("web", env("A", "1"))), obs, Options{})
	b, _ := Compute(stack(svc("web", env("A", "1"))), obs, Options{})
	c, _ := Compute(stack(svc("web", env("A", "2"))), obs, Options{})
	d, _ := Compute(stack(svc("web", env("A", "1"))), observed(ctr(web, 1, status(StatusExited, 1))), Options{})
	if !a.Equal(b) {
		t.Error("equal plans differ")
	}
	if a.Equal(c) {
		t.Error("plans with different reasons are equal")
	}
	if a.Equal(d) {
		t.Error("plans made from different observations are equal")
	}
}
