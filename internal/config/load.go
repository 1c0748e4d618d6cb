package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// Load reads, decodes and validates a config file. On failure the error is
// an ErrorList naming every problem as FILE:LINE:COL: reason.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, ErrorList{{File: path, Msg: err.Error()}}
	}
	return Parse(path, data)
}

// Parse decodes and validates config text; file names it in errors.
func Parse(file string, data []byte) (*Config, error) {
	p := &parser{file: file}
	cfg := p.decode(data)
	if cfg == nil {
		return nil, p.errs.sorted()
	}
	cfg.File, cfg.root = file, p.root
	applyDefaults(cfg)
	p.validate(cfg)
	if len(p.errs) > 0 {
		return nil, p.errs.sorted()
	}
	return cfg, nil
}

type parser struct {
	file string
	root *yaml.Node // the document's top mapping, for error positions
	errs ErrorList
}

var (
	yamlLineRe     = regexp.MustCompile(`^(?:yaml: )?line (\d+)(?::(\d+))?: (.*)$`)
	unknownFieldRe = regexp.MustCompile(`^field (.+) not found in type \S+$`)
	duplicateKeyRe = regexp.MustCompile(`^mapping key (".*") already defined at line \d+$`)
	typeErrorRe    = regexp.MustCompile("^cannot unmarshal (!!\\w+)(?: `(.*?)(?:\\.\\.\\.)?`)? into ")
)

// parserProblems are the problems yaml.v3's parser (as opposed to its
// scanner) reports. For them it prints the 0-based line of the construct
// being parsed, and no line at all for the first line, so one is added.
var parserProblems = map[string]bool{
	"did not find expected <stream-start>":   true,
	"did not find expected <document start>": true,
	"found undefined tag handle":             true,
	"did not find expected node content":     true,
	"did not find expected '-' indicator":    true,
	"did not find expected key":              true,
	"did not find expected ',' or ']'":       true,
	"did not find expected ',' or '}'":       true,
	"found duplicate %YAML directive":        true,
	"found incompatible YAML document":       true,
	"found duplicate %TAG directive":         true,
}

// decode parses the YAML strictly: unknown keys and wrongly typed values are
// all collected, each with its position. It returns nil when the text is not
// YAML at all or holds no document.
func (p *parser) decode(data []byte) *Config {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		p.yamlError(err, data)
		return nil
	}
	if len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		p.errs = append(p.errs, &Error{File: p.file, Line: max(doc.Line, 1), Col: 1, Msg: "config must be a YAML mapping of keys (listen, backends, routes, ...)"})
		return nil
	}
	p.root = doc.Content[0]
	cfg := &Config{}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil {
		p.yamlError(err, data)
		var te *yaml.TypeError
		if !errors.As(err, &te) {
			// Decoding stopped part way (for example on excessive
			// aliasing): validating the rest would only add noise.
			return nil
		}
	}
	// A second document would be ignored silently; say so instead.
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case err == nil:
		if n := extra.Content; len(n) > 0 && !(n[0].Kind == yaml.ScalarNode && n[0].ShortTag() == "!!null" && n[0].Value == "") {
			p.errs = append(p.errs, &Error{File: p.file, Line: max(n[0].Line, 1), Col: max(n[0].Column, 1),
				Msg: `a second YAML document ("---") is not allowed: umbra reads one document per config file`})
		}
	case !errors.Is(err, io.EOF):
		p.yamlError(err, data)
	}
	return cfg
}

// yamlError turns yaml.v3's "line N: msg" strings into positioned errors.
// yaml.v3 gives no column and sometimes no line; both are recovered from
// the parsed document or the text where possible, else 1.
func (p *parser) yamlError(err error, data []byte) {
	var te *yaml.TypeError
	msgs := []string{err.Error()}
	if errors.As(err, &te) {
		msgs = te.Errors
	}
	for _, m := range msgs {
		e := &Error{File: p.file, Msg: strings.TrimPrefix(m, "yaml: ")}
		if g := yamlLineRe.FindStringSubmatch(m); g != nil {
			e.Line, _ = strconv.Atoi(g[1])
			e.Col, _ = strconv.Atoi(g[2])
			e.Msg = g[3]
		}
		if parserProblems[e.Msg] {
			e.Line++
		}
		if g := unknownFieldRe.FindStringSubmatch(e.Msg); g != nil {
			e.Msg = fmt.Sprintf("unknown key %q", g[1])
			e.Col = p.keyColumn(p.root, e.Line, g[1])
		}
		if g := duplicateKeyRe.FindStringSubmatch(e.Msg); g != nil {
			if name, err := strconv.Unquote(g[1]); err == nil {
				e.Col = p.keyColumn(p.root, e.Line, name)
			}
		}
		if g := typeErrorRe.FindStringSubmatch(e.Msg); g != nil && e.Col == 0 {
			e.Col = valueColumn(p.root, e.Line, g[1], g[2])
		}
		if e.Line == 0 {
			e.Line, e.Col = 1, 1
			if badCharProblem(e.Msg) {
				if line, col, ok := badCharPos(data); ok {
					e.Line, e.Col = line, col
				}
			}
		}
		if e.Col == 0 {
			e.Col = 1
		}
		p.errs = append(p.errs, e)
	}
}

// valueColumn finds the column of the first non-key node on line with the
// given tag whose value starts with prefix, for "cannot unmarshal" errors.
func valueColumn(n *yaml.Node, line int, tag, prefix string) int {
	if n == nil {
		return 0
	}
	for i, c := range n.Content {
		if n.Kind == yaml.MappingNode && i%2 == 0 {
			continue // a key; keys are never what failed to decode
		}
		if c.Line == line && c.ShortTag() == tag && strings.HasPrefix(c.Value, prefix) {
			return c.Column
		}
		if col := valueColumn(c, line, tag, prefix); col > 0 {
			return col
		}
	}
	return 0
}

// badCharProblem reports whether msg is a yaml.v3 reader error about an
// unreadable character.
func badCharProblem(msg string) bool {
	return strings.Contains(msg, "UTF-8") || msg == "control characters are not allowed" || msg == "invalid Unicode character"
}

// badCharPos finds the first byte yaml.v3 refuses to read (invalid UTF-8
// or a control character), whose errors carry no line.
func badCharPos(data []byte) (line, col int, ok bool) {
	line, col = 1, 1
	for i := 0; i < len(data); {
		r, size := utf8.DecodeRune(data[i:])
		bad := r == utf8.RuneError && size <= 1
		if !(r == '\t' || r == '\n' || r == '\r' || r >= 0x20 && r <= 0x7e || r == 0x85 ||
			r >= 0xa0 && r <= 0xd7ff || r >= 0xe000 && r <= 0xfffd || r >= 0x10000 && r <= 0x10ffff) {
			bad = true
		}
		if bad && !(i == 0 && r == 0xfeff) {
			return line, col, true
		}
		if r == '\n' {
			line, col = line+1, 0
		}
		i += size
		col++
	}
	return 0, 0, false
}

// keyColumn finds the column of mapping key name on line, for unknown-key errors.
func (p *parser) keyColumn(n *yaml.Node, line int, name string) int {
	if n == nil {
		return 0
	}
	if n.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(n.Content); i += 2 {
			if k := n.Content[i]; k.Line == line && k.Value == name {
				return k.Column
			}
		}
	}
	for _, c := range n.Content {
		if col := p.keyColumn(c, line, name); col > 0 {
			return col
		}
	}
	return 0
}

// node returns the YAML node at path (map keys as strings, list indexes as
// ints), or the deepest existing ancestor when the path is not in the file.
func (p *parser) node(path ...any) (n *yaml.Node, found bool) { return nodeAt(p.root, path) }

func nodeAt(root *yaml.Node, path []any) (n *yaml.Node, found bool) {
	n = root
	for _, step := range path {
		next := child(n, step)
		if next == nil {
			return n, false
		}
		n = next
	}
	return n, n != nil
}

func child(n *yaml.Node, step any) *yaml.Node {
	return childDepth(n, step, 0)
}

// childDepth follows aliases and "<<" merge keys, as the decoder does, so
// values written through an anchor are found; depth stops merge cycles.
func childDepth(n *yaml.Node, step any, depth int) *yaml.Node {
	if n == nil || depth > 8 {
		return nil
	}
	if n.Kind == yaml.AliasNode {
		n = n.Alias
		if n == nil {
			return nil
		}
	}
	switch s := step.(type) {
	case string:
		if n.Kind != yaml.MappingNode {
			return nil
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == s && n.Content[i].ShortTag() != "!!merge" {
				return n.Content[i+1]
			}
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].ShortTag() != "!!merge" {
				continue
			}
			m := n.Content[i+1]
			if m.Kind == yaml.AliasNode && m.Alias != nil {
				m = m.Alias
			}
			srcs := []*yaml.Node{m}
			if m.Kind == yaml.SequenceNode {
				srcs = m.Content
			}
			for _, src := range srcs {
				if c := childDepth(src, s, depth+1); c != nil {
					return c
				}
			}
		}
	case int:
		if n.Kind == yaml.SequenceNode && s < len(n.Content) {
			return n.Content[s]
		}
	}
	return nil
}

func (p *parser) has(path ...any) bool {
	_, ok := p.node(path...)
	return ok
}

func (p *parser) pos(path ...any) Pos {
	n, _ := p.node(path...)
	if n == nil {
		return Pos{Line: 1, Col: 1}
	}
	return Pos{Line: n.Line, Col: n.Column}
}

// Position is where the value at path (map keys as strings, list indexes
// as ints: "routes", 0, "match", "path") is written in the file, or where
// its nearest written ancestor is; the zero Pos for a config not parsed
// from text.
func (c *Config) Position(path ...any) Pos {
	if c.root == nil {
		return Pos{}
	}
	n, _ := nodeAt(c.root, path)
	return Pos{Line: n.Line, Col: n.Column}
}

// ErrorAt is a problem found after loading (when the config is compiled)
// in the value at path, reported like the loader's; a nil path names the
// file as a whole.
func (c *Config) ErrorAt(path []any, format string, args ...any) *Error {
	e := &Error{File: c.File, Msg: fmt.Sprintf(format, args...)}
	if path != nil {
		pos := c.Position(path...)
		e.Line, e.Col = pos.Line, pos.Col
	}
	return e
}

// errorf records a problem at the value found at path.
func (p *parser) errorf(path []any, format string, args ...any) {
	pos := p.pos(path...)
	p.errs = append(p.errs, &Error{File: p.file, Line: pos.Line, Col: pos.Col, Msg: fmt.Sprintf(format, args...)})
}

// at builds a path; it reads better than []any{...} at call sites.
func at(path ...any) []any { return path }

func join(prefix []any, more ...any) []any {
	out := make([]any, 0, len(prefix)+len(more))
	return append(append(out, prefix...), more...)
}

func oneOf(v string, allowed ...string) bool {
	for _, a := range allowed {
		if v == a {
			return true
		}
	}
	return false
}

func quoteAll(vals []string) string {
	q := make([]string, len(vals))
	for i, v := range vals {
		q[i] = strconv.Quote(v)
	}
	return strings.Join(q, ", ")
}
