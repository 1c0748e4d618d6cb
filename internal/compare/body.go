package compare

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"
	"unsafe"

	"github.com/andybalholm/brotli"
)

// body compares two bodies: decoded, then as JSON, text or binary.
func (d *differ) body(rawA, rawB []byte, ha, hb *scanned) {
	encA, encB := ha.encoding, hb.encoding
	if encA == encB && bytes.Equal(rawA, rawB) {
		return // the same bytes the same way: nothing to decode
	}
	a, errA := d.decode(rawA, encA)
	b, errB := d.decode(rawB, encB)
	if errA != nil || errB != nil {
		kind := KindBodyEncoding
		if errors.Is(errA, errTooLarge) || errors.Is(errB, errTooLarge) {
			kind = KindTruncated
		}
		d.add(Difference{Field: FieldBody, Path: FieldBody, Kind: kind,
			Live: encodingStatus(encA, errA), Other: encodingStatus(encB, errB)})
		return
	}
	switch {
	case len(a) == 0 && len(b) == 0:
		return
	case len(b) == 0:
		d.add(Difference{Field: FieldBody, Path: FieldBody, Kind: KindMissing, Live: bodySummary(a)})
		return
	case len(a) == 0:
		d.add(Difference{Field: FieldBody, Path: FieldBody, Kind: KindExtra, Other: bodySummary(b)})
		return
	case bytes.Equal(a, b):
		return
	}
	// JSON if both parse (after a byte order mark, which some servers send).
	if va, ok := d.p.parse(bytesView(trimBOM(a))); ok {
		if vb, ok := d.p.parse(bytesView(trimBOM(b))); ok {
			d.json(&va, &vb)
			return
		}
	}
	if isText(a, ha.contentType) && isText(b, hb.contentType) {
		d.text(a, b)
		return
	}
	d.add(Difference{Field: FieldBody, Path: FieldBody, Kind: KindBodyBinary,
		Live: binarySummary(a), Other: binarySummary(b)})
}

func trimBOM(b []byte) []byte { return bytes.TrimPrefix(b, []byte("\xef\xbb\xbf")) }

// bytesView returns b as a string without copying. b must not change while
// the string is in use: here, during one Diff (bodies are the caller's and
// not modified while Diff runs; decoded ones are released after it).
func bytesView(b []byte) string {
	return unsafe.String(unsafe.SliceData(b), len(b))
}

func encodingStatus(enc string, err error) string {
	if enc == "" {
		enc = "identity"
	}
	if err != nil {
		return clipString(err.Error())
	}
	return clipString(enc + ": ok")
}

func bodySummary(b []byte) string {
	if utf8.Valid(b) {
		return clip(b[:min(len(b), renderLimit)])
	}
	return binarySummary(b)
}

func binarySummary(b []byte) string {
	sum := sha256.Sum256(b)
	return strconv.Itoa(len(b)) + " bytes, sha256 " + hex.EncodeToString(sum[:8])
}

// isText reports whether a non-JSON body is compared as text: declared
// text/*, or valid UTF-8.
func isText(b []byte, ct string) bool {
	return len(ct) >= 5 && strings.EqualFold(ct[:5], "text/") || utf8.Valid(b)
}

// text reports the first difference of two texts with its line and column
// and the line around it on each side.
func (d *differ) text(a, b []byte) {
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] {
		i++
	}
	// Back up to the start of a character so that no side is cut inside one.
	for i > 0 && (i < len(a) && !utf8.RuneStart(a[i]) || i < len(b) && !utf8.RuneStart(b[i])) {
		i--
	}
	line := 1 + bytes.Count(a[:i], []byte{'\n'})
	start := bytes.LastIndexByte(a[:i], '\n') + 1
	col := 1 + utf8.RuneCount(a[start:i])
	where := "line " + strconv.Itoa(line) + ", col " + strconv.Itoa(col) + ": "
	d.add(Difference{Field: FieldBody, Path: FieldBody, Kind: KindBodyText,
		Live: where + snippet(a, start, i), Other: where + snippet(b, start, i)})
}

// snippet renders the line of b around offset i, from line start ls.
func snippet(b []byte, ls, i int) string {
	if i >= len(b) {
		return "(end of body)"
	}
	const before = 24
	from := ls
	prefix := ""
	if i-from > before {
		from = i - before
		for from < i && !utf8.RuneStart(b[from]) {
			from++
		}
		prefix = "…"
	}
	// Up to the end of the line; a differing newline shows the next line too.
	to := len(b)
	if nl := bytes.IndexByte(b[i+1:], '\n'); nl >= 0 {
		to = i + 1 + nl
	}
	to = min(to, from+renderLimit)
	out := make([]byte, 0, to-from+len(prefix)+8)
	out = append(out, prefix...)
	for _, c := range b[from:to] {
		switch {
		case c == '\t':
			out = append(out, '\\', 't')
		case c == '\n':
			out = append(out, '\\', 'n')
		case c == '\r':
			out = append(out, '\\', 'r')
		case c < 0x20 || c == 0x7f:
			out = append(out, '\\', 'x', hexDigits[c>>4], hexDigits[c&0xf])
		default:
			out = append(out, c)
		}
	}
	// The prefix of "line N, col M: " takes about 20 characters.
	return clipTo(out, MaxRender-20)
}

// clipTo clips b to at most n characters.
func clipTo(b []byte, n int) string {
	if utf8.RuneCount(b) <= n {
		return toValid(b)
	}
	i := 0
	for k := 0; k < n-1; k++ {
		_, size := utf8.DecodeRune(b[i:])
		i += size
	}
	return toValid(b[:i]) + "…"
}

// errTooLarge is returned when a decoded body passes MaxDecodedBody.
var errTooLarge = errors.New("decoded body too large")

// decodeBuf is a pooled buffer for a decoded body.
type decodeBuf struct{ bytes.Buffer }

var bufPool = sync.Pool{New: func() any { return new(decodeBuf) }}

func putBuf(b *decodeBuf) {
	if b.Cap() > 4<<20 {
		return // let a rare huge buffer go
	}
	b.Reset()
	bufPool.Put(b)
}

// decode undoes Content-Encoding enc (a comma-separated list, applied in
// order, so undone from the last). The result may live in a pooled buffer
// released with the differ.
func (d *differ) decode(body []byte, enc string) ([]byte, error) {
	for enc != "" {
		var coding string
		if i := strings.LastIndexByte(enc, ','); i >= 0 {
			coding, enc = enc[i+1:], enc[:i]
		} else {
			coding, enc = enc, ""
		}
		coding = strings.ToLower(strings.TrimSpace(coding))
		if coding == "" || coding == "identity" {
			continue
		}
		buf := bufPool.Get().(*decodeBuf)
		d.bufs = append(d.bufs, buf)
		if err := decodeOne(coding, body, &buf.Buffer, d.c.maxDecoded); err != nil {
			return nil, err
		}
		body = buf.Bytes()
	}
	return body, nil
}

var (
	gzipPool   sync.Pool // *gzip.Reader
	zlibPool   sync.Pool // io.ReadCloser implementing zlib.Resetter
	flatePool  sync.Pool // io.ReadCloser implementing flate.Resetter
	brotliPool sync.Pool // *brotli.Reader
)

func decodeOne(coding string, src []byte, dst *bytes.Buffer, limit int64) error {
	r := bytes.NewReader(src)
	switch coding {
	case "gzip", "x-gzip":
		zr, _ := gzipPool.Get().(*gzip.Reader)
		var err error
		if zr == nil {
			zr, err = gzip.NewReader(r)
		} else {
			err = zr.Reset(r)
		}
		if err != nil {
			return wrap("gzip", err)
		}
		defer gzipPool.Put(zr)
		return drain(dst, zr, limit, "gzip")
	case "deflate":
		// RFC 9110 says zlib, but some servers send raw deflate: try zlib
		// when the header checks out, raw deflate otherwise.
		if isZlib(src) {
			if err := inflateZlib(src, dst, limit); err == nil || errors.Is(err, errTooLarge) {
				return err
			}
			dst.Reset()
		}
		fr, _ := flatePool.Get().(io.ReadCloser)
		if fr == nil {
			fr = flate.NewReader(r)
		} else if err := fr.(flate.Resetter).Reset(r, nil); err != nil {
			return wrap("deflate", err)
		}
		defer flatePool.Put(fr)
		return drain(dst, fr, limit, "deflate")
	case "br":
		br, _ := brotliPool.Get().(*brotli.Reader)
		if br == nil {
			br = brotli.NewReader(r)
		} else if err := br.Reset(r); err != nil {
			return wrap("br", err)
		}
		defer brotliPool.Put(br)
		return drain(dst, br, limit, "br")
	}
	return fmt.Errorf("unsupported content-encoding %q", coding)
}

func isZlib(b []byte) bool {
	return len(b) >= 2 && b[0]&0x0f == 8 && b[0]>>4 <= 7 && (uint16(b[0])<<8|uint16(b[1]))%31 == 0
}

func inflateZlib(src []byte, dst *bytes.Buffer, limit int64) error {
	r := bytes.NewReader(src)
	zr, _ := zlibPool.Get().(io.ReadCloser)
	var err error
	if zr == nil {
		zr, err = zlib.NewReader(r)
	} else {
		err = zr.(zlib.Resetter).Reset(r, nil)
	}
	if err != nil {
		return wrap("deflate", err)
	}
	defer zlibPool.Put(zr)
	return drain(dst, zr, limit, "deflate")
}

// drain reads r into dst, failing past limit bytes.
func drain(dst *bytes.Buffer, r io.Reader, limit int64, name string) error {
	n, err := dst.ReadFrom(io.LimitReader(r, limit+1))
	if err != nil {
		return wrap(name, err)
	}
	if n > limit {
		return fmt.Errorf("%s: %w (over %d bytes)", name, errTooLarge, limit)
	}
	return nil
}

// wrap names the coding in err, unless the decoder's message does.
func wrap(coding string, err error) error {
	if strings.HasPrefix(err.Error(), coding+":") {
		return err
	}
	return fmt.Errorf("%s: %w", coding, err)
}
