package egress

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"

	"github.com/umbragw/umbra/internal/config"
	"github.com/umbragw/umbra/internal/headers"
	"github.com/umbragw/umbra/internal/jsonpath"
)

// Redacted replaces sensitive values in recordings.
const Redacted = "REDACTED"

// redactor removes secrets from calls before they are stored: sensitive
// headers always, configured JSON fields of JSON bodies.
type redactor struct {
	headers map[string]bool // canonical names, besides sensitiveHeader's
	paths   []jsonpath.Path
}

func newRedactor(c config.Redact) (*redactor, error) {
	r := &redactor{headers: map[string]bool{}}
	for _, h := range c.Headers {
		r.headers[http.CanonicalHeaderKey(h)] = true
	}
	for _, s := range c.JSON {
		p, err := jsonpath.Parse(s)
		if err != nil {
			return nil, err
		}
		r.paths = append(r.paths, p)
	}
	return r, nil
}

// sensitiveHeader reports headers that carry credentials by convention.
func sensitiveHeader(name string) bool {
	n := strings.ToLower(name)
	switch n {
	case "authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key", "api-key":
		return true
	}
	return strings.Contains(n, "token") || strings.Contains(n, "secret") ||
		strings.Contains(n, "api-key") || strings.Contains(n, "apikey") || strings.Contains(n, "password")
}

// message returns m redacted: its header and JSON body. An answer's
// header also loses the fields that belong to its hop (hop-by-hop, those
// its Connection field names, Content-Length): the live path records the
// upstream's header as it came.
func (r *redactor) message(m message, answer bool) message {
	m.Header = r.header(m.Header, answer)
	m.Body = r.body(m.Body, m.Header.Get("Content-Type"))
	return m
}

// header returns h with sensitive values replaced (h itself is not
// changed); an answer's without hop-by-hop fields, Content-Length and the
// fields its Connection names.
func (r *redactor) header(h http.Header, answer bool) http.Header {
	out := make(http.Header, len(h))
	for k, vs := range h {
		if answer && (headers.IsHopByHop(k) || k == "Content-Length") {
			continue
		}
		if r.headers[k] || sensitiveHeader(k) {
			red := make([]string, len(vs))
			for i := range red {
				red[i] = Redacted
			}
			out[k] = red
			continue
		}
		out[k] = vs
	}
	if answer {
		removeConnectionHeaders(out, h)
	}
	return out
}

// body returns a JSON body with the configured fields replaced; other
// bodies, and JSON bodies without such fields, are returned as they are.
func (r *redactor) body(b []byte, contentType string) []byte {
	if len(r.paths) == 0 || len(b) == 0 || !looksJSON(b, contentType) {
		return b
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber() // keep numbers as written
	var v any
	if err := dec.Decode(&v); err != nil {
		return b
	}
	changed := false
	for _, p := range r.paths {
		v = replaceAt(v, p.Steps(), func(any) any { changed = true; return Redacted })
	}
	if !changed {
		return b
	}
	out, err := json.Marshal(v)
	if err != nil {
		return b
	}
	return out
}

func looksJSON(b []byte, contentType string) bool {
	if strings.Contains(contentType, "json") {
		return true
	}
	t := bytes.TrimSpace(b)
	return len(t) > 0 && (t[0] == '{' || t[0] == '[')
}

// replaceAt replaces every value v selects by steps with fn(value).
func replaceAt(v any, steps []jsonpath.Step, fn func(any) any) any {
	if len(steps) == 0 {
		return fn(v)
	}
	st := steps[0]
	if st.Descend {
		// ".." : the step applies here or at any depth below.
		here := st
		here.Descend = false
		v = replaceAt(v, append([]jsonpath.Step{here}, steps[1:]...), fn)
		switch x := v.(type) {
		case map[string]any:
			for k, c := range x {
				x[k] = replaceAt(c, steps, fn)
			}
		case []any:
			for i, c := range x {
				x[i] = replaceAt(c, steps, fn)
			}
		}
		return v
	}
	switch x := v.(type) {
	case map[string]any:
		switch st.Kind {
		case jsonpath.Key:
			if c, ok := x[st.Key]; ok {
				x[st.Key] = replaceAt(c, steps[1:], fn)
			}
		case jsonpath.Any:
			for k, c := range x {
				x[k] = replaceAt(c, steps[1:], fn)
			}
		}
	case []any:
		switch st.Kind {
		case jsonpath.Index:
			if st.Index < len(x) {
				x[st.Index] = replaceAt(x[st.Index], steps[1:], fn)
			}
		case jsonpath.Any:
			for i, c := range x {
				x[i] = replaceAt(c, steps[1:], fn)
			}
		}
	}
	return v
}

// selects reports whether steps select anything in v (Hoverfly's jsonpath
// matcher).
func selects(v any, steps []jsonpath.Step) bool {
	found := false
	replaceAt(v, steps, func(x any) any { found = true; return x })
	return found
}
