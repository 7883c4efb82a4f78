package spec

import (
	"fmt"
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
