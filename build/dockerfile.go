package build

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
)

// Dockerfile is a parsed Dockerfile.
type Dockerfile struct {
	Name     string // how messages name the file ("Dockerfile", "web/Dockerfile.dev")
	Stages   []instructions.Stage
	MetaArgs []instructions.ArgCommand // ARGs before the first FROM
	Escape   rune
	Warnings []string
}

// Parse parses a Dockerfile with buildkit's parser: line continuations, comments, heredocs and
// the `# escape` directive as Docker reads them. A `# syntax` directive is ignored with a
// warning (stack is its own frontend). Errors name the file and line.
func Parse(name string, data []byte) (*Dockerfile, error) {
	df := &Dockerfile{Name: name}
	if syntax, _, loc, ok := parser.DetectSyntax(data); ok {
		line := 1
		if len(loc) > 0 {
			line = loc[0].Start.Line
		}
		df.Warnings = append(df.Warnings, fmt.Sprintf("%s:%d: syntax directive %q ignored: stack builds with its own frontend", name, line, syntax))
	}
	res, err := parser.Parse(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("%s:%d: %w", name, errLine(err), unwrapLocation(err))
	}
	df.Escape = res.EscapeToken
	for _, w := range res.Warnings {
		line := 0
		if w.Location != nil {
			line = w.Location.Start.Line
		}
		df.Warnings = append(df.Warnings, fmt.Sprintf("%s:%d: %s", name, line, w.Short))
	}
	for _, n := range res.AST.Children {
		v, err := instructions.ParseInstruction(n)
		if err != nil {
			var unknown *instructions.UnknownInstructionError
			if errors.As(err, &unknown) {
				word := unknown.Instruction
				if f := strings.Fields(n.Original); len(f) > 0 {
					word = f[0] // as written, not lower-cased
				}
				return nil, fmt.Errorf("%s:%d: unknown instruction %q", name, n.StartLine, word)
			}
			return nil, fmt.Errorf("%s:%d: %s: %w", name, n.StartLine, n.Value, unwrapLocation(err))
		}
		switch c := v.(type) {
		case *instructions.Stage:
			df.Stages = append(df.Stages, *c)
		case *instructions.ArgCommand:
			if len(df.Stages) == 0 {
				df.MetaArgs = append(df.MetaArgs, *c)
				continue
			}
			df.Stages[len(df.Stages)-1].AddCommand(c)
		case instructions.Command:
			if len(df.Stages) == 0 {
				return nil, fmt.Errorf("%s:%d: %s before the first FROM", name, n.StartLine, c.Name())
			}
			df.Stages[len(df.Stages)-1].AddCommand(c)
		default:
			return nil, fmt.Errorf("%s:%d: %T is not an instruction", name, n.StartLine, v)
		}
	}
	if len(df.Stages) == 0 {
		return nil, fmt.Errorf("%s: no FROM instruction", name)
	}
	return df, nil
}

// errLine is the first line a buildkit error names, 0 when none.
func errLine(err error) int {
	var le *parser.LocationError
	if errors.As(err, &le) && len(le.Locations) > 0 && len(le.Locations[0]) > 0 {
		return le.Locations[0][0].Start.Line
	}
	return 0
}

// unwrapLocation drops buildkit's location wrapper (stack names the line itself).
func unwrapLocation(err error) error {
	var le *parser.LocationError
	if errors.As(err, &le) {
		if inner := le.Unwrap(); inner != nil {
			return inner
		}
	}
	return err
}
