package main

import (
	"bytes"
	"testing"

	"github.com/urfave/cli/v2"
)

// TestEveryCommandParsesItsFlags runs --help of every command and subcommand: urfave/cli
// panics at parse time when two flags of one command share a name or alias.
func TestEveryCommandParsesItsFlags(t *testing.T) {
	var walk func(path []string, cmds []*cli.Command)
	walk = func(path []string, cmds []*cli.Command) {
		for _, c := range cmds {
			args := append(append([]string{"stack"}, path...), c.Name, "--help")
			t.Run(c.Name, func(t *testing.T) {
				app := newApp()
				var out bytes.Buffer
				app.Writer, app.ErrWriter = &out, &out
				if err := app.Run(args); err != nil {
					t.Fatalf("%v: %v", args, err)
				}
				if out.Len() == 0 {
					t.Fatalf("%v printed no help", args)
				}
			})
			walk(append(append([]string{}, path...), c.Name), c.Subcommands)
		}
	}
	walk(nil, newApp().Commands)
}
