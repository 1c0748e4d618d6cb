package router

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

type condOp uint8

const (
	opPresent condOp = iota
	opAbsent
	opEqual
	opRegex
)

// cond is one compiled header or query condition.
type cond struct {
	name  string // canonical header key, or decoded query parameter name
	op    condOp
	value string
	re    *regexp.Regexp
	host  bool // a header condition on Host, which net/http keeps in r.Host
}

func headerConds(hs []config.HeaderMatch) ([]cond, error) {
	var cs []cond
	for _, h := range hs {
		c, err := newCond(h.Name, h.Value, h.Regex, h.Present, h.Re)
		if err != nil {
			return nil, fmt.Errorf("header %q: %w", h.Name, err)
		}
		c.name = textproto.CanonicalMIMEHeaderKey(h.Name)
		c.host = c.name == "Host"
		cs = append(cs, c)
	}
	return cs, nil
}

func queryConds(qs []config.QueryMatch) ([]cond, error) {
	var cs []cond
	for _, q := range qs {
		c, err := newCond(q.Name, q.Value, q.Regex, q.Present, q.Re)
		if err != nil {
			return nil, fmt.Errorf("query parameter %q: %w", q.Name, err)
		}
		cs = append(cs, c)
	}
	return cs, nil
}

// newCond compiles one condition. The regex is compiled here only when
// config validation has not done it (tests, programmatic configs).
func newCond(name, value, regex string, present *bool, re *regexp.Regexp) (cond, error) {
	c := cond{name: name}
	switch {
	case name == "":
		return c, errors.New("needs a name")
	case value != "" && regex != "":
		return c, errors.New("use either value or regex, not both")
	case present != nil && !*present && (value != "" || regex != ""):
		return c, errors.New("present: false cannot be combined with value or regex")
	case present != nil && !*present:
		c.op = opAbsent
	case regex != "" && re == nil:
		var err error
		if re, err = regexp.Compile(regex); err != nil {
			return c, fmt.Errorf("invalid regex: %w", err)
		}
		fallthrough
	case regex != "":
		c.op, c.re = opRegex, re
	case value != "":
		c.op, c.value = opEqual, value
	}
	return c, nil
}

// header reports whether the condition holds for r's headers. Each field
// line is one value: commas are not split, since a comma can be part of a
// value (dates, quoted strings).
func (c *cond) header(r *http.Request) bool {
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

func (c *cond) hostHeader(host string) bool {
	switch c.op {
	case opPresent:
		return host != ""
	case opAbsent:
		return host == ""
	}
	return host != "" && c.valueOK(host)
}

func (c *cond) valueOK(v string) bool {
	if c.op == opEqual {
		return v == c.value
	}
	return c.re.MatchString(v)
}

// query reports whether the condition holds for raw, a RawQuery. It walks
// the pairs as url.ParseQuery would but compares names and values still
// encoded, so that only a regex on a %-encoded value allocates.
func (c *cond) query(raw string) bool {
	for raw != "" {
		var pair string
		pair, raw, _ = strings.Cut(raw, "&")
		if pair == "" || strings.IndexByte(pair, ';') >= 0 {
			continue // ParseQuery rejects ';' separators
		}
		k, v, _ := strings.Cut(pair, "=")
		if !validEscapes(k) || !validEscapes(v) || !decodedEqual(k, c.name) {
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

func (c *cond) queryValueOK(v string) bool {
	if c.op == opEqual {
		return decodedEqual(v, c.value)
	}
	if strings.ContainsAny(v, "%+") {
		v, _ = url.QueryUnescape(v) // validEscapes has checked it
	}
	return c.re.MatchString(v)
}

// maxQueryParams mirrors net/url's default limit: beyond it ParseQuery
// returns no parameters at all, and routing must agree with what the
// backend-facing code sees through r.URL.Query.
const maxQueryParams = 10000

func queryWithinMax(raw string) bool {
	return raw == "" || strings.Count(raw, "&") < maxQueryParams
}

// validEscapes reports whether every '%' in s starts a %XX escape, the
// only way url.QueryUnescape fails.
func validEscapes(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			continue
		}
		if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
			return false
		}
		i += 2
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
