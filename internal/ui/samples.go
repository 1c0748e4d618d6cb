package ui

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/umbragw/umbra/internal/compare"
	"github.com/umbragw/umbra/internal/diffs"
	"github.com/umbragw/umbra/internal/jsonpath"
)

// sampleView is one kept request with its answers side by side.
type sampleView struct {
	At          time.Time
	Method, URI string
	Request     []headerView
	RequestBody string
	Sides       []sideView // live, candidate, secondary
	Differences []compare.Difference
}

// sideView is one answer. Values at a differing location are marked:
// "diff" on the candidate, "base" on live, and on the secondary "noise"
// where it also differs from live (the field varies between two
// instances of the live version) or "same" where it agrees with live.
type sideView struct {
	Name, Backend string
	Missing       bool
	Status        int
	StatusMark    string
	LatencyMs     float64
	Truncated     bool
	Headers       []headerView
	Body          template.HTML
}

type headerView struct {
	Name, Value, Mark string
}

// newSampleView lays a sample out for the page; field is the field whose
// samples are shown (its own differences come first in the list).
func newSampleView(s *diffs.Sample, field string) sampleView {
	v := sampleView{At: s.At, Method: s.Method, URI: s.URI, RequestBody: s.Body, Differences: s.Differences}
	v.Request = headers(s.Header, nil, "")
	sort.SliceStable(v.Differences, func(i, j int) bool {
		return v.Differences[i].Field == field && v.Differences[j].Field != field
	})
	paths, hdrs, status, body := map[string]bool{}, map[string]bool{}, false, false
	for _, d := range s.Differences {
		switch {
		case d.Field == compare.FieldStatus:
			status = true
		case strings.HasPrefix(d.Field, compare.FieldHeaderPrefix):
			hdrs[strings.ToLower(strings.TrimPrefix(d.Field, compare.FieldHeaderPrefix))] = true
		case strings.HasPrefix(d.Path, "$"):
			paths[d.Path] = true
		default:
			body = true
		}
	}
	live := render(s.Live, paths, body, "base", nil)
	liveSide := side("live", s.Live, status, hdrs, "base", nil, live)
	v.Sides = append(v.Sides, liveSide,
		side("candidate", s.Candidate, status, hdrs, "diff", s.Live, render(s.Candidate, paths, body, "diff", nil)))
	if s.Secondary != nil {
		v.Sides = append(v.Sides, side("secondary", s.Secondary, status, hdrs, "", s.Live, render(s.Secondary, paths, body, "", live.values)))
	}
	return v
}

// side builds one answer's column; base is live's answer, to which the
// secondary's marks compare.
func side(name string, r *diffs.SampleResponse, status bool, hdrs map[string]bool, mark string, base *diffs.SampleResponse, body rendered) sideView {
	if r == nil {
		return sideView{Name: name, Missing: true}
	}
	sv := sideView{Name: name, Status: r.Status, LatencyMs: r.LatencyMs, Truncated: r.Truncated, Body: body.html}
	if status {
		sv.StatusMark = markAgainst(mark, base != nil && r.Status != base.Status)
	}
	var baseHdr http.Header
	if base != nil {
		baseHdr = base.Header
	}
	sv.Headers = headers(r.Header, hdrs, mark)
	if mark == "" {
		for i, h := range sv.Headers {
			if h.Mark != "" {
				sv.Headers[i].Mark = markAgainst("", strings.Join(baseHdr.Values(h.Name), ", ") != h.Value)
			}
		}
	}
	return sv
}

// markAgainst is the secondary's mark (noise where it differs from live,
// same where it agrees), or mark itself on the other sides.
func markAgainst(mark string, differs bool) string {
	if mark != "" {
		return mark
	}
	if differs {
		return "noise"
	}
	return "same"
}

func headers(h http.Header, marked map[string]bool, mark string) []headerView {
	names := slices.Sorted(maps.Keys(h))
	out := make([]headerView, 0, len(names))
	for _, k := range names {
		hv := headerView{Name: k, Value: strings.Join(h[k], ", ")}
		if marked[strings.ToLower(k)] {
			hv.Mark = mark
			if hv.Mark == "" {
				hv.Mark = "same" // decided by side against live
			}
		}
		out = append(out, hv)
	}
	return out
}

// rendered is a body as HTML with its values by path, for comparing the
// secondary's values with live's.
type rendered struct {
	html   template.HTML
	values map[string]string
}

// render pretty-prints a JSON body with the values at marked paths
// wrapped in <mark>; other bodies show as text, marked whole when the
// body differs as a whole. With base (live's values), the mark is noise
// or same by comparison with it.
func render(r *diffs.SampleResponse, paths map[string]bool, whole bool, mark string, base map[string]string) rendered {
	if r == nil {
		return rendered{}
	}
	if r.Body == "" {
		return rendered{html: `<span class="muted">(empty body)</span>`}
	}
	p := &printer{paths: paths, mark: mark, base: base, values: map[string]string{}}
	if err := p.document([]byte(r.Body)); err == nil {
		return rendered{html: template.HTML(p.b.String()), values: p.values}
	}
	text := r.Body
	if !utf8.ValidString(text) {
		text = fmt.Sprintf("(%d bytes, not text)", len(r.Body))
	}
	esc := template.HTMLEscapeString(text)
	if whole {
		esc = `<mark class="` + markAgainst(mark, base != nil) + `">` + esc + `</mark>`
	}
	return rendered{html: template.HTML(esc)}
}

// printer writes JSON indented, tracking each value's concrete path
// ("$.items[2].id") and its general one ("$.items[*].id"), as the
// comparison names them.
type printer struct {
	b      strings.Builder
	dec    *json.Decoder
	paths  map[string]bool
	mark   string
	base   map[string]string
	values map[string]string
}

func (p *printer) document(body []byte) error {
	p.dec = json.NewDecoder(bytes.NewReader(body))
	p.dec.UseNumber()
	if err := p.value("$", "$", 0); err != nil {
		return err
	}
	if _, err := p.dec.Token(); err != io.EOF {
		return errors.New("trailing data")
	}
	return nil
}

func (p *printer) value(path, general string, depth int) error {
	start := p.b.Len()
	tok, err := p.dec.Token()
	if err != nil {
		return err
	}
	marked := p.paths[path] || p.paths[general]
	var cls string
	if marked {
		cls = p.mark
		p.b.WriteString(`<mark class="MARK">`)
	}
	indent := "\n" + strings.Repeat("  ", depth+1)
	switch t := tok.(type) {
	case json.Delim:
		closing := map[json.Delim]string{'{': "}", '[': "]"}[t]
		p.b.WriteString(string(t))
		n := 0
		for p.dec.More() {
			if n > 0 {
				p.b.WriteString(",")
			}
			p.b.WriteString(indent)
			var cp, cg string
			if t == '{' {
				kt, err := p.dec.Token()
				if err != nil {
					return err
				}
				key, _ := kt.(string)
				fmt.Fprintf(&p.b, `<span class="key">%s</span>: `, template.HTMLEscapeString(strconv.Quote(key)))
				cp, cg = string(jsonpath.AppendKey([]byte(path), key)), string(jsonpath.AppendKey([]byte(general), key))
			} else {
				cp, cg = path+"["+strconv.Itoa(n)+"]", general+"[*]"
			}
			if err := p.value(cp, cg, depth+1); err != nil {
				return err
			}
			n++
		}
		if _, err := p.dec.Token(); err != nil {
			return err
		}
		if n > 0 {
			p.b.WriteString("\n" + strings.Repeat("  ", depth))
		}
		p.b.WriteString(closing)
	case string:
		fmt.Fprintf(&p.b, `<span class="str">%s</span>`, template.HTMLEscapeString(strconv.Quote(t)))
	case json.Number:
		fmt.Fprintf(&p.b, `<span class="num">%s</span>`, template.HTMLEscapeString(t.String()))
	case bool:
		fmt.Fprintf(&p.b, `<span class="lit">%t</span>`, t)
	case nil:
		p.b.WriteString(`<span class="lit">null</span>`)
	}
	if marked {
		p.b.WriteString(`</mark>`)
		text := p.b.String()[start:]
		p.values[path] = text
		if cls == "" { // the secondary: noise where it differs from live
			cls = markAgainst("", p.base[path] != text)
		}
		s := p.b.String()
		p.b.Reset()
		p.b.WriteString(s[:start] + strings.Replace(text, "MARK", cls, 1))
	}
	return nil
}

// urlValues encodes name/value pairs as a query string, in order.
func urlValues(kv ...string) string {
	var b strings.Builder
	for i := 0; i+1 < len(kv); i += 2 {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(url.QueryEscape(kv[i]) + "=" + url.QueryEscape(kv[i+1]))
	}
	return b.String()
}

// contextValue types an evaluation context value written as text.
func contextValue(s string) any {
	switch s {
	case "true":
		return true
	case "false":
		return false
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil && !strings.ContainsAny(s, "xXpP_") {
		return f
	}
	return s
}
