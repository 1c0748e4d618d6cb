// Package match compiles the header and query conditions of routes and
// shadow targets (config.ValueMatch) into one form that both evaluate, so
// a condition means the same wherever it is written: a condition on Host
// reads r.Host, where servers keep it, for a route and a shadow target
// alike.
package match

import (
	"errors"
	"fmt"
	"net/http"
	"net/textproto"
	"net/url"
	"regexp"
	"strings"

	"github.com/umbragw/umbra/internal/config"
)

type op uint8

const (
	opPresent op = iota
	opAbsent
	opEqual
	opRegex
)

// Cond is one compiled header or query condition.
type Cond struct {
	name  string // canonical header key, or decoded query parameter name
	op    op
	value string
	re    *regexp.Regexp
	host  bool // a header condition on Host, which net/http keeps in r.Host
}

// Headers compiles header conditions.
func Headers(ms []config.ValueMatch) ([]Cond, error) {
	var cs []Cond
	for _, m := range ms {
		c, err := compile(m)
		if err != nil {
			return nil, fmt.Errorf("header %q: %w", m.Name, err)
		}
		c.name = textproto.CanonicalMIMEHeaderKey(m.Name)
		c.host = c.name == "Host"
		cs = append(cs, c)
	}
	return cs, nil
}

// Query compiles query parameter conditions.
func Query(ms []config.ValueMatch) ([]Cond, error) {
	var cs []Cond
	for _, m := range ms {
		c, err := compile(m)
		if err != nil {
			return nil, fmt.Errorf("query parameter %q: %w", m.Name, err)
		}
		cs = append(cs, c)
	}
	return cs, nil
}

// compile checks one condition as config validation does (for configs
// built without it: tests, programmatic configs) and compiles its regex.
func compile(m config.ValueMatch) (Cond, error) {
	c := Cond{name: m.Name}
	switch {
	case m.Name == "":
		return c, errors.New("needs a name")
	case m.Value != "" && m.Regex != "":
		return c, errors.New("use either value or regex, not both")
	case m.Present != nil && !*m.Present && (m.Value != "" || m.Regex != ""):
		return c, errors.New("present: false cannot be combined with value or regex")
	case m.Present != nil && !*m.Present:
		c.op = opAbsent
	case m.Regex != "":
		re, err := regexp.Compile(m.Regex)
		if err != nil {
			return c, fmt.Errorf("invalid regex: %w", err)
		}
		c.op, c.re = opRegex, re
	case m.Value != "":
		c.op, c.value = opEqual, m.Value
	}
	return c, nil
}

// HeadersHold reports whether every header condition in cs holds for r.
func HeadersHold(cs []Cond, r *http.Request) bool {
	for i := range cs {
		if !cs[i].header(r) {
			return false
		}
	}
	return true
}

// QueryHolds reports whether every query condition in cs holds for r's
// query, read as url.ParseQuery would read it.
func QueryHolds(cs []Cond, r *http.Request) bool {
	if len(cs) == 0 {
		return true
	}
	raw := ""
	if r.URL != nil {
		raw = r.URL.RawQuery
	}
	if !withinMax(raw) {
		raw = ""
	}
	for i := range cs {
		if !cs[i].query(raw) {
			return false
		}
	}
	return true
}

// header reports whether the condition holds for r's headers. Each field
// line is one value: commas are not split, since a comma can be part of a
// value (dates, quoted strings).
func (c *Cond) header(r *http.Request) bool {
	if c.host {
		return c.hostHeader(r.Host)
	}
	vals := r.Header[c.name]
	switch c.op {
	case opPresent:
		return len(vals) > 0
	case opAbsent:
		return len(vals) == 0
	}
	for _, v := range vals {
		if c.valueOK(v) {
			return true
		}
	}
	return false
}

func (c *Cond) hostHeader(host string) bool {
	switch c.op {
	case opPresent:
		return host != ""
	case opAbsent:
		return host == ""
	}
	return host != "" && c.valueOK(host)
}

func (c *Cond) valueOK(v string) bool {
	if c.op == opEqual {
		return v == c.value
	}
	return c.re.MatchString(v)
}

// query reports whether the condition holds for raw, a RawQuery. It walks
// the pairs as url.ParseQuery would but compares names and values still
// encoded, so that only a regex on a %-encoded value allocates.
func (c *Cond) query(raw string) bool {
	for raw != "" {
		var pair string
		pair, raw, _ = strings.Cut(raw, "&")
		if pair == "" || !ParsableQuery(pair) {
			continue
		}
		k, v, _ := strings.Cut(pair, "=")
		if !decodedEqual(k, c.name) {
			continue
		}
		switch c.op {
		case opPresent:
			return true
		case opAbsent:
			return false
		}
		if c.queryValueOK(v) {
			return true
		}
	}
	return c.op == opAbsent
}

func (c *Cond) queryValueOK(v string) bool {
	if c.op == opEqual {
		return decodedEqual(v, c.value)
	}
	if strings.ContainsAny(v, "%+") {
		v, _ = url.QueryUnescape(v) // ParsableQuery has checked it
	}
	return c.re.MatchString(v)
}

// maxQueryParams mirrors net/url's default limit: beyond it ParseQuery
// returns no parameters at all, and routing must agree with what the
// backend-facing code sees through r.URL.Query.
const maxQueryParams = 10000

func withinMax(raw string) bool {
	return raw == "" || strings.Count(raw, "&") < maxQueryParams
}

// ParsableQuery reports whether url.ParseQuery keeps every pair of q: no
// ';' separator and every '%' starting a %XX escape. Routing skips the
// pairs it would drop, and the proxy re-encodes a query holding any, so
// both agree with what the backend is sent.
func ParsableQuery(q string) bool {
	for i := 0; i < len(q); i++ {
		switch q[i] {
		case ';':
			return false
		case '%':
			if i+2 >= len(q) || !isHex(q[i+1]) || !isHex(q[i+2]) {
				return false
			}
			i += 2
		}
	}
	return true
}

// decodedEqual reports whether the query-encoded enc (valid escapes) decodes
// to want, without decoding into a new string.
func decodedEqual(enc, want string) bool {
	j := 0
	for i := 0; i < len(enc); i++ {
		c := enc[i]
		switch c {
		case '%':
			c = unhex(enc[i+1])<<4 | unhex(enc[i+2])
			i += 2
		case '+':
			c = ' '
		}
		if j >= len(want) || want[j] != c {
			return false
		}
		j++
	}
	return j == len(want)
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	}
	return c - 'a' + 10
}
