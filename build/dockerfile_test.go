package build

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
)

func TestParse(t *testing.T) {
	cases := []struct {
		name, in string
		stages   int
		commands []string // of the last stage, as written
		warnings []string
		err      string
	}{
		{
			name:     "continuations and comments",
			in:       "FROM busybox\n# a comment\nRUN echo a \\\n  # inside\n  && echo b\nCMD [\"x\"]\n",
			stages:   1,
			commands: []string{"RUN echo a   && echo b", `CMD ["x"]`},
		},
		{
			name:     "escape directive",
			in:       "# escape=`\nFROM busybox\nRUN echo a `\n  b\n",
			stages:   1,
			commands: []string{"RUN echo a   b"},
		},
		{
			name:     "syntax directive ignored",
			in:       "# syntax=docker/dockerfile:1.7\nFROM scratch\n",
			stages:   1,
			warnings: []string{`Dockerfile:1: syntax directive "docker/dockerfile:1.7" ignored: stack builds with its own frontend`},
		},
		{
			name:   "stages and meta args",
			in:     "ARG V=1\nFROM busybox:$V AS a\nFROM a\nCOPY --from=a / /\n",
			stages: 2, commands: []string{"COPY --from=a / /"},
		},
		{name: "unknown instruction", in: "FROM busybox\n\nBOGUS x\n", err: `Dockerfile:3: unknown instruction "BOGUS"`},
		{name: "before FROM", in: "RUN x\n", err: "Dockerfile:1: RUN before the first FROM"},
		{name: "no FROM", in: "# nothing\n", err: "Dockerfile:1: file with no instructions"},
		{name: "bad flag", in: "FROM busybox\nCOPY --bogus=1 a b\n", err: "Dockerfile:2: COPY: unknown flag: --bogus"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			df, err := Parse("Dockerfile", []byte(tc.in))
			if tc.err != "" {
				if err == nil || err.Error() != tc.err {
					t.Fatalf("err = %v, want %s", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(df.Stages) != tc.stages {
				t.Fatalf("%d stages", len(df.Stages))
			}
			var got []string
			for _, c := range df.Stages[len(df.Stages)-1].Commands {
				got = append(got, written(c))
			}
			if strings.Join(got, "|") != strings.Join(tc.commands, "|") {
				t.Errorf("commands %q, want %q", got, tc.commands)
			}
			if strings.Join(df.Warnings, "|") != strings.Join(tc.warnings, "|") {
				t.Errorf("warnings %q, want %q", df.Warnings, tc.warnings)
			}
		})
	}
}

func TestArgv(t *testing.T) {
	sh := []string{"/bin/sh", "-c"}
	cases := []struct {
		in   instructions.ShellDependantCmdLine
		want []string
	}{
		{instructions.ShellDependantCmdLine{CmdLine: []string{"echo $A"}, PrependShell: true}, []string{"/bin/sh", "-c", "echo $A"}},
		{instructions.ShellDependantCmdLine{CmdLine: []string{"echo", "$A"}}, []string{"echo", "$A"}},
	}
	for _, tc := range cases {
		if got := argv(tc.in, sh); strings.Join(got, "\x00") != strings.Join(tc.want, "\x00") {
			t.Errorf("argv(%v) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestResolveSources(t *testing.T) {
	dir := t.TempDir()
	for p, c := range map[string]string{"a.txt": "a", "b.txt": "b", "d/x.txt": "x", "d/y.log": "y", "keep.log": "k"} {
		os.MkdirAll(filepath.Join(dir, filepath.Dir(p)), 0o755)
		os.WriteFile(filepath.Join(dir, p), []byte(c), 0o644)
	}
	os.WriteFile(filepath.Join(dir, ".dockerignore"), []byte("**/*.log\n!keep.log\n"), 0o644)
	os.Symlink("/etc", filepath.Join(dir, "up"))
	os.Symlink("d/x.txt", filepath.Join(dir, "inside"))
	src, err := openContext(dir, filepath.Join(dir, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct{ in, want, err string }{
		{in: "*.txt", want: "a.txt b.txt"},
		{in: "/d/*", want: "d/x.txt"},
		{in: "d", want: "d"},
		{in: "./a.txt", want: "a.txt"},
		{in: "keep.log", want: "keep.log"},
		{in: "inside", want: "inside"},
		{in: "d/y.log", err: `source "d/y.log" not found in the build context (excluded by .dockerignore)`},
		{in: "nope", err: `source "nope" not found in the build context`},
		{in: "*.none", err: `source "*.none": no files match in the build context`},
		{in: "../x", err: `source "../x" is outside the build context`},
		{in: "d/../../x", err: `source "d/../../x" is outside the build context`},
	}
	for _, tc := range cases {
		got, err := src.resolve(tc.in)
		if tc.err != "" {
			if err == nil || err.Error() != tc.err {
				t.Errorf("resolve(%q) err = %v, want %s", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || strings.Join(got, " ") != tc.want {
			t.Errorf("resolve(%q) = %q, %v; want %s", tc.in, got, err, tc.want)
		}
	}
	if _, err := src.resolve("up/passwd"); err == nil || !errors.Is(err, errEscape) {
		t.Errorf("symlink out of the context: %v", err)
	}
}

func TestStepKey(t *testing.T) {
	a := stepKey("p", "RUN", "x")
	if a != stepKey("p", "RUN", "x") {
		t.Error("not deterministic")
	}
	for _, other := range []string{stepKey("q", "RUN", "x"), stepKey("p", "RUN", "y"), stepKey("p", "RUNx"), stepKey("p", "RU", "Nx")} {
		if other == a {
			t.Error("different inputs, same key")
		}
	}
}
