package router

import (
	"net/http"
	"slices"
	"strings"
)

// pnode is a node of a compressed byte trie of path prefixes. Its full
// prefix is the concatenation of the labels from the root down.
type pnode struct {
	label    string
	indices  string   // first byte of each child's label, parallel to children
	children []*pnode //
	routes   []*Route // routes whose prefix ends exactly here, in config order
	// up is the nearest ancestor with routes. After the walk has found the
	// deepest matching prefix, the shorter ones are reached through up with
	// no stack to keep.
	up *pnode
}

// buildPrefixTrie builds the trie of the prefixes in m, which must not be
// empty.
func buildPrefixTrie(m map[string][]*Route) *pnode {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return buildPrefixNode(keys, m, 0, nil)
}

// buildPrefixNode builds the node for sorted, distinct keys that share
// their first start bytes; up is the nearest ancestor with routes.
func buildPrefixNode(keys []string, m map[string][]*Route, start int, up *pnode) *pnode {
	// In sorted order the common prefix of all keys is that of the first
	// and the last.
	lcp := commonPrefixLen(keys[0], keys[len(keys)-1])
	n := &pnode{label: keys[0][start:lcp], up: up}
	if len(keys[0]) == lcp { // a key that is a prefix of the others sorts first
		n.routes = m[keys[0]]
		keys = keys[1:]
		up = n
	}
	for len(keys) > 0 {
		c := keys[0][lcp]
		j := 1
		for j < len(keys) && keys[j][lcp] == c {
			j++
		}
		n.indices += string(c)
		n.children = append(n.children, buildPrefixNode(keys[:j], m, lcp, up))
		keys = keys[j:]
	}
	return n
}

func commonPrefixLen(a, b string) int {
	n := min(len(a), len(b))
	for i := range n {
		if a[i] != b[i] {
			return i
		}
	}
	return n
}

// match returns the route with the longest prefix of path whose conditions
// hold.
func (n *pnode) match(path string, r *http.Request) *Route {
	var deepest *pnode
	for n != nil && strings.HasPrefix(path, n.label) {
		path = path[len(n.label):]
		if n.routes != nil {
			deepest = n
		}
		if path == "" {
			break
		}
		n = n.child(path[0])
	}
	for p := deepest; p != nil; p = p.up {
		if rt := firstOK(p.routes, r); rt != nil {
			return rt
		}
	}
	return nil
}

func (n *pnode) child(c byte) *pnode {
	if i := strings.IndexByte(n.indices, c); i >= 0 {
		return n.children[i]
	}
	return nil
}
