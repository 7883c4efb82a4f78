package main

import (
	"bytes"
	"flag"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

var updateReadme = flag.Bool("update-readme", false, "rewrite README.md's supported-keys section from the code")

const (
	readmePath    = "../../README.md"
	keysStart     = "<!-- supported-keys:start -->"
	keysEnd       = "<!-- supported-keys:end -->"
	readmeCommand = "^\\| `stack ([a-z]+)` \\|"
)

// TestReadmeSupportedKeys: the README's supported-keys section is exactly what
// `stack config --supported-keys` prints. go test ./cmd/stack -run Readme -update-readme
// rewrites it.
func TestReadmeSupportedKeys(t *testing.T) {
	readme, err := os.ReadFile(readmePath)
	if err != nil {
		t.Fatal(err)
	}
	var keys bytes.Buffer
	app := newApp()
	app.Writer = &keys
	if err := app.Run([]string{"stack", "config", "--supported-keys"}); err != nil {
		t.Fatal(err)
	}
	text := string(readme)
	start, end := strings.Index(text, keysStart), strings.Index(text, keysEnd)
	if start < 0 || end < start {
		t.Fatalf("README.md has no %s ... %s section", keysStart, keysEnd)
	}
	got := strings.TrimSpace(text[start+len(keysStart) : end])
	want := strings.TrimSpace(keys.String())
	if *updateReadme {
		text = text[:start+len(keysStart)] + "\n" + want + "\n" + text[end:]
		if err := os.WriteFile(readmePath, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if got != want {
		gl, wl := strings.Split(got, "\n"), strings.Split(want, "\n")
		for i := range max(len(gl), len(wl)) {
			g, w := "", ""
			if i < len(gl) {
				g = gl[i]
			}
			if i < len(wl) {
				w = wl[i]
			}
			if g != w {
				t.Fatalf("README.md's supported keys differ from `stack config --supported-keys` at line %d:\nREADME: %s\ncode:   %s\n"+
					"run: go test ./cmd/stack -run Readme -update-readme", i+1, g, w)
			}
		}
	}
}

// TestReadmeCommands: the README's command table has one row per registered command, and no
// row for a command that does not exist.
func TestReadmeCommands(t *testing.T) {
	readme, err := os.ReadFile(readmePath)
	if err != nil {
		t.Fatal(err)
	}
	var documented []string
	re := regexp.MustCompile(readmeCommand)
	for _, l := range strings.Split(string(readme), "\n") {
		if m := re.FindStringSubmatch(l); m != nil {
			documented = append(documented, m[1])
		}
	}
	var registered []string
	for _, c := range newApp().Commands {
		if !c.Hidden && c.Name != "help" {
			registered = append(registered, c.Name)
		}
	}
	for _, name := range registered {
		if !slices.Contains(documented, name) {
			t.Errorf("command %q is not in README.md's command table", name)
		}
	}
	for _, name := range documented {
		if !slices.Contains(registered, name) {
			t.Errorf("README.md's command table lists %q, which is not a command", name)
		}
	}
}

// TestHelpHasExamples: the help of stack and of each command written with examples keeps them.
func TestHelpHasExamples(t *testing.T) {
	app := newApp()
	if !strings.Contains(app.Description, "Examples:") {
		t.Error("stack --help has no examples")
	}
	for _, c := range app.Commands {
		switch c.Name {
		case "help", "config", "image", "pull", "runtime", "version", "volume":
			continue // not yet: their files have other owners
		}
		if !strings.Contains(c.Description, "Examples:") {
			t.Errorf("stack %s --help has no examples", c.Name)
		}
	}
}
