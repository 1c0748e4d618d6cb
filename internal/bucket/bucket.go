// Package bucket assigns callers to stable buckets: it reads a caller's key
// from a request (header, cookie, query parameter or client address) and
// hashes it to one of a million buckets. Shadow sampling and canary
// assignment include a caller when its bucket is below the share, so the
// same caller always gets the same answer and shares nest: everyone in at
// 5% is in at 10%.
//
// The hash is FNV-1a 64 of the key's bytes, finished with MurmurHash3's
// fmix64 so that keys differing only in their last byte ("user-1",
// "user-2") spread over all buckets; bucket = hash mod 1,000,000. A salt,
// when given, is hashed before the key, so different features (shadow,
// canary) can draw independent samples from the same callers.
package bucket

import (
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/umbragw/umbra/internal/config"
)

// Count is the number of buckets: shares have a resolution of 0.0001%.
const Count = 1_000_000

// Key reads the caller's key from r. ok is false when the route has no key
// source or the request does not carry it.
func Key(r *http.Request, src config.KeySource) (key string, ok bool) {
	switch src.Kind {
	case "header":
		if v := r.Header[http.CanonicalHeaderKey(src.Name)]; len(v) > 0 && v[0] != "" {
			return v[0], true
		}
	case "cookie":
		if c, err := r.Cookie(src.Name); err == nil && c.Value != "" {
			return c.Value, true
		}
	case "query":
		return queryValue(r.URL.RawQuery, src.Name)
	case "client_ip":
		if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
			return host, true
		}
	}
	return "", false
}

// queryValue finds the first value of name in a raw query without parsing
// the whole query into a map.
func queryValue(raw, name string) (string, bool) {
	for raw != "" {
		var part string
		part, raw, _ = strings.Cut(raw, "&")
		k, v, _ := strings.Cut(part, "=")
		if k != name {
			if uk, err := url.QueryUnescape(k); err != nil || uk != name {
				continue
			}
		}
		if strings.ContainsAny(v, "%+") {
			if uv, err := url.QueryUnescape(v); err == nil {
				v = uv
			}
		}
		return v, v != ""
	}
	return "", false
}

const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

// Of returns the key's bucket in [0, Count).
func Of(salt, key string) uint32 {
	h := uint64(fnvOffset)
	for i := 0; i < len(salt); i++ {
		h = (h ^ uint64(salt[i])) * fnvPrime
	}
	for i := 0; i < len(key); i++ {
		h = (h ^ uint64(key[i])) * fnvPrime
	}
	return uint32(fmix64(h) % Count)
}

// fmix64 is MurmurHash3's 64-bit finaliser: every input bit affects every
// output bit.
func fmix64(h uint64) uint64 {
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return h
}

// Random returns a random bucket, for callers without a key.
func Random() uint32 { return uint32(rand.Uint64N(Count)) }

// In reports whether bucket b falls in a share of percent (0 to 100).
func In(b uint32, percent float64) bool {
	return float64(b) < percent*(Count/100)
}
