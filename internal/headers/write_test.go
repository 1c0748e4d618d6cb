package headers

import (
	"bufio"
	"bytes"
	"net/http"
	"testing"
)

// writeFieldStdlib is what net/http writes for one field.
func writeFieldStdlib(k, v string) string {
	var b bytes.Buffer
	http.Header{k: {v}}.Write(&b)
	return b.String()
}

func writeFieldOurs(k, v string, bufSize int) string {
	var b bytes.Buffer
	bw := bufio.NewWriterSize(&b, bufSize)
	bw.WriteString("x") // a partly filled buffer, as in a head
	WriteField(bw, k, v)
	bw.Flush()
	return b.String()[1:]
}

func TestWriteFieldMatchesNetHTTP(t *testing.T) {
	values := []string{"", "plain", " lead", "trail\t", "\t both ", "a\r\nInjected: yes", "line\nbreak", "\r", " \r\n ",
		"with  inner   spaces", "tab\tinside", "ünïcode", string(make([]byte, 300))}
	for _, v := range values {
		for _, size := range []int{16, 4096} { // the field does not fit / fits
			if got, want := writeFieldOurs("X-Test", v, size), writeFieldStdlib("X-Test", v); got != want {
				t.Errorf("value %q, buffer %d: wrote %q, net/http %q", v, size, got, want)
			}
		}
	}
}

func FuzzWriteField(f *testing.F) {
	for _, v := range []string{"", "plain", " a ", "a\r\nb", "\n", "\t"} {
		f.Add(v, uint8(0))
	}
	f.Fuzz(func(t *testing.T, v string, size uint8) {
		if got, want := writeFieldOurs("X-Fuzz", v, 16+int(size)), writeFieldStdlib("X-Fuzz", v); got != want {
			t.Fatalf("value %q: wrote %q, net/http %q", v, got, want)
		}
	})
}
