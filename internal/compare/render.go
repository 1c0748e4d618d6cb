package compare

import (
	"strconv"
	"unicode/utf8"

	"github.com/umbragw/umbra/internal/jsonpath"
)

// MaxRender is the longest rendering in Difference.Live and .Other, in
// characters; longer ones are cut and end with "…".
const MaxRender = 120

// renderLimit bounds the bytes written before clipping: enough for
// MaxRender characters of any width, so clip always sees the cut.
const renderLimit = 4*MaxRender + 8

// clip returns b as a string of at most MaxRender characters.
func clip(b []byte) string {
	if len(b) <= MaxRender && utf8.Valid(b) {
		return string(b)
	}
	n, i := 0, 0
	for i < len(b) && n < MaxRender {
		_, size := utf8.DecodeRune(b[i:])
		i += size
		n++
	}
	if i == len(b) {
		return toValid(b)
	}
	// Keep MaxRender-1 characters and the ellipsis.
	_, size := utf8.DecodeLastRune(b[:i])
	return toValid(b[:i-size]) + "…"
}

func toValid(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	out := make([]rune, 0, len(b))
	for len(b) > 0 {
		r, size := utf8.DecodeRune(b)
		out = append(out, r)
		b = b[size:]
	}
	return string(out)
}

// clipString is clip for a string.
func clipString(s string) string {
	if len(s) <= MaxRender && utf8.ValidString(s) {
		return s
	}
	if len(s) > renderLimit {
		s = s[:renderLimit]
	}
	return clip([]byte(s))
}

// appendValue appends v as compact JSON, stopping soon after renderLimit.
func appendValue(b []byte, v *value) []byte {
	if len(b) > renderLimit {
		return b
	}
	switch v.kind {
	case kNull:
		return append(b, "null"...)
	case kBool, kNumber:
		return append(b, v.str...)
	case kString:
		return appendQuoted(b, v.str)
	case kArray:
		b = append(b, '[')
		for i := range v.list {
			if i > 0 {
				b = append(b, ',')
			}
			if b = appendValue(b, &v.list[i]); len(b) > renderLimit {
				return b
			}
		}
		return append(b, ']')
	default:
		b = append(b, '{')
		for i := range v.members() {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendQuoted(b, v.key(i))
			b = append(b, ':')
			if b = appendValue(b, v.val(i)); len(b) > renderLimit {
				return b
			}
		}
		return append(b, '}')
	}
}

const hexDigits = "0123456789abcdef"

// appendQuoted appends s as a JSON string, stopping soon after renderLimit.
func appendQuoted(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		if len(b) > renderLimit {
			return b
		}
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c == '\n':
			b = append(b, '\\', 'n')
		case c == '\r':
			b = append(b, '\\', 'r')
		case c == '\t':
			b = append(b, '\\', 't')
		case c < 0x20 || c == 0x7f:
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}

// appendPath renders a location. general replaces indices with [*].
func appendPath(b []byte, segs []seg, general bool) []byte {
	b = append(b, '$')
	for _, s := range segs {
		switch {
		case s.idx == keySeg:
			b = jsonpath.AppendKey(b, s.key)
		case general || s.idx < 0:
			b = append(b, "[*]"...)
		default:
			b = append(b, '[')
			b = strconv.AppendInt(b, int64(s.idx), 10)
			b = append(b, ']')
		}
	}
	return b
}
