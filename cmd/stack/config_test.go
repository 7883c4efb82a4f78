package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// runStack runs the CLI in-process and returns stdout, stderr and the exit code main would use.
func runConfigCLI(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	app := newApp()
	var out, errOut bytes.Buffer
	app.Writer, app.ErrWriter = &out, &errOut
	err := app.Run(append([]string{"stack"}, args...))
	code := 0
	if err != nil {
		code = exitCode(err)
		errOut.WriteString(err.Error())
	}
	return out.String(), errOut.String(), code
}

func writeConfigFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "stack.yaml")
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestConfigExitCodesAndOutputs(t *testing.T) {
	good := writeConfigFile(t, "name: demo\nservices:\n  web:\n    image: busybox\n    links: [db]\n  db:\n    image: busybox\nvolumes:\n  data: {}\n")
	bad := writeConfigFile(t, "services:\n  web:\n    image: busybox\n    mem_limit: 1m\n    cpus: 1000\n")
	tests := []struct {
		name     string
		args     []string
		code     int
		stdout   string // substring
		stderr   string // substring
		noStdout bool
	}{
		{name: "valid, -f after the command", args: []string{"config", "-f", good}, code: 0, stdout: "name: demo\nservices:\n", stderr: "links is ignored"},
		{name: "valid, -f before the command", args: []string{"-f", good, "config", "--services"}, code: 0, stdout: "db\nweb\n"},
		{name: "volumes", args: []string{"config", "-f", good, "--volumes"}, code: 0, stdout: "data\n"},
		{name: "json", args: []string{"config", "-f", good, "--format", "json"}, code: 0, stdout: `"name": "demo"`},
		{name: "hash", args: []string{"config", "-f", good, "--hash", "web"}, code: 0, stdout: "web "},
		{name: "quiet", args: []string{"config", "-q", "-f", good}, code: 0, noStdout: true},
		{name: "invalid", args: []string{"config", "-f", bad}, code: 1, noStdout: true,
			stderr: "invalid stack file, 2 problems:\n" + bad + ":4:16: services.web.mem_limit: memory limit 1MiB is below the minimum of 6 MiB\n" +
				bad + ":5:11: services.web.cpus: cpus 1000 is more than the"},
		{name: "bad format is usage", args: []string{"config", "-f", good, "--format", "xml"}, code: 2},
		{name: "unknown flag is usage", args: []string{"config", "--nope"}, code: 2},
		{name: "hash of unknown service", args: []string{"config", "-f", good, "--hash", "nosuch"}, code: 1, stderr: `no service "nosuch"`},
		{name: "supported keys", args: []string{"config", "--supported-keys"}, code: 0, stdout: "| `services.*.devices`"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code := runConfigCLI(t, tc.args...)
			if code != tc.code {
				t.Errorf("exit code %d, want %d (stderr: %s)", code, tc.code, errOut)
			}
			if !strings.Contains(out, tc.stdout) {
				t.Errorf("stdout %q does not contain %q", out, tc.stdout)
			}
			if tc.noStdout && out != "" {
				t.Errorf("stdout %q, want nothing", out)
			}
			if !strings.Contains(errOut, tc.stderr) {
				t.Errorf("stderr %q does not contain %q", errOut, tc.stderr)
			}
		})
	}
}

func TestConfigComposeFileEnv(t *testing.T) {
	a := writeConfigFile(t, "services:\n  web:\n    image: busybox\n")
	b := writeConfigFile(t, "services:\n  web:\n    image: busybox:musl\n  db:\n    image: busybox\n")
	t.Setenv("COMPOSE_FILE", a+":"+b)
	out, errOut, code := runConfigCLI(t, "config", "--services")
	if code != 0 || out != "db\nweb\n" {
		t.Errorf("code %d, out %q, stderr %s", code, out, errOut)
	}
}
