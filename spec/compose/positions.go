package compose

import (
	"maps"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"
	"gopkg.in/yaml.v3"
)

// Position is where a key is written: file, line and column (1-based).
type Position struct {
	File   string
	Line   int
	Column int
}

// positions maps key paths (services.web.ports[1], networks.front.ipam.config[0].subnet) to where
// they are written. With several -f files the file merged last that writes a key wins, since that
// is the one that defines the merged value. Services pulled in through extends fall back to the
// positions of the service they extend.
type positions struct {
	files   []map[string]posEntry // one per source, in merge order
	extends map[string]extendsRef // service name -> what it extends, from the highest-priority file
	ext     map[string]map[string]posEntry
	// ports: service -> for each file writing its ports:, how many ports each item expands to
	ports map[string][]portCounts
}

// posEntry is one indexed key: where it is written and, for scalars, the text written there
// (before interpolation).
type posEntry struct {
	Position
	Value  string
	Scalar bool
}

// portCounts is, for one file, how many ports each item of a service's ports: expands to.
type portCounts struct {
	file   int // index in files
	counts []int
}

type extendsRef struct {
	file    string // absolute, "" for the same file
	service string
	from    int // index in files of the file that declares it
}

func newPositions() *positions {
	return &positions{extends: map[string]extendsRef{}, ext: map[string]map[string]posEntry{}, ports: map[string][]portCounts{}}
}

// add indexes one source; later calls take priority over earlier ones.
func (ps *positions) add(src *source) {
	idx := indexSource(src)
	ps.files = append(ps.files, idx)
	for _, doc := range src.Docs {
		services := mapValue(docRoot(doc), "services")
		if services == nil || services.Kind != yaml.MappingNode {
			continue
		}
		for i := 0; i+1 < len(services.Content); i += 2 {
			name := services.Content[i].Value
			if pn := mapValue(services.Content[i+1], "ports"); pn != nil && pn.Kind == yaml.SequenceNode {
				counts := make([]int, len(pn.Content))
				for j, item := range pn.Content {
					counts[j] = 1
					if item.Kind == yaml.ScalarNode {
						if pcs, err := types.ParsePortConfig(item.Value); err == nil && len(pcs) > 0 {
							counts[j] = len(pcs)
						}
					}
				}
				ps.ports[name] = append(ps.ports[name], portCounts{file: len(ps.files) - 1, counts: counts})
			}
			ext := mapValue(services.Content[i+1], "extends")
			if ext == nil {
				continue
			}
			ref := extendsRef{from: len(ps.files) - 1}
			switch ext.Kind {
			case yaml.ScalarNode:
				ref.service = ext.Value
			case yaml.MappingNode:
				if n := mapValue(ext, "service"); n != nil {
					ref.service = n.Value
				}
				if n := mapValue(ext, "file"); n != nil && n.Value != "" {
					ref.file = n.Value
					if !filepath.IsAbs(ref.file) {
						ref.file = filepath.Join(filepath.Dir(src.Path), ref.file)
					}
				}
			}
			if ref.service != "" {
				ps.extends[name] = ref
			}
		}
	}
}

// lookup returns the position of key, or of its closest written ancestor.
func (ps *positions) lookup(key string) (Position, bool) {
	for k := key; k != ""; k = parentKey(k) {
		if e, ok := ps.exact(k, 0); ok {
			return e.Position, true
		}
		// A map key of the merged model may be a list item in the file: depends_on: [db]
		// is indexed as depends_on[0] with the value db, environment: [A=1] as
		// environment[0] with the value A=1.
		if parent := parentKey(k); parent != "" && !strings.HasSuffix(k, "]") {
			name := k[len(parent)+1:]
			for i := 0; i < 1000; i++ {
				e, ok := ps.exact(parent+"["+strconv.Itoa(i)+"]", 0)
				if !ok {
					break
				}
				if e.Scalar && (e.Value == name || strings.HasPrefix(e.Value, name+"=")) {
					return e.Position, true
				}
			}
		}
	}
	return Position{}, false
}

// raw returns the scalar text written at exactly key, if any.
func (ps *positions) raw(key string) (string, bool) {
	e, ok := ps.exact(key, 0)
	if !ok || !e.Scalar {
		return "", false
	}
	return e.Value, true
}

// findValue returns the key of a scalar whose text is tok (or, failing that, contains it),
// searching the highest-priority file first. It places compose-go errors that name only a value.
func (ps *positions) findValue(tok string) (string, bool) {
	if tok == "" {
		return "", false
	}
	for _, exactMatch := range []bool{true, false} {
		for i := len(ps.files) - 1; i >= 0; i-- {
			for _, k := range slices.Sorted(maps.Keys(ps.files[i])) {
				e := ps.files[i][k]
				if !e.Scalar {
					continue
				}
				if exactMatch && e.Value == tok || !exactMatch && strings.Contains(e.Value, tok) {
					return k, true
				}
			}
		}
	}
	return "", false
}

func (ps *positions) exact(key string, hops int) (posEntry, bool) {
	for i := len(ps.files) - 1; i >= 0; i-- {
		if p, ok := ps.files[i][key]; ok {
			return p, true
		}
	}
	if hops > 8 {
		return posEntry{}, false
	}
	// services.NAME.rest -> services.BASE.rest in the file extends names.
	rest, ok := strings.CutPrefix(key, "services.")
	if !ok {
		return posEntry{}, false
	}
	name, tail, _ := strings.Cut(rest, ".")
	if i := strings.IndexByte(name, '['); i >= 0 {
		return posEntry{}, false
	}
	ref, ok := ps.extends[name]
	if !ok || tail == "" || ref.service == name && ref.file == "" {
		return posEntry{}, false
	}
	base := "services." + ref.service + "." + tail
	if ref.file == "" {
		return ps.exact(base, hops+1)
	}
	idx, ok := ps.ext[ref.file]
	if !ok {
		idx = nil
		if src, err := readSource(ref.file); err == nil {
			idx = indexSource(src)
		}
		ps.ext[ref.file] = idx
	}
	p, ok := idx[base]
	return p, ok
}

// portRef names the source item that produced one of the ports compose-go expanded and merged:
// its key and, when known, the position in the file that wrote it.
type portRef struct {
	key string
	pos Position
	ok  bool
}

// portRef finds the source item behind the i-th of n ports of service. A range
// "8000-8001:80-81" is one item and two ports; with several files the merged list is each
// file's items in merge order. When the counts do not add up (compose-go dropped a duplicate),
// the items cannot be told apart and the list itself is named.
func (ps *positions) portRef(service string, i, n int) portRef {
	key := "services." + service + ".ports"
	sum := 0
	for _, f := range ps.ports[service] {
		for _, c := range f.counts {
			sum += c
		}
	}
	if sum != n || len(ps.ports[service]) == 0 {
		return portRef{key: key}
	}
	for _, f := range ps.ports[service] {
		for j, c := range f.counts {
			if i < c {
				k := key + "[" + strconv.Itoa(j) + "]"
				e, ok := ps.files[f.file][k]
				return portRef{key: k, pos: e.Position, ok: ok}
			}
			i -= c
		}
	}
	return portRef{key: key}
}

// listItemWith resolves the first "[]" of a compose-go path (services.web.environment.[]) to the
// list item whose written text mentions text (a variable name), or to the list when none does.
func (ps *positions) listItemWith(key, text string) string {
	prefix, rest, _ := strings.Cut(key, ".[]")
	for i := 0; i < 10000; i++ {
		item := prefix + "[" + strconv.Itoa(i) + "]"
		e, ok := ps.exact(item+rest, 0)
		if !ok {
			if _, ok := ps.exact(item, 0); !ok {
				break
			}
			continue
		}
		if e.Scalar && strings.Contains(e.Value, text) {
			return item + rest
		}
	}
	return prefix
}

// mountWithoutSource finds a long-syntax volumes entry of type typ written without a source.
func (ps *positions) mountWithoutSource(typ string) (string, bool) {
	for i := len(ps.files) - 1; i >= 0; i-- {
		for _, k := range slices.Sorted(maps.Keys(ps.files[i])) {
			item, ok := strings.CutSuffix(k, ".type")
			if !ok || !strings.HasPrefix(k, "services.") || !strings.HasSuffix(item, "]") || ps.files[i][k].Value != typ {
				continue
			}
			if _, has := ps.files[i][item+".source"]; !has {
				return item, true
			}
		}
	}
	return "", false
}

// parentKey strips the last segment of a key path: a.b[2] -> a.b, a.b -> a.
func parentKey(k string) string {
	if strings.HasSuffix(k, "]") {
		if i := strings.LastIndexByte(k, '['); i >= 0 {
			return k[:i]
		}
	}
	if i := strings.LastIndexByte(k, '.'); i >= 0 {
		return k[:i]
	}
	return ""
}

func docRoot(doc *yaml.Node) *yaml.Node {
	if doc != nil && doc.Kind == yaml.DocumentNode && len(doc.Content) > 0 {
		return doc.Content[0]
	}
	return doc
}

// mapValue returns the value of key in mapping m, nil if absent.
func mapValue(m *yaml.Node, key string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

// indexSource builds key path -> position for one file. A mapping entry is placed at its value
// when the value is a scalar (what is wrong is usually the value) and at its key otherwise; a
// sequence item at the item.
func indexSource(src *source) map[string]posEntry {
	idx := map[string]posEntry{}
	w := indexWalker{file: src.Path, idx: idx}
	for _, doc := range src.Docs {
		w.walk(docRoot(doc), "", 0)
	}
	return idx
}

type indexWalker struct {
	file  string
	idx   map[string]posEntry
	steps int
}

// put records key at node n; value is the scalar the key holds, if it holds one.
func (w *indexWalker) put(key string, n, value *yaml.Node) {
	if key == "" {
		return
	}
	e := posEntry{Position: Position{File: w.file, Line: n.Line, Column: n.Column}}
	if value != nil && value.Kind == yaml.ScalarNode {
		e.Value, e.Scalar = value.Value, true
	}
	w.idx[key] = e
}

func (w *indexWalker) walk(n *yaml.Node, key string, depth int) {
	// The limit checks ran on this tree already; these bounds only keep the walk itself safe.
	w.steps++
	if n == nil || depth > MaxDepth || w.steps > MaxExpandedNodes {
		return
	}
	if n.Kind == yaml.AliasNode {
		n = n.Alias
		if n == nil {
			return
		}
	}
	switch n.Kind {
	case yaml.MappingNode:
		// Merge keys (<<: *base) first, so keys written here override what they bring in.
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == "<<" && n.Content[i].Tag == "!!merge" {
				v := n.Content[i+1]
				if v.Kind == yaml.AliasNode {
					w.walk(v, key, depth+1)
				} else if v.Kind == yaml.SequenceNode {
					for _, e := range v.Content {
						w.walk(e, key, depth+1)
					}
				}
			}
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Value == "<<" && k.Tag == "!!merge" {
				continue
			}
			child := k.Value
			if key != "" {
				child = key + "." + k.Value
			}
			vv := v
			if vv.Kind == yaml.AliasNode && vv.Alias != nil {
				vv = vv.Alias
			}
			if vv.Kind == yaml.ScalarNode {
				w.put(child, v, vv)
			} else {
				w.put(child, k, vv)
			}
			w.walk(v, child, depth+1)
		}
	case yaml.SequenceNode:
		for i, e := range n.Content {
			child := key + "[" + strconv.Itoa(i) + "]"
			ee := e
			if ee.Kind == yaml.AliasNode && ee.Alias != nil {
				ee = ee.Alias
			}
			w.put(child, e, ee)
			w.walk(e, child, depth+1)
		}
	}
}
