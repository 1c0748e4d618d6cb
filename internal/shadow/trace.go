package shadow

import (
	"encoding/hex"
	"math/rand/v2"
	"net/http"
	"time"
)

// timeNow is the clock; tests of the breaker replace it.
var timeNow = time.Now

// W3C Trace Context: "00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>".
// A copy keeps the live request's trace id with a span id of its own, so
// the new version's outbound calls can be paired with the live version's.

// ensureTraceparent gives a sampled live request a traceparent when it has
// none, so the live request and its copies share one trace id.
func ensureTraceparent(r *http.Request) {
	if validTraceparent(r.Header.Get(HeaderTraceparent)) {
		return
	}
	var b [24]byte
	fillRandom(b[:])
	r.Header.Set(HeaderTraceparent, "00-"+hex.EncodeToString(b[:16])+"-"+hex.EncodeToString(b[16:])+"-01")
}

// childTraceparent returns parent's trace with a new span id.
func childTraceparent(parent string) string {
	var span [8]byte
	fillRandom(span[:])
	if !validTraceparent(parent) {
		var trace [16]byte
		fillRandom(trace[:])
		return "00-" + hex.EncodeToString(trace[:]) + "-" + hex.EncodeToString(span[:]) + "-01"
	}
	return parent[:36] + hex.EncodeToString(span[:]) + parent[52:]
}

func validTraceparent(s string) bool {
	if len(s) != 55 || s[2] != '-' || s[35] != '-' || s[52] != '-' || s[:2] == "ff" {
		return false
	}
	for i, c := range []byte(s) {
		if i == 2 || i == 35 || i == 52 {
			continue
		}
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return s[3:35] != "00000000000000000000000000000000" && s[36:52] != "0000000000000000"
}

func fillRandom(b []byte) {
	for i := 0; i < len(b); i += 8 {
		v := rand.Uint64()
		for j := 0; j < 8 && i+j < len(b); j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
}
