package jsonpath

import (
	"encoding/json"
	"testing"
)

// FuzzAppendUnquoted: for every valid JSON string, AppendUnquoted decodes
// its body as encoding/json does, from a string and from bytes alike.
func FuzzAppendUnquoted(f *testing.F) {
	for _, s := range []string{`plain`, `a\"b\\c\/d\b\f\n\r\t`, `\u00e9\u006D`, `\ud83d\ude00`, `\ud83d`, `\ude00x`,
		`\ud83d\u0041`, `\ud83d\ud83d`, "\xff\xfe", "h\xc3\xa9", "\xe2\x82"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		var want string
		if json.Unmarshal([]byte(`"`+body+`"`), &want) != nil {
			return
		}
		if got := string(AppendUnquoted(nil, body)); got != want {
			t.Errorf("AppendUnquoted(%q) = %q, encoding/json %q", body, got, want)
		}
		if got := string(AppendUnquoted([]byte("x"), []byte(body))); got != "x"+want {
			t.Errorf("AppendUnquoted(bytes %q) = %q, encoding/json %q", body, got, want)
		}
	})
}

func TestHex4(t *testing.T) {
	for s, want := range map[string]rune{"00e9": 0xe9, "FFFF": 0xffff, "aBcD": 0xabcd, "00g0": -1, "123": -1} {
		if got := Hex4(s, 0); got != want {
			t.Errorf("Hex4(%q) = %x, want %x", s, got, want)
		}
	}
	if Hex4("\\u12", 2) != -1 || Hex4([]byte("\\u0041"), 2) != 'A' {
		t.Error("Hex4 at an offset")
	}
}
