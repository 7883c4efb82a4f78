package e2e

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// The examples beyond examples/stack.yaml, each brought up and down as its header comment tells
// a user to, checking what that user would see.

// container is one row of `stack ps -a --format json`.
type container struct {
	Name      string   `json:"name"`
	ID        string   `json:"id"`
	Service   string   `json:"service"`
	Number    int      `json:"number"`
	State     string   `json:"state"`
	Ports     []string `json:"ports"`
	Addresses []string `json:"addresses"`
}

func (e *env) containers(f []string) []container {
	e.t.Helper()
	var p struct {
		Containers []container `json:"containers"`
	}
	out := e.must(append(slices.Clone(f), "ps", "-a", "--format", "json")...)
	if err := json.Unmarshal([]byte(out), &p); err != nil {
		e.t.Fatalf("ps json: %v\n%s", err, out)
	}
	return p.Containers
}

// service returns the containers of one service, by replica number.
func service(cs []container, name string) []container {
	var out []container
	for _, c := range cs {
		if c.Service == name {
			out = append(out, c)
		}
	}
	slices.SortFunc(out, func(a, b container) int { return a.Number - b.Number })
	return out
}

// hostsAddrs returns the addresses /etc/hosts content gives for name.
func hostsAddrs(hosts, name string) []string {
	var out []string
	for _, l := range strings.Split(hosts, "\n") {
		f := strings.Fields(l)
		if len(f) > 1 && slices.Contains(f[1:], name) {
			out = append(out, f[0])
		}
	}
	slices.Sort(out)
	return out
}

// refused reports whether nothing answers on 127.0.0.1:port.
func refused(port int) bool {
	c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 2*time.Second)
	if err == nil {
		c.Close()
		return false
	}
	return true
}

// TestExampleNetworks: examples/networks.yaml. web is reachable from the host and reaches api
// and store over the internal backend network; the frontend-only toolbox reaches web but
// neither store's name nor its address.
func TestExampleNetworks(t *testing.T) {
	e := newEnv(t)
	e.exampleImage()
	port := freePort(t)
	e.extra = []string{fmt.Sprintf("WEB_PORT=%d", port)}
	f := []string{"-f", "examples/networks.yaml", "-p", e.project}

	e.must(append(f, "up", "-d", "--wait")...)
	fp := e.footprint()
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	if page := get(t, url); !strings.Contains(page, "two networks") || !strings.Contains(page, "visits: 1") {
		t.Fatalf("page: %s", page)
	}
	cs := e.containers(f)
	if len(cs) != 4 {
		t.Fatalf("want 4 containers, got %+v", cs)
	}
	for _, c := range cs {
		if c.State != "running" {
			t.Errorf("%s is %s", c.Name, c.State)
		}
	}
	web, store := service(cs, "web"), service(cs, "store")
	if len(web) != 1 || len(web[0].Addresses) != 2 {
		t.Fatalf("web should have an address on each network: %+v", web)
	}
	if len(store) != 1 || len(store[0].Addresses) != 1 {
		t.Fatalf("store should have one address: %+v", store)
	}
	storeIP := store[0].Addresses[0]

	// The toolbox reaches web by name over frontend: the same page, one more visit.
	if out := e.must(append(f, "exec", "toolbox", "wget", "-q", "-O", "-", "http://web/")...); !strings.Contains(out, "visits: 2") {
		t.Errorf("toolbox -> web: %s", out)
	}
	// It does not know the name store, and store's address does not answer it.
	if hosts := e.must(append(f, "exec", "toolbox", "cat", "/etc/hosts")...); len(hostsAddrs(hosts, "store")) != 0 || len(hostsAddrs(hosts, "web")) != 1 {
		t.Errorf("toolbox /etc/hosts should name web once and not store:\n%s", hosts)
	}
	if out, err := e.run(append(f, "exec", "toolbox", "busybox", "timeout", "3", "wget", "-q", "-O", "-", "http://store:7000/healthz")...); err == nil {
		t.Errorf("toolbox reached store by name: %s", out)
	}
	if out, err := e.run(append(f, "exec", "toolbox", "busybox", "timeout", "3", "wget", "-q", "-O", "-", "http://"+storeIP+":7000/healthz")...); err == nil {
		t.Errorf("toolbox reached store at %s: %s", storeIP, out)
	}
	// From the backend side the same address answers: the block is the network, not the store.
	if out := e.must(append(f, "exec", "api", "wget", "-q", "-O", "-", "http://"+storeIP+":7000/healthz")...); !strings.Contains(out, "ok") {
		t.Errorf("api -> store at %s: %s", storeIP, out)
	}

	e.must(append(f, "down", "-v")...)
	if n := len(e.containers(f)); n != 0 {
		t.Errorf("%d containers after down", n)
	}
	e.checkGone(fp)
}

// TestExampleReplicas: examples/replicas.yaml. Three api replicas run, every one listed under
// the name api in web's /etc/hosts and answering there; they share the store; scaling down
// to one rewrites the names.
func TestExampleReplicas(t *testing.T) {
	e := newEnv(t)
	e.exampleImage()
	port := freePort(t)
	e.extra = []string{fmt.Sprintf("WEB_PORT=%d", port)}
	f := []string{"-f", "examples/replicas.yaml", "-p", e.project}

	e.must(append(f, "up", "-d", "--wait")...)
	fp := e.footprint()
	api := service(e.containers(f), "api")
	if len(api) != 3 {
		t.Fatalf("want 3 api replicas, got %+v", api)
	}
	var addrs []string
	for i, c := range api {
		if c.State != "running" || c.Number != i+1 || len(c.Addresses) != 1 {
			t.Fatalf("replica %d: %+v", i+1, c)
		}
		addrs = append(addrs, c.Addresses[0])
	}
	slices.Sort(addrs)
	if len(slices.Compact(slices.Clone(addrs))) != 3 {
		t.Fatalf("replicas share addresses: %v", addrs)
	}

	hosts := e.must(append(f, "exec", "web", "cat", "/etc/hosts")...)
	if got := hostsAddrs(hosts, "api"); !slices.Equal(got, addrs) {
		t.Fatalf("web's /etc/hosts gives api = %v, ps says %v:\n%s", got, addrs, hosts)
	}
	// Each replica answers at its address, and they all count in the one store.
	for i, a := range addrs {
		out := e.must(append(f, "exec", "web", "wget", "-q", "-O", "-", "http://"+a+":9000/")...)
		if strings.TrimSpace(out) != fmt.Sprint(i+1) {
			t.Errorf("api at %s counted %q, want %d", a, out, i+1)
		}
	}
	// By name, through the page.
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	if page := get(t, url); !strings.Contains(page, "three api replicas") || !strings.Contains(page, "visits: 4") {
		t.Fatalf("page: %s", page)
	}
	// Each replica is its own container: exec --index picks it, with its own hostname.
	names := map[string]bool{}
	for i := 1; i <= 3; i++ {
		names[strings.TrimSpace(e.must(append(f, "exec", "--index", fmt.Sprint(i), "api", "hostname")...))] = true
	}
	if len(names) != 3 {
		t.Errorf("replica hostnames: %v", names)
	}

	// Down to one replica: the others go, and web's hosts file names only the one left.
	e.must(append(f, "up", "-d", "--wait", "--scale", "api=1")...)
	api = service(e.containers(f), "api")
	if len(api) != 1 || api[0].Number != 1 || api[0].State != "running" {
		t.Fatalf("after --scale api=1: %+v", api)
	}
	hosts = e.must(append(f, "exec", "web", "cat", "/etc/hosts")...)
	if got := hostsAddrs(hosts, "api"); !slices.Equal(got, api[0].Addresses) {
		t.Errorf("after scaling down web's /etc/hosts gives api = %v, want %v:\n%s", got, api[0].Addresses, hosts)
	}
	if page := get(t, url); !strings.Contains(page, "visits: 5") {
		t.Errorf("page after scaling down: %s", page)
	}

	e.must(append(f, "down", "-v")...)
	e.checkGone(fp)
}

// TestExampleDevOverride: examples/stack.yaml + examples/stack.dev.yaml. What runs is the
// merge: the dev title, only the dev port, the dev volume; dropping the override file puts
// the plain app back, with its own count.
func TestExampleDevOverride(t *testing.T) {
	e := newEnv(t)
	e.exampleImage()
	port, devPort := freePort(t), freePort(t)
	for devPort == port {
		devPort = freePort(t)
	}
	e.extra = []string{fmt.Sprintf("WEB_PORT=%d", port), fmt.Sprintf("DEV_WEB_PORT=%d", devPort)}
	base := []string{"-f", "examples/stack.yaml", "-p", e.project}
	dev := []string{"-f", "examples/stack.yaml", "-f", "examples/stack.dev.yaml", "-p", e.project}

	cfg := e.must(append(dev, "config", "--format", "json")...)
	var merged struct {
		Services map[string]struct {
			Environment map[string]string `json:"environment"`
			Restart     string            `json:"restart"`
			Ports       []struct {
				Published string `json:"published"`
			} `json:"ports"`
		} `json:"services"`
	}
	if err := json.Unmarshal([]byte(cfg), &merged); err != nil {
		t.Fatalf("config json: %v\n%s", err, cfg)
	}
	w := merged.Services["web"]
	if w.Environment["TITLE"] != "Hello from stack (development)" || w.Restart != "no" ||
		len(w.Ports) != 1 || w.Ports[0].Published != fmt.Sprint(devPort) {
		t.Fatalf("merged web: %+v", w)
	}

	e.must(append(dev, "up", "-d", "--wait")...)
	fp := e.footprint()
	devURL := fmt.Sprintf("http://127.0.0.1:%d/", devPort)
	if page := get(t, devURL); !strings.Contains(page, "Hello from stack (development)") || !strings.Contains(page, "visits: 1") {
		t.Fatalf("dev page: %s", page)
	}
	web := service(e.containers(dev), "web")
	if len(web) != 1 || !slices.Equal(web[0].Ports, []string{fmt.Sprintf("127.0.0.1:%d->80/tcp", devPort)}) {
		t.Fatalf("dev web should publish only %d: %+v", devPort, web)
	}
	if !refused(port) {
		t.Errorf("port %d answers though the override replaced it", port)
	}
	// The dev file changes web and store; plain stack.yaml would recreate both, not api.
	out, err := e.run(append(base, "plan")...)
	if exitCode(err) != 2 || !strings.Contains(out, "recreate container:web:1") || !strings.Contains(out, "recreate container:store:1") ||
		strings.Contains(out, "recreate container:api") {
		t.Errorf("plan without the override (exit %d):\n%s", exitCode(err), out)
	}
	e.must(append(base, "up", "-d", "--wait")...)
	more := e.footprint()
	fp.links, fp.addrs = append(fp.links, more.links...), append(fp.addrs, more.addrs...)
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	if page := get(t, url); strings.Contains(page, "development") || !strings.Contains(page, "visits: 1") {
		t.Errorf("plain page (its own volume, first visit): %s", page)
	}
	if !refused(devPort) {
		t.Errorf("dev port %d still answers", devPort)
	}

	e.must(append(dev, "down", "-v")...)
	if out := e.must("volume", "ls"); strings.Contains(out, e.project) {
		t.Errorf("volume left after down -v:\n%s", out)
	}
	e.checkGone(fp)
}

// busyboxImage imports examples/build-busybox-image.sh's image as busybox:latest.
func (e *env) busyboxImage() {
	e.t.Helper()
	cmd := exec.Command(filepath.Join(repoRoot(e.t), "examples", "build-busybox-image.sh"), e.bin, "busybox:latest")
	cmd.Env = append(os.Environ(), "STACK_ROOT="+e.root, "STACK_RUN_ROOT="+e.runRoot)
	if out, err := cmd.CombinedOutput(); err != nil {
		e.t.Fatalf("build busybox image: %v\n%s", err, out)
	}
}

// portOverride writes an override file moving service's published ports to 127.0.0.1:port, so
// the examples that fix a port run next to anything else on the host.
func portOverride(t *testing.T, svc string, port, target int) string {
	p := filepath.Join(t.TempDir(), "ports.yaml")
	y := fmt.Sprintf("services:\n  %s:\n    ports: !override\n      - \"127.0.0.1:%d:%d\"\n", svc, port, target)
	if err := os.WriteFile(p, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// poll runs cond until it returns "" or the deadline passes, and fails with its last answer.
func poll(t *testing.T, what string, cond func() string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		if last = cond(); last == "" {
			return
		}
		time.Sleep(300 * time.Millisecond)
	}
	t.Fatalf("%s: %s", what, last)
}

// TestExampleWebapp: examples/webapp.yaml (image busybox): the page of examples/www is served,
// and the checker, started once web is healthy, reaches it by name.
func TestExampleWebapp(t *testing.T) {
	e := newEnv(t)
	e.busyboxImage()
	port := freePort(t)
	f := []string{"-f", "examples/webapp.yaml", "-f", portOverride(t, "web", port, 80), "-p", e.project}

	e.must(append(f, "up", "-d", "--wait")...)
	fp := e.footprint()
	want, err := os.ReadFile(filepath.Join(repoRoot(t), "examples", "www", "index.html"))
	if err != nil {
		t.Fatal(err)
	}
	if page := get(t, fmt.Sprintf("http://127.0.0.1:%d/", port)); page != string(want) {
		t.Errorf("page: %q, want examples/www/index.html", page)
	}
	poll(t, "checker reaches web", func() string {
		if out := e.must(append(f, "logs", "checker")...); !strings.Contains(out, "ok") {
			return "logs: " + out
		}
		return ""
	})

	e.must(append(f, "down", "-v")...)
	e.checkGone(fp)
}

// TestExampleCounter: examples/counter.yaml (image busybox): the writer's lines appear in the
// reader's read-only view of the shared volume, served over HTTP.
func TestExampleCounter(t *testing.T) {
	e := newEnv(t)
	e.busyboxImage()
	port := freePort(t)
	f := []string{"-f", "examples/counter.yaml", "-f", portOverride(t, "reader", port, 8000), "-p", e.project}

	e.must(append(f, "up", "-d", "--wait")...)
	fp := e.footprint()
	url := fmt.Sprintf("http://127.0.0.1:%d/count.txt", port)
	poll(t, "the count grows", func() string {
		if lines := strings.Fields(get(t, url)); len(lines) < 3 || lines[0] != "1" || lines[2] != "3" {
			return "count.txt: " + strings.Join(lines, " ")
		}
		return ""
	})
	if out, err := e.run(append(f, "exec", "reader", "sh", "-c", "echo x > /data/x")...); err == nil {
		t.Errorf("reader wrote to its read-only volume: %s", out)
	}

	e.must(append(f, "down", "-v")...)
	e.checkGone(fp)
}

// footprint is what this env's running project has on the host, read from its network records:
// bridge and veth names, container addresses. Other tests on the same host create and remove
// interfaces and nftables tables of their own at any time, so leaks are looked for by these
// names, not by comparing the whole host before and after.
type footprint struct {
	links, addrs []string
}

func (e *env) footprint() footprint {
	e.t.Helper()
	files, _ := filepath.Glob(filepath.Join(e.root, "networks", "networks", "*.json"))
	var fp footprint
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			e.t.Fatal(err)
		}
		var n struct {
			Bridge      string `json:"bridge"`
			Attachments map[string]struct {
				HostVeth string `json:"host_veth"`
				IPv4     string `json:"ipv4"`
			} `json:"attachments"`
		}
		if err := json.Unmarshal(b, &n); err != nil {
			e.t.Fatalf("network record %s: %v", f, err)
		}
		fp.links = append(fp.links, n.Bridge)
		for _, a := range n.Attachments {
			fp.links, fp.addrs = append(fp.links, a.HostVeth), append(fp.addrs, a.IPv4)
		}
	}
	if len(fp.links) == 0 {
		e.t.Fatalf("no network records under %s", e.root)
	}
	return fp
}

// checkGone fails the test when anything of fp, or any mount under the env's roots, or the
// project's cgroups, is still on the host.
func (e *env) checkGone(fp footprint) {
	e.t.Helper()
	out := func(name string, args ...string) string {
		b, _ := exec.Command(name, args...).Output()
		return string(b)
	}
	word := func(s string) *regexp.Regexp {
		return regexp.MustCompile(`(^|[^0-9A-Za-z.])` + regexp.QuoteMeta(s) + `($|[^0-9A-Za-z.])`)
	}
	links, rules := out("ip", "-o", "link", "show"), out("nft", "list", "ruleset")
	for _, l := range fp.links {
		if word(l).MatchString(links) {
			e.t.Errorf("interface %s left after down", l)
		}
		if word(l).MatchString(rules) {
			e.t.Errorf("nftables rules for %s left after down", l)
		}
	}
	for _, a := range fp.addrs {
		if word(a).MatchString(rules) {
			e.t.Errorf("nftables rules for %s left after down", a)
		}
	}
	b, _ := os.ReadFile("/proc/self/mounts")
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, e.root) || strings.Contains(l, e.runRoot) {
			e.t.Errorf("mount left after down: %s", l)
		}
	}
	if cg, _ := filepath.Glob("/sys/fs/cgroup/*/stack/" + e.project); len(cg) > 0 {
		e.t.Errorf("cgroups left after down: %v", cg)
	}
}
