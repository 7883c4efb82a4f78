package compose

import (
	"github.com/stackrun/stack/spec"

	"cmp"
	"fmt"
	"math"
	"slices"
)

// sortProblems orders problems by file (in the order given), line, column, key, message; problems
// without a position come after those with one in the same file.
func sortProblems(ps []*spec.Problem, files []string) {
	rank := func(f string) int {
		for i, x := range files {
			if x == f {
				return i
			}
		}
		return len(files)
	}
	slices.SortStableFunc(ps, func(a, b *spec.Problem) int {
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
	errors      []*spec.Problem
	warnings    []*spec.Problem
	// portRefs holds, per service, the source of each converted port (Service.Ports[i]).
	portRefs map[string][]portRef
}

func (c *collector) at(sev spec.Severity, key, format string, args ...any) *spec.Problem {
	p := &spec.Problem{Key: key, Message: fmt.Sprintf(format, args...), Severity: sev, File: c.defaultFile}
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
	c.errors = append(c.errors, &spec.Problem{File: ref.pos.File, Line: ref.pos.Line, Column: ref.pos.Column,
		Key: ref.key, Message: fmt.Sprintf(format, args...)})
}

// errorf records an error at key.
func (c *collector) errorf(key, format string, args ...any) {
	c.errors = append(c.errors, c.at(spec.SeverityError, key, format, args...))
}

// warnf records a warning at key.
func (c *collector) warnf(key, format string, args ...any) {
	c.warnings = append(c.warnings, c.at(spec.SeverityWarning, key, format, args...))
}

func (c *collector) add(p *spec.Problem) {
	if p.Severity == spec.SeverityWarning {
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
	ps := spec.Problems(slices.Clone(c.errors))
	sortProblems(ps, files)
	return ps
}
