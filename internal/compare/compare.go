package compare

import (
	"errors"
	"fmt"
	"hash/maphash"
	"math"
	"net/http"
	"net/textproto"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// Response is one captured HTTP answer. Body is as received on the wire
// (maybe Content-Encoding'd); Truncated means the capture hit its size limit.
type Response struct {
	Status    int
	Header    http.Header
	Body      []byte
	Truncated bool
}

// Options configure a Comparator. The zero value compares everything
// exactly, headers included (except DefaultIgnoredHeaders).
type Options struct {
	// Ignore lists JSON paths never compared, each with everything under
	// it: "$.created_at", "$.items[*].id", "$.meta", "$..trace_id".
	Ignore []string
	// UnorderedArrays lists JSON arrays compared as multisets: "$.tags",
	// "$.items". Elements are identified by value (as canonical JSON,
	// without their ignored parts).
	UnorderedArrays []string
	// NumericTolerance is a relative tolerance for JSON numbers:
	// |a-b| <= tol*max(|a|,|b|) counts as equal. 0 is exact. Integers
	// beyond 2^53 (ids) are always compared exactly.
	NumericTolerance float64
	// IgnoreHeaders are response headers not compared, in addition to
	// DefaultIgnoredHeaders (case-insensitive). "*" ignores all headers.
	IgnoreHeaders []string
	// SkipHeaders turns header comparison off (as IgnoreHeaders: ["*"]).
	// Headers are compared by default.
	SkipHeaders bool
	// MaxDecodedBody bounds a body after Content-Encoding decoding;
	// a larger one is not compared (a Truncated difference). 0 means
	// DefaultMaxDecodedBody.
	MaxDecodedBody int64
}

// DefaultMaxDecodedBody is the default Options.MaxDecodedBody. It stops a
// small compressed body ("zip bomb") from taking a comparison worker's memory.
const DefaultMaxDecodedBody = 16 << 20

// DefaultIgnoredHeaders are response headers never compared. Each varies
// between two correct instances of one version, or describes the transport
// rather than the answer:
//
//   - Date, Age, Expires: clock time of the response or of a cache.
//   - Server: the server software; v2 may change it on purpose.
//   - Content-Length, Content-Encoding, Transfer-Encoding: framing and
//     compression; bodies are compared after decoding.
//   - Connection, Keep-Alive, Proxy-Connection: hop-by-hop connection management.
//   - Via, X-Served-By, X-Cache, X-Cache-Hits: which proxy or cache node answered.
//   - X-Request-Id, X-Correlation-Id, X-Trace-Id, X-Amzn-Trace-Id,
//     Traceparent, Tracestate: per-request identifiers and trace context.
//   - X-Response-Time, X-Runtime, Server-Timing: measured durations.
//
// Some headers are compared by shape rather than value (see
// DefaultPresenceOnlyHeaders and Set-Cookie in the package documentation),
// and Vary, Cache-Control, Content-Type and the rest are compared exactly.
var DefaultIgnoredHeaders = []string{
	"Date", "Age", "Expires",
	"Server",
	"Content-Length", "Content-Encoding", "Transfer-Encoding",
	"Connection", "Keep-Alive", "Proxy-Connection",
	"Via", "X-Served-By", "X-Cache", "X-Cache-Hits",
	"X-Request-Id", "X-Correlation-Id", "X-Trace-Id", "X-Amzn-Trace-Id",
	"Traceparent", "Tracestate",
	"X-Response-Time", "X-Runtime", "Server-Timing",
}

// DefaultPresenceOnlyHeaders are compared by presence only: their values
// differ between instances (an ETag may hash an inode or a build, a
// Last-Modified time the deployment), but v2 dropping one is a caching
// regression. Listing one in Options.IgnoreHeaders ignores it completely.
var DefaultPresenceOnlyHeaders = []string{"Etag", "Last-Modified"}

// Difference kinds.
const (
	KindStatus       = "status"        // status codes differ
	KindHeader       = "header"        // a header's values differ
	KindValue        = "value"         // JSON values of the same type differ
	KindType         = "type"          // JSON values of different types
	KindMissing      = "missing"       // only in live: header, object key, or body
	KindExtra        = "extra"         // only in the other answer
	KindArrayLength  = "array_length"  // JSON arrays of different lengths
	KindOrder        = "order"         // same elements, another order, in an ordered array
	KindBodyText     = "body_text"     // non-JSON text bodies differ
	KindBodyBinary   = "body_binary"   // binary bodies differ
	KindBodyEncoding = "body_encoding" // a body could not be decoded
	KindTruncated    = "truncated"     // a body is too large to compare
)

// Field names outside JSON bodies.
const (
	FieldStatus = "status"
	FieldBody   = "body"
	// FieldHeaderPrefix starts a header's field: "header:Cache-Control".
	FieldHeaderPrefix = "header:"
)

// Difference is one way two answers differ.
type Difference struct {
	// Field is the generalized location used for counting: "status",
	// "header:Cache-Control", "body" for a whole non-JSON body, or a JSON
	// path with array indices replaced by [*], as "$.user.emails[*]". A
	// JSON Field is valid in Options.Ignore.
	Field string `json:"field"`
	// Path is this instance's concrete location, as "$.user.emails[2]".
	Path string `json:"path"`
	Kind string `json:"kind"`
	// Live and Other are short renderings (at most MaxRender characters)
	// of each side; "" for the side that lacks the item.
	Live  string `json:"live"`
	Other string `json:"other"`
}

// Comparator diffs answers. It is immutable and safe for concurrent use.
type Comparator struct {
	m           *matcher
	tol         float64
	skipHeaders bool
	ignoredHdr  map[string]bool
	presenceHdr map[string]bool
	maxDecoded  int64
	seed        maphash.Seed
	ignore      []Path
	unordered   []Path
}

// New compiles options. An error names the bad path or header.
func New(o Options) (*Comparator, error) {
	c := &Comparator{
		tol:         o.NumericTolerance,
		skipHeaders: o.SkipHeaders,
		ignoredHdr:  map[string]bool{},
		presenceHdr: map[string]bool{},
		maxDecoded:  o.MaxDecodedBody,
		seed:        maphash.MakeSeed(),
	}
	if math.IsNaN(c.tol) || c.tol < 0 || c.tol >= 1 {
		return nil, fmt.Errorf("numeric tolerance %v: want a fraction from 0 to below 1", o.NumericTolerance)
	}
	if c.maxDecoded < 0 {
		return nil, errors.New("max decoded body must not be negative")
	}
	if c.maxDecoded == 0 {
		c.maxDecoded = DefaultMaxDecodedBody
	}
	compile := func(what string, paths []string) ([]Path, error) {
		out := make([]Path, 0, len(paths))
		for _, s := range paths {
			p, err := ParsePath(s)
			if err != nil {
				return nil, fmt.Errorf("invalid %s %w", what, err)
			}
			out = append(out, p)
		}
		return out, nil
	}
	var err error
	if c.ignore, err = compile("ignore", o.Ignore); err != nil {
		return nil, err
	}
	if c.unordered, err = compile("unordered_arrays", o.UnorderedArrays); err != nil {
		return nil, err
	}
	c.m = newMatcher(c.ignore, c.unordered)
	for _, h := range DefaultIgnoredHeaders {
		c.ignoredHdr[textproto.CanonicalMIMEHeaderKey(h)] = true
	}
	for _, h := range o.IgnoreHeaders {
		switch {
		case h == "*":
			c.skipHeaders = true
		case h == "" || strings.ContainsAny(h, " \t\r\n:"):
			return nil, fmt.Errorf("invalid header name %q in ignore_headers", h)
		default:
			c.ignoredHdr[textproto.CanonicalMIMEHeaderKey(h)] = true
		}
	}
	for _, h := range DefaultPresenceOnlyHeaders {
		c.presenceHdr[textproto.CanonicalMIMEHeaderKey(h)] = true
	}
	return c, nil
}

// MustNew is New for options known to be valid; it panics on an error.
func MustNew(o Options) *Comparator {
	c, err := New(o)
	if err != nil {
		panic(err)
	}
	return c
}

// Diff compares the live answer with another one (the candidate's or the
// secondary's) and returns their differences in a stable order: status,
// headers by name, then the body in document order, with at most
// MaxInstancesPerField differences per Field. It returns nil when they are
// equal. It never panics on malformed input.
func (c *Comparator) Diff(live, other *Response) []Difference {
	if live == nil {
		live = &Response{}
	}
	if other == nil {
		other = &Response{}
	}
	if live.Truncated || other.Truncated {
		// The exchange cannot be compared; say so once, and nothing else,
		// so that its status and headers are not counted from a biased set.
		return []Difference{{Field: FieldBody, Path: FieldBody, Kind: KindTruncated,
			Live: captured(live), Other: captured(other)}}
	}
	d := getDiffer(c)
	defer putDiffer(d)
	if live.Status != other.Status {
		d.add(Difference{Field: FieldStatus, Path: FieldStatus, Kind: KindStatus,
			Live: strconv.Itoa(live.Status), Other: strconv.Itoa(other.Status)})
	}
	ha := d.scan(live.Header, 0)
	hb := d.scan(other.Header, 1)
	if !c.skipHeaders {
		d.headers(ha.list, hb.list)
	}
	d.body(live.Body, other.Body, &ha, &hb)
	return d.out
}

func captured(r *Response) string {
	n := strconv.Itoa(len(r.Body))
	if r.Truncated {
		return "truncated at " + n + " bytes"
	}
	return "complete, " + n + " bytes"
}

// differ holds one comparison's state; differs are pooled.
type differ struct {
	c        *Comparator
	out      []Difference
	probe    bool // only find whether there is a difference
	found    bool // probe found one
	anyIndex bool // in a multiset: array positions do not count in paths
	segs     []seg
	states   []uint64
	perField map[string]int // differences per field, once there are many
	p        parser
	render   []byte
	hdrs     [2][]header
	bufs     []*decodeBuf
}

var differPool = sync.Pool{New: func() any { return new(differ) }}

func getDiffer(c *Comparator) *differ {
	d := differPool.Get().(*differ)
	d.c = c
	d.out = nil
	w := c.m.words
	if cap(d.states) < 8*w {
		d.states = make([]uint64, 8*w)
	}
	d.states = d.states[:cap(d.states)]
	copy(d.states, c.m.start)
	return d
}

func putDiffer(d *differ) {
	d.c, d.out, d.perField = nil, nil, nil
	d.probe, d.found, d.anyIndex = false, false, false
	clear(d.segs[:cap(d.segs)])
	d.segs = d.segs[:0]
	d.p.release()
	for i := range d.hdrs {
		clear(d.hdrs[i])
		d.hdrs[i] = d.hdrs[i][:0]
	}
	for _, b := range d.bufs {
		putBuf(b)
	}
	clear(d.bufs)
	d.bufs = d.bufs[:0]
	if cap(d.render) > 4*renderLimit {
		d.render = nil
	}
	differPool.Put(d)
}

func (d *differ) add(x Difference) {
	if d.probe {
		d.found = true
		return
	}
	d.out = append(d.out, x)
}

// header is one response header, canonically named, values joined.
type header struct {
	name, key string
	vals      []string
	value     string
}

// headers compares two header lists from scan: names case-insensitive,
// values of a name joined with ", ", ignored names skipped.
func (d *differ) headers(ha, hb []header) {
	i, j := 0, 0
	for i < len(ha) || j < len(hb) {
		switch {
		case j >= len(hb) || i < len(ha) && ha[i].name < hb[j].name:
			d.addHeader(KindMissing, ha[i].name, ha[i].value, "")
			i++
		case i >= len(ha) || hb[j].name < ha[i].name:
			d.addHeader(KindExtra, hb[j].name, "", hb[j].value)
			j++
		default:
			if ha[i].value != hb[j].value {
				d.addHeader(KindHeader, ha[i].name, ha[i].value, hb[j].value)
			}
			i++
			j++
		}
	}
}

func (d *differ) addHeader(kind, name, live, other string) {
	f := FieldHeaderPrefix + name
	d.add(Difference{Field: f, Path: f, Kind: kind, Live: clipString(live), Other: clipString(other)})
}

// scanned is what Diff uses of a response's headers.
type scanned struct {
	list        []header // compared headers, sorted by canonical name
	encoding    string   // Content-Encoding
	contentType string
}

// scan reads h once (its names may be spelled in any case): the
// Content-Encoding and Content-Type, and the compared headers, kept in
// d.hdrs[side].
func (d *differ) scan(h http.Header, side int) scanned {
	var sc scanned
	out := d.hdrs[side][:0]
	for key, vals := range h {
		if len(vals) == 0 {
			continue
		}
		name := textproto.CanonicalMIMEHeaderKey(key)
		switch name {
		case "Content-Encoding":
			sc.encoding = joinValues(sc.encoding, vals)
		case "Content-Type":
			sc.contentType = joinValues(sc.contentType, vals)
		}
		if !d.c.skipHeaders && !d.c.ignoredHdr[name] {
			out = append(out, header{name: name, key: key, vals: vals})
		}
	}
	slices.SortFunc(out, func(x, y header) int {
		if c := strings.Compare(x.name, y.name); c != 0 {
			return c
		}
		return strings.Compare(x.key, y.key)
	})
	n := 0
	for i := range out {
		if n > 0 && out[n-1].name == out[i].name {
			// One name under several spellings (a map not built by
			// net/http): one header.
			out[n-1].vals = append(slices.Clip(out[n-1].vals), out[i].vals...)
			continue
		}
		out[n] = out[i]
		n++
	}
	out = out[:n]
	for i := range out {
		x := &out[i]
		switch {
		case d.c.presenceHdr[x.name]:
			x.value = "(present)"
		case x.name == "Set-Cookie":
			x.value = cookieShapes(x.vals)
		default:
			x.value = joinValues("", x.vals)
		}
	}
	d.hdrs[side] = out
	sc.list = out
	return sc
}

// joinValues appends header values to prev, separated by ", ".
func joinValues(prev string, vals []string) string {
	if prev == "" && len(vals) == 1 {
		return vals[0]
	}
	if prev != "" {
		vals = append([]string{prev}, vals...)
	}
	return strings.Join(vals, ", ")
}

// cookieShapes renders Set-Cookie values without what varies per response:
// names and attributes are kept (a cookie v2 stops setting, or sets with
// another Path, SameSite or lifetime, is a real change), values and Expires
// dates are dropped. The cookies are sorted by name.
func cookieShapes(vals []string) string {
	shapes := make([]string, 0, len(vals))
	for _, v := range vals {
		ck, err := http.ParseSetCookie(v)
		if err != nil {
			shapes = append(shapes, "(invalid)")
			continue
		}
		var b strings.Builder
		b.WriteString(ck.Name)
		if ck.Path != "" {
			b.WriteString("; Path=" + ck.Path)
		}
		if ck.Domain != "" {
			b.WriteString("; Domain=" + ck.Domain)
		}
		if ck.MaxAge > 0 {
			b.WriteString("; Max-Age=" + strconv.Itoa(ck.MaxAge))
		} else if ck.MaxAge < 0 {
			b.WriteString("; Max-Age=0")
		}
		if ck.Secure {
			b.WriteString("; Secure")
		}
		if ck.HttpOnly {
			b.WriteString("; HttpOnly")
		}
		switch ck.SameSite {
		case http.SameSiteLaxMode:
			b.WriteString("; SameSite=Lax")
		case http.SameSiteStrictMode:
			b.WriteString("; SameSite=Strict")
		case http.SameSiteNoneMode:
			b.WriteString("; SameSite=None")
		}
		if ck.Partitioned {
			b.WriteString("; Partitioned")
		}
		shapes = append(shapes, b.String())
	}
	slices.Sort(shapes)
	return strings.Join(shapes, ", ")
}
