package compose

import (
	"github.com/stackrun/stack/spec"

	"os"
	"path/filepath"
	"strings"
	"testing"
)

// hashOf loads a one-file stack and returns the hash of service "web".
func hashOf(t *testing.T, files map[string]string) string {
	t.Helper()
	st, errText := loadInline(t, files)
	if errText != "" {
		t.Fatalf("load: %s", errText)
	}
	svc, ok := st.Services["web"]
	if !ok {
		t.Fatal("no service web")
	}
	return svc.Hash
}

const hashBase = `services:
  web:
    image: example/web:1
    command: ["serve", "--port", "80"]
    environment:
      A: "1"
      B: two
    ports:
      - "127.0.0.1:8080:80"
      - "9000:9000/udp"
    volumes:
      - data:/data
      - /srv/conf:/etc/web:ro
    networks:
      back:
        aliases: [api, www]
    cap_add: [NET_ADMIN, SYS_TIME]
    ulimits:
      nofile: 1024
    labels:
      tier: front
      team: web
    extra_hosts:
      - "db=10.0.0.5"
      - "cache=10.0.0.6"
    healthcheck:
      test: ["CMD", "true"]
      interval: 5s
    mem_limit: 64m
volumes:
  data: {}
networks:
  back: {}
`

func TestHashSameForEquivalentSpellings(t *testing.T) {
	base := hashOf(t, map[string]string{"stack.yaml": hashBase})
	variants := map[string]string{
		"keys and entries reordered": `networks:
  back: {}
volumes:
  data: {}
services:
  web:
    mem_limit: 64m
    healthcheck:
      interval: 5s
      test: ["CMD", "true"]
    extra_hosts:
      - "cache=10.0.0.6"
      - "db=10.0.0.5"
    labels:
      team: web
      tier: front
    ulimits:
      nofile: 1024
    cap_add: [SYS_TIME, NET_ADMIN]
    networks:
      back:
        aliases: [www, api]
    volumes:
      - data:/data
      - /srv/conf:/etc/web:ro
    ports:
      - "9000:9000/udp"
      - "127.0.0.1:8080:80"
    environment:
      B: two
      A: "1"
    command: ["serve", "--port", "80"]
    image: example/web:1
`,
		"long syntax, lists as maps": `services:
  web:
    image: example/web:1
    command: serve --port 80
    environment:
      - A=1
      - B=two
    ports:
      - target: 80
        published: "8080"
        host_ip: 127.0.0.1
        protocol: tcp
      - target: 9000
        published: "9000"
        protocol: udp
    volumes:
      - type: volume
        source: data
        target: /data
      - type: bind
        source: /srv/conf
        target: /etc/web
        read_only: true
    networks:
      back:
        aliases: [api, www]
    cap_add: [CAP_NET_ADMIN, sys_time]
    ulimits:
      nofile:
        soft: 1024
        hard: 1024
    labels:
      - tier=front
      - team=web
    extra_hosts:
      db: 10.0.0.5
      cache: 10.0.0.6
    healthcheck:
      test: ["CMD", "true"]
      interval: 5000ms
    deploy:
      resources:
        limits:
          memory: 64M
volumes:
  data: {}
networks:
  back: {}
`,
		"excluded fields changed": strings.Replace(hashBase, "    mem_limit: 64m\n", `    mem_limit: 64m
    scale: 1
    pull_policy: always
    logging:
      driver: json-file
      options: {max-size: 10m}
    build:
      context: .
    depends_on: [other]
    x-note: anything
  other:
    image: busybox
`, 1),
	}
	for name, yml := range variants {
		t.Run(name, func(t *testing.T) {
			files := map[string]string{"stack.yaml": yml}
			if got := hashOf(t, files); got != base {
				t.Errorf("hash %s, want %s (same as the base spelling)", got, base)
			}
		})
	}
}

func TestHashChangesWithRuntimeFields(t *testing.T) {
	base := hashOf(t, map[string]string{"stack.yaml": hashBase})
	// Each edit replaces one line (or adds one) of hashBase with something that changes the
	// container.
	edits := []struct{ name, old, new string }{
		{"image", "image: example/web:1", "image: example/web:2"},
		{"command", `command: ["serve", "--port", "80"]`, `command: ["serve", "--port", "81"]`},
		{"command emptied", `command: ["serve", "--port", "80"]`, `command: []`},
		{"entrypoint", "    mem_limit: 64m\n", "    mem_limit: 64m\n    entrypoint: [/init]\n"},
		{"environment value", `B: two`, `B: three`},
		{"environment key added", `B: two`, "B: two\n      C: \"\""},
		{"port", `"127.0.0.1:8080:80"`, `"127.0.0.1:8081:80"`},
		{"port protocol", `"9000:9000/udp"`, `"9000:9000/tcp"`},
		{"host ip", `"127.0.0.1:8080:80"`, `"8080:80"`},
		{"expose", "    mem_limit: 64m\n", "    mem_limit: 64m\n    expose: [\"3000\"]\n"},
		{"volume read-only", "- data:/data", "- data:/data:ro"},
		{"volume target", "- data:/data", "- data:/srv"},
		{"tmpfs", "    mem_limit: 64m\n", "    mem_limit: 64m\n    tmpfs: [/run]\n"},
		{"alias", "aliases: [api, www]", "aliases: [api]"},
		{"healthcheck", "interval: 5s", "interval: 6s"},
		{"restart", "    mem_limit: 64m\n", "    mem_limit: 64m\n    restart: always\n"},
		{"memory", "mem_limit: 64m", "mem_limit: 65m"},
		{"cpus", "    mem_limit: 64m\n", "    mem_limit: 64m\n    cpus: 0.5\n"},
		{"pids", "    mem_limit: 64m\n", "    mem_limit: 64m\n    pids_limit: 10\n"},
		{"user", "    mem_limit: 64m\n", "    mem_limit: 64m\n    user: \"1000\"\n"},
		{"working_dir", "    mem_limit: 64m\n", "    mem_limit: 64m\n    working_dir: /srv\n"},
		{"hostname", "    mem_limit: 64m\n", "    mem_limit: 64m\n    hostname: other\n"},
		{"label", "team: web", "team: ops"},
		{"stop_signal", "    mem_limit: 64m\n", "    mem_limit: 64m\n    stop_signal: SIGINT\n"},
		{"stop_grace_period", "    mem_limit: 64m\n", "    mem_limit: 64m\n    stop_grace_period: 3s\n"},
		{"init", "    mem_limit: 64m\n", "    mem_limit: 64m\n    init: true\n"},
		{"read_only", "    mem_limit: 64m\n", "    mem_limit: 64m\n    read_only: true\n"},
		{"privileged", "    mem_limit: 64m\n", "    mem_limit: 64m\n    privileged: true\n"},
		{"cap_add", "cap_add: [NET_ADMIN, SYS_TIME]", "cap_add: [NET_ADMIN]"},
		{"cap_drop", "    mem_limit: 64m\n", "    mem_limit: 64m\n    cap_drop: [ALL]\n"},
		{"ulimit", "nofile: 1024", "nofile: 2048"},
		{"sysctl", "    mem_limit: 64m\n", "    mem_limit: 64m\n    sysctls: {net.core.somaxconn: 1024}\n"},
		{"extra host", `"db=10.0.0.5"`, `"db=10.0.0.7"`},
		{"dns", "    mem_limit: 64m\n", "    mem_limit: 64m\n    dns: [1.1.1.1]\n"},
		{"shm_size", "    mem_limit: 64m\n", "    mem_limit: 64m\n    shm_size: 128m\n"},
		{"tty", "    mem_limit: 64m\n", "    mem_limit: 64m\n    tty: true\n"},
		{"stdin_open", "    mem_limit: 64m\n", "    mem_limit: 64m\n    stdin_open: true\n"},
		{"container_name", "    mem_limit: 64m\n", "    mem_limit: 64m\n    container_name: the-web\n"},
		{"network_mode none", "    networks:\n      back:\n        aliases: [api, www]\n", "    network_mode: none\n"},
	}
	for _, e := range edits {
		t.Run(e.name, func(t *testing.T) {
			if !strings.Contains(hashBase, e.old) {
				t.Fatalf("edit %q does not apply", e.old)
			}
			yml := strings.Replace(hashBase, e.old, e.new, 1)
			if got := hashOf(t, map[string]string{"stack.yaml": yml}); got == base {
				t.Errorf("hash did not change")
			}
		})
	}
}

func TestHashFollowsEnvFileContent(t *testing.T) {
	dir := t.TempDir()
	stack := filepath.Join(dir, "stack.yaml")
	env := filepath.Join(dir, "web.env")
	write := func(p, s string) {
		t.Helper()
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(stack, "services:\n  web:\n    image: busybox\n    env_file: [web.env]\n")
	load := func() *spec.Service {
		t.Helper()
		st, err := loadStack(t.Context(), spec.Options{Files: []string{stack}, Environ: []string{}, NumCPU: 2})
		if err != nil {
			t.Fatal(err)
		}
		return st.Services["web"]
	}
	write(env, "A=1\n")
	first := load()
	write(env, "A=1\n# a comment changes the content, not the environment\n")
	second := load()
	if first.Hash == second.Hash {
		t.Error("hash did not change when the env file's content did")
	}
	if first.EnvFiles[0].Digest == second.EnvFiles[0].Digest {
		t.Error("digest did not change")
	}
	if again := load(); again.Hash != second.Hash {
		t.Error("hash not stable across loads")
	}
}

func TestHashPinned(t *testing.T) {
	// The hash is recorded on every container: changing what goes into it recreates every
	// container once. If this test fails on purpose, bump hashVersion in hash.go.
	svc := &spec.Service{
		Name:        "web",
		Image:       "busybox",
		Command:     []string{"sleep", "1"},
		Environment: map[string]string{"A": "1"},
		Ports:       []spec.Port{{Published: 8080, Target: 80, Protocol: "tcp"}},
		Replicas:    3,
	}
	const want = "4a7c81306b838a2e110bcf50d86e106cbeadf48451c9c24b5672507809e294dd"
	if got := spec.Hash(svc); got != want {
		t.Errorf("Hash = %s, want %s", got, want)
	}
	// Replicas, profiles, depends_on, pull policy, build, logging are not in it.
	svc.Replicas = 1
	svc.Profiles = []string{"debug"}
	svc.DependsOn = map[string]spec.Dependency{"db": {Condition: spec.ConditionHealthy}}
	svc.PullPolicy = "always"
	svc.Build = &spec.Build{Context: "/src"}
	svc.Logging = &spec.Logging{Driver: "json-file"}
	if got := spec.Hash(svc); got != want {
		t.Errorf("Hash after excluded changes = %s, want %s", got, want)
	}
	// nil and empty maps are the same environment.
	svc.Environment = nil
	a := spec.Hash(svc)
	svc.Environment = map[string]string{}
	if spec.Hash(svc) != a {
		t.Error("nil and empty environment hash differently")
	}
}
