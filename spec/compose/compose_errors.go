package compose

import (
	"github.com/stackrun/stack/spec"

	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/compose-spec/compose-go/v2/schema"
)

// compose-go returns plain error strings. These patterns recover the file, line or key path they
// mention so the problem can be placed like stack's own.
var (
	reValidating    = regexp.MustCompile(`^validating (.+?): (.*)$`)
	reFailedParse   = regexp.MustCompile(`^failed to parse (.+?): (.*)$`)
	reYAMLLine      = regexp.MustCompile(`line (\d+)(?:, column (\d+))?`)
	reInterpolating = regexp.MustCompile(`^error while interpolating ([^:]+): (.*)$`)
	reKeyPrefixed   = regexp.MustCompile(`^((?:services|networks|volumes|configs|secrets|include|name|models|jobs)(?:\.[^\s:]+)?):? (.*)$`)
	reAdditional    = regexp.MustCompile(`additional propert(?:y|ies) '([^']+)'`)
	reService       = regexp.MustCompile(`^service "?([^" ]+)"? (.*)$`)
	reNumericPart   = regexp.MustCompile(`\.(\d+)(\.|$)`)
	reVariable      = regexp.MustCompile(`variable "?(\w+)"?`)
	reDecoding      = regexp.MustCompile(`^'([^']+)' (.*)$`)
	reNamedIndex    = regexp.MustCompile(`\[([^\]]*[^0-9\]][^\]]*)\]`)
	reMountConfig   = regexp.MustCompile(`^invalid mount config for type "(\w+)": field Source must not be empty`)
)

// composeProblem turns one compose-go error into a positioned Problem.
func (l *load) composeProblem(err error) *spec.Problem {
	msg := err.Error()
	// Unwrap the generic prefix compose-go and cli add.
	for _, pre := range []string{"load stack file: "} {
		msg = strings.TrimPrefix(msg, pre)
	}
	file := l.c.defaultFile
	if m := reValidating.FindStringSubmatch(msg); m != nil {
		file, msg = m[1], m[2]
	}
	if m := reFailedParse.FindStringSubmatch(msg); m != nil {
		file, msg = m[1], m[2]
	}
	if strings.HasPrefix(msg, "yaml:") {
		p := &spec.Problem{File: file, Message: msg}
		if m := reYAMLLine.FindStringSubmatch(msg); m != nil {
			p.Line, _ = strconv.Atoi(m[1])
			p.Column = 1
			if m[2] != "" {
				p.Column, _ = strconv.Atoi(m[2])
			}
		}
		return p
	}
	if m := reInterpolating.FindStringSubmatch(msg); m != nil {
		key := dotKey(m[1])
		if v := reVariable.FindStringSubmatch(m[2]); v != nil && strings.Contains(key, ".[]") {
			key = l.pos.listItemWith(key, v[1])
		}
		return l.c.at(spec.SeverityError, key, "%s", m[2])
	}
	if strings.HasPrefix(msg, " ") || strings.HasPrefix(msg, "(root)") {
		// schema error at the top level: "(root) additional properties 'x' not allowed"
		msg = strings.TrimSpace(strings.TrimPrefix(msg, "(root)"))
		if m := reAdditional.FindStringSubmatch(msg); m != nil {
			return l.c.at(spec.SeverityError, m[1], "%s", unknownKey(m[1]))
		}
		return &spec.Problem{File: file, Message: msg}
	}
	if m := reKeyPrefixed.FindStringSubmatch(msg); m != nil {
		key, rest := dotKey(m[1]), m[2]
		if a := reAdditional.FindStringSubmatch(rest); a != nil && !strings.Contains(a[1], "', '") {
			key += "." + a[1]
			rest = unknownKey(key)
		}
		if rest == "false schema" {
			rest = unknownKey(key)
		}
		rest = tidySchemaMessage(rest)
		return l.c.at(spec.SeverityError, key, "%s", rest)
	}
	if strings.HasPrefix(msg, "decoding failed") {
		last := strings.TrimSpace(msg[strings.LastIndexByte(msg, '\n')+1:])
		if m := reDecoding.FindStringSubmatch(last); m != nil {
			key := reNamedIndex.ReplaceAllString(m[1], ".$1")
			return l.c.at(spec.SeverityError, key, "%s", m[2])
		}
	}
	if m := reMountConfig.FindStringSubmatch(msg); m != nil {
		if key, ok := l.pos.mountWithoutSource(m[1]); ok {
			return l.c.at(spec.SeverityError, key, "a %s mount needs a source", m[1])
		}
	}
	if m := reService.FindStringSubmatch(msg); m != nil {
		return l.c.at(spec.SeverityError, "services."+m[1], "%s", m[2])
	}
	if msg == "project name must not be empty" {
		// Compose keeps only [a-z0-9_-] of name: (lowercased) and trims leading '-' and '_';
		// "name: .." leaves nothing.
		if v, ok := l.pos.raw("name"); ok {
			return l.c.at(spec.SeverityError, "name", "project name %q has nothing left once normalized: it needs a letter or digit (Compose keeps lowercase letters, digits, '-' and '_')", v)
		}
	}
	// Last resort: find the offending token among the scalars written in the files.
	if key, ok := l.pos.findValue(lastToken(msg)); ok {
		return l.c.at(spec.SeverityError, key, "%s", msg)
	}
	var pe *spec.Problem
	if errors.As(err, &pe) {
		return pe
	}
	return &spec.Problem{File: file, Message: msg}
}

// dotKey turns compose-go's services.web.ports.0 into stack's services.web.ports[0].
func dotKey(k string) string {
	for {
		n := reNumericPart.ReplaceAllString(k, "[$1]$2")
		if n == k {
			return k
		}
		k = n
	}
}

func lastToken(msg string) string {
	msg = strings.TrimSpace(msg)
	if i := strings.LastIndexAny(msg, " :"); i >= 0 {
		msg = msg[i+1:]
	}
	return strings.Trim(msg, `"'`)
}

// unknownKey says that the last segment of key is not a Compose key, suggesting the closest one
// the specification has at that place (imagee -> image).
func unknownKey(key string) string {
	parts := strings.Split(key, ".")
	name := parts[len(parts)-1]
	msg := fmt.Sprintf("unknown key %q", name)
	// The pattern of the parent: services.web -> services.*, ports[0] -> ports.[]
	var pattern []string
	for i, p := range parts[:len(parts)-1] {
		base, idx, isList := strings.Cut(p, "[")
		if i > 0 && (parts[i-1] == "services" || parts[i-1] == "networks" || parts[i-1] == "volumes" ||
			strings.HasSuffix(parts[i-1], "networks") && i > 1) {
			base = "*"
		}
		pattern = append(pattern, base)
		for isList {
			pattern = append(pattern, "[]")
			_, idx, isList = strings.Cut(idx, "[")
		}
	}
	parent := strings.Join(pattern, ".")
	best, bestDist := "", 3
	for _, p := range schema.AttributePaths() {
		if p.Parent().String() != parent {
			continue
		}
		if d := editDistance(name, p.Last()); d < bestDist {
			best, bestDist = p.Last(), d
		}
	}
	if best != "" {
		msg += fmt.Sprintf(" (did you mean %s?)", best)
	}
	return msg
}

// editDistance is the Levenshtein distance of two short strings.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// tidySchemaMessage rewords compose-go's schema and decoding messages: "must be a array" ->
// "must be a list", and a multi-line mapstructure report -> its last line.
func tidySchemaMessage(msg string) string {
	if i := strings.LastIndexByte(msg, '\n'); i >= 0 && strings.HasPrefix(msg, "decoding failed") {
		msg = strings.TrimSpace(msg[i+1:])
		if j := strings.Index(msg, "' "); strings.HasPrefix(msg, "'") && j > 0 {
			msg = msg[j+2:]
		}
	}
	r := strings.NewReplacer("must be a array", "must be a list", "must be a integer", "must be an integer",
		"must be a object", "must be a mapping")
	return r.Replace(msg)
}
