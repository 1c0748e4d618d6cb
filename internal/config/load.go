package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"

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
	cfg.File = file
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
	unknownFieldRe = regexp.MustCompile(`^field (\S+) not found in type \S+$`)
)

// decode parses the YAML strictly: unknown keys and wrongly typed values are
// all collected, each with its position. It returns nil when the text is not
// YAML at all or holds no document.
func (p *parser) decode(data []byte) *Config {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		p.yamlError(err)
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
		p.yamlError(err)
	}
	return cfg
}

// yamlError turns yaml.v3's "line N: msg" strings into positioned errors.
func (p *parser) yamlError(err error) {
	var te *yaml.TypeError
	msgs := []string{err.Error()}
	if errors.As(err, &te) {
		msgs = te.Errors
	}
	for _, m := range msgs {
		e := &Error{File: p.file, Msg: m}
		if g := yamlLineRe.FindStringSubmatch(m); g != nil {
			e.Line, _ = strconv.Atoi(g[1])
			e.Col, _ = strconv.Atoi(g[2])
			e.Msg = g[3]
		}
		if g := unknownFieldRe.FindStringSubmatch(e.Msg); g != nil {
			e.Msg = fmt.Sprintf("unknown key %q", g[1])
			e.Col = p.keyColumn(p.root, e.Line, g[1])
		}
		if e.Line > 0 && e.Col == 0 {
			e.Col = 1
		}
		p.errs = append(p.errs, e)
	}
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
func (p *parser) node(path ...any) (n *yaml.Node, found bool) {
	n = p.root
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
	if n == nil {
		return nil
	}
	switch s := step.(type) {
	case string:
		if n.Kind != yaml.MappingNode {
			return nil
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == s {
				return n.Content[i+1]
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
