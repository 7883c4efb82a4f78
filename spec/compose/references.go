package compose

import (
	"maps"
	"slices"

	"github.com/stackrun/stack/spec"

	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/compose-spec/compose-go/v2/template"
	"gopkg.in/yaml.v3"
)

// checkReferences looks at every file a stack file makes compose-go read (env_file, label_file,
// extends.file, include) before compose-go reads it: each must be a regular file no larger than
// MaxFileSize. Without this, env_file: /dev/zero or include: /dev/stdin would hang the loader.
// Paths are interpolated with env as compose-go would; a reference that does not resolve or does
// not exist is left for compose-go to report.
func checkReferences(src *source, env map[string]string, c *collector) {
	dir := filepath.Dir(src.Path)
	check := func(key string, n *yaml.Node) {
		if n == nil || n.Kind != yaml.ScalarNode || n.Value == "" {
			return
		}
		p, err := template.Substitute(n.Value, func(k string) (string, bool) {
			v, ok := env[k]
			return v, ok
		})
		if err != nil || p == "" {
			return
		}
		if !filepath.IsAbs(p) {
			p = filepath.Join(dir, p)
		}
		fi, err := os.Stat(p)
		if err != nil {
			return
		}
		pos := Position{File: src.Path, Line: n.Line, Column: n.Column}
		switch {
		case !fi.Mode().IsRegular():
			c.add(&spec.Problem{File: pos.File, Line: pos.Line, Column: pos.Column, Key: key,
				Message: fmt.Sprintf("%s is not a regular file", n.Value)})
		case fi.Size() > MaxFileSize:
			c.add(&spec.Problem{File: pos.File, Line: pos.Line, Column: pos.Column, Key: key,
				Message: fmt.Sprintf("%s is larger than %d bytes", n.Value, MaxFileSize)})
		}
	}
	// pathList checks a string, a list of strings, or a list of {path: ...} entries.
	var pathList func(key string, n *yaml.Node)
	pathList = func(key string, n *yaml.Node) {
		if n == nil {
			return
		}
		if n.Kind == yaml.ScalarNode {
			check(key, n)
			return
		}
		if n.Kind != yaml.SequenceNode {
			return
		}
		for i, e := range n.Content {
			k := fmt.Sprintf("%s[%d]", key, i)
			if e.Kind == yaml.MappingNode {
				pn := mapValue(e, "path")
				if pn != nil && pn.Kind == yaml.SequenceNode {
					for j, x := range pn.Content {
						check(fmt.Sprintf("%s.path[%d]", k, j), x)
					}
					continue
				}
				check(k+".path", pn)
				pathList(k+".env_file", mapValue(e, "env_file"))
				continue
			}
			check(k, e)
		}
	}
	for _, doc := range src.Docs {
		root := docRoot(doc)
		pathList("include", mapValue(root, "include"))
		services := mapValue(root, "services")
		if services == nil || services.Kind != yaml.MappingNode {
			continue
		}
		for i := 0; i+1 < len(services.Content); i += 2 {
			name, svc := services.Content[i].Value, services.Content[i+1]
			key := "services." + name
			pathList(key+".env_file", mapValue(svc, "env_file"))
			pathList(key+".label_file", mapValue(svc, "label_file"))
			if ext := mapValue(svc, "extends"); ext != nil && ext.Kind == yaml.MappingNode {
				check(key+".extends.file", mapValue(ext, "file"))
			}
		}
	}
}

// reBareVar finds ${NAME} and $NAME (not $$NAME, an escaped dollar) without a default or a
// required marker: the references compose-go silently replaces with "" when NAME is unset.
var reBareVar = regexp.MustCompile(`(^|[^$])\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))`)

// warnUnsetVariables warns, at each place it is used, about a variable that is not set and has
// no default: compose-go uses an empty string, which is rarely what the author meant.
func warnUnsetVariables(src *source, idx map[string]posEntry, env map[string]string, c *collector) {
	type at struct {
		pos  Position
		name string
	}
	seen := map[at]bool{}
	for _, key := range slices.Sorted(maps.Keys(idx)) {
		e := idx[key]
		if !e.Scalar || !strings.Contains(e.Value, "$") || strings.HasPrefix(key, "x-") {
			continue
		}
		for _, m := range reBareVar.FindAllStringSubmatch(e.Value, -1) {
			name := m[2] + m[3]
			if _, ok := env[name]; ok {
				continue
			}
			k := at{e.Position, name}
			if seen[k] {
				continue
			}
			seen[k] = true
			c.add(&spec.Problem{File: e.File, Line: e.Line, Column: e.Column, Key: key, Severity: spec.SeverityWarning,
				Message: fmt.Sprintf("variable %s is not set: an empty string is used", name)})
		}
	}
}
