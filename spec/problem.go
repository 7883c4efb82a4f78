package spec

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"
)

// Severity says whether a Problem stops the load.
type Severity int

const (
	SeverityError Severity = iota
	SeverityWarning
)

// Problem is one thing wrong (or worth a warning) in a stack file, at a position.
// Its Error text is "file:line:col: key.path: message".
type Problem struct {
	File     string
	Line     int
	Column   int
	Key      string // key path, e.g. services.web.ports[1]
	Message  string
	Severity Severity
}

func (p *Problem) Error() string {
	var b strings.Builder
	if p.File != "" {
		b.WriteString(p.File)
		if p.Line > 0 {
			fmt.Fprintf(&b, ":%d:%d", p.Line, p.Column)
		}
		b.WriteString(": ")
	}
	if p.Key != "" {
		b.WriteString(p.Key)
		b.WriteString(": ")
	}
	b.WriteString(p.Message)
	return b.String()
}

func (s Severity) String() string {
	if s == SeverityWarning {
		return "warning"
	}
	return "error"
}

// Problems is every error-severity problem of one load, sorted by position. Load returns it
// as its error when the file is invalid; Error prints one problem per line.
type Problems []*Problem

func (ps Problems) Error() string {
	var b strings.Builder
	for i, p := range ps {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(p.Error())
	}
	return b.String()
}

// Unwrap lets errors.As find a single *Problem inside the list.
func (ps Problems) Unwrap() []error {
	errs := make([]error, len(ps))
	for i, p := range ps {
		errs[i] = p
	}
	return errs
}

// sortProblems orders problems by file (in the order given), line, column, key, message; problems
// without a position come after those with one in the same file.
func sortProblems(ps []*Problem, files []string) {
	rank := func(f string) int {
		for i, x := range files {
			if x == f {
				return i
			}
		}
		return len(files)
	}
	slices.SortStableFunc(ps, func(a, b *Problem) int {
		if c := cmp.Compare(rank(a.File), rank(b.File)); c != 0 {
			return c
		}
		if c := cmp.Compare(a.File, b.File); c != 0 {
			return c
		}
		al, bl := a.Line, b.Line
		if al == 0 {
			al = math.MaxInt
		}
		if bl == 0 {
			bl = math.MaxInt
		}
		if c := cmp.Compare(al, bl); c != 0 {
			return c
		}
		if c := cmp.Compare(a.Column, b.Column); c != 0 {
			return c
		}
		if c := cmp.Compare(a.Key, b.Key); c != 0 {
			return c
		}
		return cmp.Compare(a.Message, b.Message)
	})
}

// collector gathers the problems of one load, placing each at the position of its key.
type collector struct {
	pos         *positions
	defaultFile string // where problems without a known position are reported
	errors      []*Problem
	warnings    []*Problem
	// portRefs holds, per service, the source of each converted port (Service.Ports[i]).
	portRefs map[string][]portRef
}

func (c *collector) at(sev Severity, key, format string, args ...any) *Problem {
	p := &Problem{Key: key, Message: fmt.Sprintf(format, args...), Severity: sev, File: c.defaultFile}
	if pos, ok := c.pos.lookup(key); ok {
		p.File, p.Line, p.Column = pos.File, pos.Line, pos.Column
	}
	return p
}

// portErrorf records an error at the source item of a port.
func (c *collector) portErrorf(ref portRef, format string, args ...any) {
	if !ref.ok {
		c.errorf(ref.key, format, args...)
		return
	}
	c.errors = append(c.errors, &Problem{File: ref.pos.File, Line: ref.pos.Line, Column: ref.pos.Column,
		Key: ref.key, Message: fmt.Sprintf(format, args...)})
}

// errorf records an error at key.
func (c *collector) errorf(key, format string, args ...any) {
	c.errors = append(c.errors, c.at(SeverityError, key, format, args...))
}

// warnf records a warning at key.
func (c *collector) warnf(key, format string, args ...any) {
	c.warnings = append(c.warnings, c.at(SeverityWarning, key, format, args...))
}

func (c *collector) add(p *Problem) {
	if p.Severity == SeverityWarning {
		c.warnings = append(c.warnings, p)
	} else {
		c.errors = append(c.errors, p)
	}
}

// result returns the errors as a sorted Problems list, or nil when there are none.
func (c *collector) result(files []string) error {
	if len(c.errors) == 0 {
		return nil
	}
	ps := Problems(slices.Clone(c.errors))
	sortProblems(ps, files)
	return ps
}
