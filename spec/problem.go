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
