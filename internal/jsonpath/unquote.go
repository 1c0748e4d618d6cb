package jsonpath

import (
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// The JSON readers that walk documents without encoding/json (adoption's
// scanner, compare's parser) compare keys with path steps by their
// decoded text. One decoder, so a key means the same to both. Generic
// over string and []byte so neither reader converts (and allocates) to
// call it.

// Hex4 decodes the four hex digits of a \u escape at s[i:], or returns -1.
func Hex4[S ~string | ~[]byte](s S, i int) rune {
	if i < 0 || i+4 > len(s) {
		return -1
	}
	var r rune
	for j := i; j < i+4; j++ {
		c := s[j]
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return -1
		}
		r = r<<4 | rune(c)
	}
	return r
}

// AppendUnquoted appends the text of raw, the body of a JSON string
// between its quotes whose escapes are valid, decoded as encoding/json
// decodes it: escapes resolved, surrogate pairs joined, and a lone
// surrogate or invalid UTF-8 replaced by U+FFFD.
func AppendUnquoted[S ~string | ~[]byte](dst []byte, raw S) []byte {
	for i := 0; i < len(raw); {
		c := raw[i]
		switch {
		case c == '\\':
			e := raw[i+1]
			i += 2
			switch e {
			case 'b':
				dst = append(dst, '\b')
			case 'f':
				dst = append(dst, '\f')
			case 'n':
				dst = append(dst, '\n')
			case 'r':
				dst = append(dst, '\r')
			case 't':
				dst = append(dst, '\t')
			case 'u':
				r := Hex4(raw, i)
				i += 4
				if utf16.IsSurrogate(r) {
					if i+1 < len(raw) && raw[i] == '\\' && raw[i+1] == 'u' {
						if dec := utf16.DecodeRune(r, Hex4(raw, i+2)); dec != unicode.ReplacementChar {
							i += 6
							dst = utf8.AppendRune(dst, dec)
							break
						}
					}
					r = unicode.ReplacementChar
				}
				dst = utf8.AppendRune(dst, r)
			default: // '"', '\\', '/'
				dst = append(dst, e)
			}
		case c < utf8.RuneSelf:
			dst = append(dst, c)
			i++
		default:
			// At most four bytes: the conversion stays on the stack.
			r, size := utf8.DecodeRuneInString(string(raw[i:min(i+utf8.UTFMax, len(raw))]))
			dst = utf8.AppendRune(dst, r)
			i += size
		}
	}
	return dst
}
