package compose

import (
	"github.com/stackrun/stack/spec"

	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// loadInline writes files (name -> content) into a temp dir and loads the first one named
// (stack.yaml by default), returning the error text with the temp dir stripped.
func loadInline(t *testing.T, files map[string]string, order ...string) (*spec.Stack, string) {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if len(order) == 0 {
		order = []string{"stack.yaml"}
	}
	opts := spec.Options{Environ: []string{}, NumCPU: 2, ProjectDirectory: dir}
	for _, f := range order {
		opts.Files = append(opts.Files, filepath.Join(dir, f))
	}
	st, err := loadStack(context.Background(), opts)
	if err != nil {
		return nil, strings.ReplaceAll(err.Error(), dir+"/", "")
	}
	return st, ""
}

func TestProblems(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		order []string
		want  string // every problem, one per line, in order
	}{
		{
			name: "memory below 6 MiB",
			files: map[string]string{"stack.yaml": `services:
  web:
    image: busybox
    mem_limit: 4m
  api:
    image: busybox
    deploy:
      resources:
        limits:
          memory: 1024k
`},
			want: "stack.yaml:4:16: services.web.mem_limit: memory limit 4MiB is below the minimum of 6 MiB\n" +
				"stack.yaml:10:19: services.api.deploy.resources.limits.memory: memory limit 1MiB is below the minimum of 6 MiB",
		},
		{
			name: "port 0 and above 65535",
			files: map[string]string{"stack.yaml": `services:
  web:
    image: busybox
    ports:
      - "0:80"
      - target: 70000
        published: "8080"
      - target: 81
        published: "99999"
`},
			want: "stack.yaml:5:9: services.web.ports[0]: host port 0 is not in 1-65535 (leave it out to have one picked)\n" +
				"stack.yaml:6:9: services.web.ports[1]: container port 70000 is not in 1-65535\n" +
				"stack.yaml:8:9: services.web.ports[2]: host port 99999 is not in 1-65535 (leave it out to have one picked)",
		},
		{
			name: "short syntax port above 65535 (compose-go's error, placed)",
			files: map[string]string{"stack.yaml": `services:
  web:
    image: busybox
    ports:
      - "8080:80"
      - "70000:80"
`},
			want: "stack.yaml:6:9: services.web.ports[1]: invalid hostPort: 70000",
		},
		{
			name: "cpus above the host's count",
			files: map[string]string{"stack.yaml": `services:
  web:
    image: busybox
    cpus: 3.5
`},
			want: "stack.yaml:4:11: services.web.cpus: cpus 3.5 is more than the 2 CPUs of this host",
		},
		{
			name: "depends_on cycle named",
			files: map[string]string{"stack.yaml": `services:
  a:
    image: busybox
    depends_on: [b]
  b:
    image: busybox
    depends_on:
      c:
        condition: service_healthy
  c:
    image: busybox
    depends_on: [a]
`},
			want: "stack.yaml:12:18: services.c.depends_on.a: dependency cycle: a -> b -> c -> a",
		},
		{
			name: "bind source escaping the project directory",
			files: map[string]string{"stack.yaml": `services:
  web:
    image: busybox
    volumes:
      - ./inside:/ok
      - ../outside:/bad
      - type: bind
        source: ./a/../../b
        target: /bad2
      - /etc/ssl:/etc/ssl:ro
`},
			want: "stack.yaml:6:9: services.web.volumes[1]: bind source ../outside escapes the project directory DIR; write an absolute path if that is intended\n" +
				"stack.yaml:8:17: services.web.volumes[2].source: bind source ./a/../../b escapes the project directory DIR; write an absolute path if that is intended",
		},
		{
			name: "same host port published twice",
			files: map[string]string{"stack.yaml": `services:
  api:
    image: busybox
    ports:
      - "8080:80"
      - "127.0.0.1:9000:9000"
      - "5353:53/udp"
  web:
    image: busybox
    environment:
      A: "1"
    ports:
      - "127.0.0.2:9000:9000"
      - "8080:8080"
      - "5353:53"
      - "127.0.0.1:9000:9001"
`},
			want: "stack.yaml:14:9: services.web.ports[1]: host port 8080 already published by services.api\n" +
				"stack.yaml:16:9: services.web.ports[3]: host port 9000 already published by services.api",
		},
		{
			name: "container names and fixed addresses used twice",
			files: map[string]string{"stack.yaml": `services:
  a:
    image: busybox
    container_name: shared
    networks:
      net: {ipv4_address: 10.9.0.5}
  b:
    image: busybox
    container_name: shared
    networks:
      net: {ipv4_address: 10.9.0.5}
  c:
    image: busybox
    networks:
      net: {ipv4_address: 10.9.0.1}
      other: {ipv4_address: 10.8.0.7}
networks:
  net:
    ipam: {config: [{subnet: 10.9.0.0/24, gateway: 10.9.0.1}]}
  other: {}
`},
			want: "stack.yaml:9:21: services.b.container_name: container_name \"shared\" is already used by services.a\n" +
				"stack.yaml:11:27: services.b.networks.net.ipv4_address: address 10.9.0.5 on network net is already given to services.a\n" +
				"stack.yaml:15:27: services.c.networks.net.ipv4_address: address 10.9.0.1 is the gateway of network net\n" +
				"stack.yaml:16:29: services.c.networks.other.ipv4_address: a fixed address needs a subnet on network other (networks.other.ipam.config[0].subnet)",
		},
		{
			name: "fixed host port with replicas",
			files: map[string]string{"stack.yaml": `services:
  web:
    image: busybox
    scale: 2
    ports: ["8080:80", "80"]
`},
			want: "stack.yaml:5:13: services.web.ports[0]: host port 8080 cannot be published by 2 replicas: leave the host port out or use one replica",
		},
		{
			name: "service names that cannot be hostnames",
			files: map[string]string{"stack.yaml": `services:
  my_service:
    image: busybox
  -web:
    image: busybox
  Ok-1:
    image: busybox
`},
			want: "stack.yaml:2:3: services.my_service: service name \"my_service\" cannot be a hostname: use letters, digits and '-', at most 63, not starting or ending with '-'\n" +
				"stack.yaml:4:3: services.-web: service name \"-web\" cannot be a hostname: use letters, digits and '-', at most 63, not starting or ending with '-'",
		},
		{
			name: "unknown key (compose-go schema error, placed at the key)",
			files: map[string]string{"stack.yaml": `services:
  web:
    image: busybox
    imagee: typo
`},
			want: "stack.yaml:4:13: services.web.imagee: unknown key \"imagee\" (did you mean image?)",
		},
		{
			name: "required variable missing",
			files: map[string]string{"stack.yaml": `services:
  web:
    image: busybox
    environment:
      TOKEN: ${TOKEN:?set TOKEN to the API token}
`},
			want: "stack.yaml:5:14: services.web.environment.TOKEN: required variable TOKEN is missing a value: set TOKEN to the API token",
		},
		{
			name: "compose-go decoding and schema errors, reworded and placed",
			files: map[string]string{"stack.yaml": `services:
  web:
    image: busybox
    healthcheck:
      interval: 5 parsecs
`},
			want: "stack.yaml:5:17: services.web.healthcheck.interval: time: unknown unit \" parsecs\" in duration \"5 parsecs\"",
		},
		{
			name:  "schema type error",
			files: map[string]string{"stack.yaml": "services:\n  web:\n    image: busybox\n    ports: {a: 1}\n"},
			want:  "stack.yaml:4:5: services.web.ports: must be a list",
		},
		{
			name:  "unknown top-level key",
			files: map[string]string{"stack.yaml": "service:\n  web:\n    image: busybox\nservices: {}\n"},
			want:  "stack.yaml:1:1: service: unknown key \"service\" (did you mean services?)",
		},
		{
			name:  "bind mount without a source",
			files: map[string]string{"stack.yaml": "services:\n  web:\n    image: busybox\n    volumes:\n      - type: bind\n        target: /x\n"},
			want:  "stack.yaml:5:9: services.web.volumes[0]: a bind mount needs a source",
		},
		{
			name: "every missing variable at once",
			files: map[string]string{"stack.yaml": `services:
  web:
    image: ${IMAGE:?which image}
  db:
    image: postgres
    environment:
      PASSWORD: ${DB_PASSWORD:?}
`},
			want: "stack.yaml:3:12: services.web.image: required variable IMAGE is missing a value: which image\n" +
				"stack.yaml:7:17: services.db.environment.PASSWORD: required variable DB_PASSWORD is missing a value",
		},
		{
			name: "missing variable in a list-style environment",
			files: map[string]string{"stack.yaml": `services:
  web:
    image: busybox
    environment:
      - PLAIN=1
      - TOKEN=${TOKEN:?needed}
`},
			want: "stack.yaml:6:9: services.web.environment[1]: required variable TOKEN is missing a value: needed",
		},
		{
			name: "problem in an included file is reported in that file",
			files: map[string]string{
				"stack.yaml": "include: [db/db.yaml]\nservices:\n  app:\n    image: busybox\n",
				"db/db.yaml": "services:\n  db:\n    image: postgres\n    mem_limit: 2m\n",
			},
			want: "db/db.yaml:4:16: services.db.mem_limit: memory limit 2MiB is below the minimum of 6 MiB",
		},
		{
			name: "dependency on a service outside the active profiles",
			files: map[string]string{"stack.yaml": `services:
  app:
    image: busybox
    depends_on: [debug]
  debug:
    image: busybox
    profiles: [debug]
`},
			want: "stack.yaml:4:18: services.app.depends_on.debug: depends on service \"debug\", which is not enabled by the active profiles",
		},
		{
			name: "YAML syntax error",
			files: map[string]string{"stack.yaml": `services:
  web:
    image: [busybox
`},
			want: "stack.yaml:3:1: YAML syntax: did not find expected ',' or ']'",
		},
		{
			name:  "YAML scanner error",
			files: map[string]string{"stack.yaml": "services:\n  web:\n    image: busybox\n\tports: []\n"},
			want:  "stack.yaml:3:1: YAML syntax: found a tab character that violates indentation",
		},
		{
			name: "every consistency problem at once, sorted by position",
			files: map[string]string{"stack.yaml": `services:
  web:
    image: busybox
    networks: [front, nosuch]
    depends_on: [ghost]
    volumes: ["data:/data", "nodata:/x"]
  worker:
    build: {}
volumes:
  data: {}
networks:
  front:
    ipam:
      config:
        - subnet: 10.1.0.0/33
`},
			want: "stack.yaml:4:23: services.web.networks.nosuch: network \"nosuch\" is not defined in the top-level networks\n" +
				"stack.yaml:5:18: services.web.depends_on.ghost: depends on service \"ghost\", which is not defined\n" +
				"stack.yaml:6:29: services.web.volumes[1]: volume \"nodata\" is not defined in the top-level volumes\n" +
				"stack.yaml:15:19: networks.front.ipam.config[0].subnet: subnet \"10.1.0.0/33\" is not an IPv4 CIDR (like 10.5.0.0/24)",
		},
		{
			name: "keys that change how a container runs are errors",
			files: map[string]string{"stack.yaml": `services:
  web:
    image: busybox
    devices: ["/dev/fuse:/dev/fuse"]
    network_mode: host
    secrets: [token]
    security_opt: ["seccomp:unconfined"]
    gpus: all
secrets:
  token:
    file: ./token.txt
`},
			want: "stack.yaml:4:5: services.web.devices: devices is not supported by stack: device nodes are not supported yet\n" +
				"stack.yaml:5:19: services.web.network_mode: network_mode \"host\" is not supported (supported: none, default)\n" +
				"stack.yaml:6:5: services.web.secrets: secrets is not supported by stack: secrets are not supported yet\n" +
				"stack.yaml:7:5: services.web.security_opt: security_opt is not supported by stack\n" +
				"stack.yaml:8:11: services.web.gpus: gpus is not supported by stack\n" +
				"stack.yaml:9:1: secrets: secrets is not supported by stack: secrets are not supported yet",
		},
		{
			name: "problem in an override file is reported in that file",
			files: map[string]string{
				"stack.yaml": `services:
  web:
    image: busybox
    mem_limit: 64m
`,
				"override.yaml": `services:
  web:
    mem_limit: 1m
`,
			},
			order: []string{"stack.yaml", "override.yaml"},
			want:  "override.yaml:3:16: services.web.mem_limit: memory limit 1MiB is below the minimum of 6 MiB",
		},
		{
			name: "ports merged from two files: each problem in the file that writes the port",
			files: map[string]string{
				"stack.yaml": `services:
  api:
    image: busybox
    ports: ["8080:80"]
  web:
    image: busybox
    ports: ["9000:9000"]
`,
				"override.yaml": `services:
  web:
    ports:
      - "8080:8080"
`,
			},
			order: []string{"stack.yaml", "override.yaml"},
			want:  "override.yaml:4:9: services.web.ports[0]: host port 8080 already published by services.api",
		},
		{
			name: "problem in an extended service is reported where it is written",
			files: map[string]string{
				"stack.yaml": `services:
  web:
    extends:
      file: base.yaml
      service: base
`,
				"base.yaml": `services:
  base:
    image: busybox
    cpus: 8
`,
			},
			want: "base.yaml:4:11: services.web.cpus: cpus 8 is more than the 2 CPUs of this host",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, got := loadInline(t, tc.files, tc.order...)
			got = dirPattern(got)
			if got != tc.want {
				t.Errorf("problems:\n%s\nwant:\n%s", got, tc.want)
			}
		})
	}
}

// dirPattern replaces the temp project directory (an absolute path in some messages) with DIR.
func dirPattern(s string) string {
	for {
		i := strings.Index(s, os.TempDir())
		if i < 0 {
			return s
		}
		j := i + strings.IndexAny(s[i:], ";\n ")
		if j < i {
			j = len(s)
		}
		s = s[:i] + "DIR" + s[j:]
	}
}

func TestWarningsDoNotFail(t *testing.T) {
	st, errText := loadInline(t, map[string]string{"stack.yaml": `services:
  web:
    image: busybox
    deploy:
      mode: global
      placement:
        constraints: [node.role == manager]
    ports:
      - target: 80
        mode: host
`})
	if errText != "" {
		t.Fatal(errText)
	}
	var got []string
	for _, w := range st.Warnings {
		got = append(got, filepath.Base(w.File)+":"+w.Error()[len(w.File)+1:])
	}
	want := []string{
		"stack.yaml:5:13: services.web.deploy.mode: deploy.mode global is ignored: one host, replicas as given",
		"stack.yaml:6:7: services.web.deploy.placement: placement is ignored by stack: single host",
		"stack.yaml:10:15: services.web.ports[0].mode: port mode host is ignored: ports are published on this host",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("warnings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestHostileFiles(t *testing.T) {
	laughs := "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n"
	prev := "a"
	for _, n := range []string{"b", "c", "d", "e", "f", "g", "h", "i"} {
		laughs += n + ": &" + n + " [" + strings.Repeat("*"+prev+",", 8) + "*" + prev + "]\n"
		prev = n
	}
	laughs += "services:\n  web:\n    image: busybox\n    labels: *i\n"

	deep := "services:\n  web:\n    image: busybox\n    x-deep: " + strings.Repeat("[", 100) + strings.Repeat("]", 100) + "\n"
	big := "services:\n  web:\n    image: busybox\n# " + strings.Repeat("x", MaxFileSize) + "\n"

	tests := []struct {
		name    string
		content string
		want    string
	}{
		{"billion laughs", laughs, "stack.yaml:6:4: document expands to more than 100000 YAML nodes through aliases (refusing a billion-laughs style file)"},
		{"nesting", deep, "stack.yaml:4:75: nesting deeper than 64 levels"},
		{"size", big, "stack.yaml: file is larger than 4194304 bytes"},
		{"env_file is a device", "services:\n  web:\n    image: busybox\n    env_file: [ok.env, /dev/zero]\n",
			"stack.yaml:4:24: services.web.env_file[1]: /dev/zero is not a regular file"},
		{"include of a device through a default", "include:\n  - path: ${NOPE:-/dev/zero}\nservices: {}\n",
			"stack.yaml:2:11: include[0].path: ${NOPE:-/dev/zero} is not a regular file"},
	}
	t.Run("included file", func(t *testing.T) {
		_, got := loadInline(t, map[string]string{
			"stack.yaml":       "include: [more/laughs.yaml]\nservices:\n  app:\n    image: busybox\n",
			"more/laughs.yaml": laughs,
		})
		want := "more/laughs.yaml:6:4: document expands to more than 100000 YAML nodes through aliases (refusing a billion-laughs style file)"
		if got != want {
			t.Errorf("got  %s\nwant %s", got, want)
		}
	})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			_, got := loadInline(t, map[string]string{"stack.yaml": tc.content})
			if got != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
			// Not a timing assertion on the happy path: a hostile file must be refused before
			// anything expands it, which takes well under a second; a regression takes minutes.
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("refusing took %v", d)
			}
		})
	}
}

func TestDefaultFilesAndProjectName(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("stack.yaml", "services:\n  web:\n    image: busybox\n")
	write("stack.override.yaml", "services:\n  web:\n    image: busybox:musl\n")
	write("compose.yaml", "services:\n  other:\n    image: busybox\n")

	st, err := loadStack(context.Background(), spec.Options{ProjectDirectory: dir, Environ: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	if got := st.Services["web"].Image; got != "busybox:musl" {
		t.Errorf("image %q: stack.override.yaml not merged over stack.yaml", got)
	}
	if len(st.Files) != 2 || filepath.Base(st.Files[0]) != "stack.yaml" || filepath.Base(st.Files[1]) != "stack.override.yaml" {
		t.Errorf("files %v", st.Files)
	}
	if st.Name != filepath.Base(dir) && st.Name != strings.ToLower(filepath.Base(dir)) {
		t.Errorf("project name %q, want the directory name", st.Name)
	}

	st, err = loadStack(context.Background(), spec.Options{ProjectDirectory: dir, ProjectName: "shop", Environ: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	if st.Name != "shop" || st.Networks["default"].Name != "shop_default" {
		t.Errorf("name %q, default network %q", st.Name, st.Networks["default"].Name)
	}

	if _, err := loadStack(context.Background(), spec.Options{ProjectDirectory: dir, ProjectName: "Not Valid!", Environ: []string{}}); err == nil {
		t.Error("invalid project name accepted")
	}
}

func TestUnsetVariableWarning(t *testing.T) {
	st, errText := loadInline(t, map[string]string{"stack.yaml": `services:
  web:
    image: busybox
    environment:
      A: ${UNSET}
      B: ${UNSET_WITH_DEFAULT:-x}
      C: $$ESCAPED and $OTHER
`})
	if errText != "" {
		t.Fatal(errText)
	}
	var got []string
	for _, w := range st.Warnings {
		got = append(got, filepath.Base(w.File)+":"+w.Error()[len(w.File)+1:])
	}
	want := "stack.yaml:5:10: services.web.environment.A: variable UNSET is not set: an empty string is used\n" +
		"stack.yaml:7:10: services.web.environment.C: variable OTHER is not set: an empty string is used"
	if strings.Join(got, "\n") != want {
		t.Errorf("warnings:\n%s\nwant:\n%s", strings.Join(got, "\n"), want)
	}
}
