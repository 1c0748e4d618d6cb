package router

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
)

type segKind uint8

// The order of the kinds is their precedence: literal beats {name}, which
// beats a final {name...}.
const (
	segLit   segKind = iota // text is the literal
	segParam                // text is the parameter name
	segRest                 // text is the parameter name, "*" for {*}
)

// tseg is one segment of a path template.
type tseg struct {
	kind segKind
	text string
}

// isTemplate reports whether a path is meant as a template. A stray brace
// counts, so that parseTemplate reports it rather than the path being taken
// as an exact path that never matches what the user meant.
func isTemplate(path string) bool { return strings.ContainsAny(path, "{}") }

// ValidateTemplate reports a problem with a path template ("" path ok) so
// config validation can reuse it. Paths without braces are exact paths and
// only need to start with '/'.
func ValidateTemplate(path string) error {
	switch {
	case path == "":
		return nil
	case path[0] != '/':
		return fmt.Errorf("path %q must start with '/'", path)
	case !isTemplate(path):
		return nil
	}
	_, err := parseTemplate(path)
	return err
}

// parseTemplate splits a template into segments. Errors quote the template
// because the caller shows them next to the route, not the path.
func parseTemplate(path string) ([]tseg, error) {
	if path == "" || path[0] != '/' {
		return nil, fmt.Errorf("path %q must start with '/'", path)
	}
	parts := strings.Split(path[1:], "/")
	segs := make([]tseg, 0, len(parts))
	seen := map[string]bool{}
	for i, p := range parts {
		s, err := parseSegment(p)
		if err != nil {
			return nil, fmt.Errorf("path template %q: %w", path, err)
		}
		if s.kind == segRest && i != len(parts)-1 {
			return nil, fmt.Errorf("path template %q: %q must be the last segment", path, p)
		}
		if s.kind != segLit && s.text != "*" {
			if seen[s.text] {
				return nil, fmt.Errorf("path template %q: parameter {%s} appears twice", path, s.text)
			}
			seen[s.text] = true
		}
		segs = append(segs, s)
	}
	return segs, nil
}

var errSegment = errors.New(`a segment is either literal or a whole {name}; the last may be {name...} or {*}`)

func parseSegment(p string) (tseg, error) {
	if !strings.ContainsAny(p, "{}") {
		return tseg{segLit, p}, nil
	}
	if len(p) < 2 || p[0] != '{' || p[len(p)-1] != '}' || strings.ContainsAny(p[1:len(p)-1], "{}") {
		return tseg{}, fmt.Errorf("segment %q: %w", p, errSegment)
	}
	name := p[1 : len(p)-1]
	if name == "*" {
		return tseg{segRest, "*"}, nil
	}
	kind := segParam
	if rest, ok := strings.CutSuffix(name, "..."); ok {
		kind, name = segRest, rest
	}
	if !validName(name) {
		return tseg{}, fmt.Errorf("segment %q: a parameter name is letters, digits and '_', not starting with a digit", p)
	}
	return tseg{kind, name}, nil
}

func validName(s string) bool {
	if s == "" || '0' <= s[0] && s[0] <= '9' {
		return false
	}
	for _, c := range []byte(s) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// tnode is a node of the template trie: one per distinct sequence of
// segment kinds and literals, so templates that differ only in parameter
// names share their nodes and tie by config order.
type tnode struct {
	lit    map[string]*tnode // literal children when there are many
	few    []tedge           // literal children when there are few
	param  *tnode
	rest   []*Route // templates whose final {name...} starts after this node
	routes []*Route // templates that end at this node
}

// tedge is a literal child of a tnode.
type tedge struct {
	seg  string
	node *tnode
}

// maxFew is the literal fan-out up to which a scan of a slice beats hashing
// the segment for a map lookup. Most nodes have one literal child.
const maxFew = 8

func (n *tnode) insert(rt *Route) {
	for _, s := range rt.tmpl {
		switch s.kind {
		case segLit:
			if n.lit == nil {
				n.lit = map[string]*tnode{}
			}
			if n.lit[s.text] == nil {
				n.lit[s.text] = &tnode{}
			}
			n = n.lit[s.text]
		case segParam:
			if n.param == nil {
				n.param = &tnode{}
			}
			n = n.param
		case segRest:
			n.rest = append(n.rest, rt)
			return
		}
	}
	n.routes = append(n.routes, rt)
}

// finish moves small literal fan-outs from the map into slices, once all
// templates are inserted.
func (n *tnode) finish() {
	for _, c := range n.lit {
		c.finish()
	}
	if n.param != nil {
		n.param.finish()
	}
	if len(n.lit) <= maxFew {
		for seg, c := range n.lit {
			n.few = append(n.few, tedge{seg, c})
		}
		n.lit = nil
	}
}

func (n *tnode) child(seg string) *tnode {
	if n.lit != nil {
		return n.lit[seg]
	}
	for i := range n.few {
		if n.few[i].seg == seg {
			return n.few[i].node
		}
	}
	return nil
}

// match walks the trie depth first, literal child before parameter child
// before catch-all. That visits the templates matching path in precedence
// order, so the first one whose conditions hold is the answer. p is the
// unmatched rest of the path: empty or starting with '/'.
func (n *tnode) match(p string, r *http.Request) *Route {
	if p == "" {
		return firstOK(n.routes, r)
	}
	if p[0] != '/' {
		return nil // only at the root: paths like "*" or ""
	}
	seg, tail := cutSegment(p[1:])
	if c := n.child(seg); c != nil {
		if rt := c.match(tail, r); rt != nil {
			return rt
		}
	}
	if n.param != nil && seg != "" {
		if rt := n.param.match(tail, r); rt != nil {
			return rt
		}
	}
	return firstOK(n.rest, r)
}
