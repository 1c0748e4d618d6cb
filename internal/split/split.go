// Package split assigns a route's requests to its live or canary backend.
//
// Assignment is sticky and monotone: a caller's bucket (see package bucket)
// is fixed, and the caller is in the canary when its bucket is below the
// weight. Raising the weight only adds callers (everyone in at 5% is in at
// 25%), lowering it only removes them, and nobody flips back and forth
// while the weight stands still (Flagger issue 1532).
//
// The bucket is salted with the canary backend's name, so two services
// rolling out at the same time do not pick the same unlucky callers, while
// every route of one service sends a given caller the same way.
//
// Callers without a key get a random bucket, remembered in an affinity
// cookie, so their session stays on one version; the cookie holds the
// bucket, not the decision, so it stays monotone as the weight changes.
package split

import (
	"net/http"
	"strconv"
	"sync/atomic"

	"github.com/umbragw/umbra/internal/bucket"
	"github.com/umbragw/umbra/internal/config"
)

// Override header values.
const (
	OverrideCanary = "canary"
	OverrideLive   = "live"
)

// CookieMaxAge is how long a keyless caller's assignment is remembered.
const CookieMaxAge = 30 * 24 * 3600

// Split is one route's live/canary assignment. Weight changes are atomic;
// everything else is fixed at compile time.
type Split struct {
	salt     string
	key      config.KeySource
	override string // header name; "" when disabled
	cookie   string
	weight   atomic.Uint64 // in buckets: percent × 10,000
}

// New builds the split of a route with a canary.
func New(route *config.Route) *Split {
	c := route.Canary
	s := &Split{salt: c.Backend, key: route.KeySource, override: c.OverrideHeader, cookie: c.Cookie}
	s.SetWeight(float64(c.Weight))
	return s
}

// SetWeight sets the canary share in percent (0 to 100, decimals allowed).
func (s *Split) SetWeight(percent float64) {
	s.weight.Store(uint64(percent * (bucket.Count / 100)))
}

// Weight is the canary share in percent.
func (s *Split) Weight() float64 { return float64(s.weight.Load()) / (bucket.Count / 100) }

// Decide reports whether r goes to the canary. setCookie is non-empty when
// a keyless caller was just assigned a bucket: the proxy adds it to the
// response so the caller keeps its version.
func (s *Split) Decide(r *http.Request) (canary bool, setCookie string) {
	if s.override != "" {
		switch r.Header.Get(s.override) {
		case OverrideCanary:
			return true, ""
		case OverrideLive:
			return false, ""
		}
	}
	w := s.weight.Load()
	if w == 0 {
		return false, ""
	}
	if w >= bucket.Count {
		return true, ""
	}
	b, setCookie := s.bucketOf(r)
	return uint64(b) < w, setCookie
}

func (s *Split) bucketOf(r *http.Request) (uint32, string) {
	if key, ok := bucket.Key(r, s.key); ok {
		return bucket.Of(s.salt, key), ""
	}
	if c, err := r.Cookie(s.cookie); err == nil {
		if n, err := strconv.ParseUint(c.Value, 10, 32); err == nil && n < bucket.Count {
			return uint32(n), ""
		}
	}
	b := bucket.Random()
	return b, (&http.Cookie{Name: s.cookie, Value: strconv.FormatUint(uint64(b), 10), Path: "/",
		MaxAge: CookieMaxAge, HttpOnly: true, SameSite: http.SameSiteLaxMode}).String()
}
