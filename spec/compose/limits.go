package compose

import (
	"github.com/stackrun/stack/spec"

	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Limits against hostile stack files. They are checked on the yaml.v3 node tree of every file
// before compose-go decodes it: yaml.v3 builds that tree without expanding aliases, so its size
// is bounded by the file size, and the expansion count below is computed with one memoized walk.
const (
	// MaxFileSize is the largest stack file (or env_file) stack reads. Real Compose files are a
	// few KiB; a generated 200-service file is well under 1 MiB.
	MaxFileSize = 4 << 20
	// MaxExpandedNodes bounds the number of YAML nodes a document has once every alias is
	// expanded. compose-go walks the expanded document, so a "billion laughs" file (a few
	// hundred bytes expanding to 10^9 nodes) must be rejected before it gets there.
	MaxExpandedNodes = 100_000
	// MaxDepth bounds mapping/sequence nesting, counted through aliases.
	MaxDepth = 64
)

// source is one stack file as read and parsed by yaml.v3, for the limit checks and the
// position index.
type source struct {
	Path string
	Docs []*yaml.Node // document nodes; a Compose file normally has exactly one
}

// readSource reads and parses one file, enforcing the size, expansion and nesting limits.
func readSource(path string) (*source, error) {
	data, err := readCapped(path, MaxFileSize)
	if err != nil {
		return nil, err
	}
	return parseSource(path, data)
}

// readCapped reads a whole file, failing when it is larger than limit bytes.
func readCapped(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if int64(len(data)) > limit {
		return nil, &spec.Problem{File: path, Message: fmt.Sprintf("file is larger than %d bytes", limit)}
	}
	return data, nil
}

func parseSource(path string, data []byte) (*source, error) {
	if len(data) > MaxFileSize {
		return nil, &spec.Problem{File: path, Message: fmt.Sprintf("file is larger than %d bytes", MaxFileSize)}
	}
	src := &source{Path: path}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		doc := new(yaml.Node)
		err := dec.Decode(doc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, syntaxProblem(path, err)
		}
		if err := checkNodeLimits(path, doc); err != nil {
			return nil, err
		}
		src.Docs = append(src.Docs, doc)
	}
	return src, nil
}

// checkNodeLimits counts the nodes of doc with every alias expanded, and its nesting depth,
// without materializing the expansion: each node's expanded size and height are computed once.
func checkNodeLimits(path string, doc *yaml.Node) error {
	c := limitCounter{seen: map[*yaml.Node]subtree{}, active: map[*yaml.Node]bool{}}
	if _, err := c.count(doc, 0); err != nil {
		return &spec.Problem{File: path, Line: c.errLine, Column: c.errCol, Message: err.Error()}
	}
	return nil
}

// subtree is the expanded size (node count) and height (mapping/sequence nesting) of a node.
type subtree struct{ size, height int }

type limitCounter struct {
	seen    map[*yaml.Node]subtree
	active  map[*yaml.Node]bool
	errLine int
	errCol  int
}

var (
	errTooManyNodes = fmt.Errorf("document expands to more than %d YAML nodes through aliases (refusing a billion-laughs style file)", MaxExpandedNodes)
	errTooDeep      = fmt.Errorf("nesting deeper than %d levels", MaxDepth)
	errAliasCycle   = errors.New("alias refers to a node that contains it")
)

// count returns the expanded size and height of n, found at nesting depth. It fails as soon as
// the size passes MaxExpandedNodes or depth+height passes MaxDepth, so a hostile file costs at
// most about MaxExpandedNodes steps whatever it would expand to.
func (c *limitCounter) count(n *yaml.Node, depth int) (subtree, error) {
	if n == nil {
		return subtree{}, nil
	}
	fail := func(err error) (subtree, error) {
		c.errLine, c.errCol = n.Line, n.Column
		return subtree{}, err
	}
	if depth > MaxDepth {
		return fail(errTooDeep)
	}
	if st, ok := c.seen[n]; ok {
		if depth+st.height > MaxDepth {
			return fail(errTooDeep)
		}
		return st, nil
	}
	if c.active[n] {
		return fail(errAliasCycle)
	}
	c.active[n] = true
	defer delete(c.active, n)
	st := subtree{size: 1}
	if n.Kind == yaml.AliasNode {
		a, err := c.count(n.Alias, depth)
		if err != nil {
			return subtree{}, err
		}
		st = a
	} else {
		nest := 0
		if n.Kind == yaml.MappingNode || n.Kind == yaml.SequenceNode {
			nest = 1
		}
		for _, ch := range n.Content {
			a, err := c.count(ch, depth+nest)
			if err != nil {
				return subtree{}, err
			}
			st.size += a.size
			st.height = max(st.height, a.height+nest)
			if st.size > MaxExpandedNodes {
				return fail(errTooManyNodes)
			}
		}
	}
	c.seen[n] = st
	return st, nil
}

var reYAMLv3Line = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// syntaxProblem places a yaml.v3 syntax error ("yaml: line 4: did not find expected ',' or ']'").
func syntaxProblem(path string, err error) *spec.Problem {
	p := &spec.Problem{File: path, Message: "YAML syntax: " + strings.TrimPrefix(err.Error(), "yaml: ")}
	if m := reYAMLv3Line.FindStringSubmatch(err.Error()); m != nil {
		p.Line, _ = strconv.Atoi(m[1])
		p.Column = 1
		p.Message = "YAML syntax: " + m[2]
		// yaml.v3 prints parser errors with the 0-based line of their context (where the
		// unclosed sequence or mapping starts) and scanner errors 1-based; the parser's
		// messages are the "did not find expected" family below.
		if strings.HasPrefix(m[2], "did not find expected") && !strings.HasSuffix(m[2], "line break") {
			p.Line++
		}
	}
	return p
}
