package proxy

import (
	"net/http"
	"slices"
	"strings"

	"github.com/umbragw/umbra/internal/flags"
)

// forwardFlags sets X-Umbra-Flags to the route's chosen evaluations for
// this caller, so callees need no flag client. A client-sent header is
// always removed: only umbra's evaluation counts.
func forwardFlags(snap *Snapshot, route *Route, r *http.Request) {
	if _, sent := r.Header[flags.HeaderName]; sent {
		r.Header.Del(flags.HeaderName)
	}
	if len(route.Config.ForwardFlags) == 0 || snap.Flags == nil {
		return
	}
	if v := flags.ForwardHeaderFor(snap.Flags, r, route.Config); v != "" {
		r.Header.Set(flags.HeaderName, v)
	}
}

// flagEvaluations lists, as "key=variant", the flag the route matched on
// and the flags forwarded upstream in X-Umbra-Flags, for the request's span.
func flagEvaluations(route *Route, r *http.Request) []string {
	var out []string
	if f := route.Config.Match.Flag; f != nil {
		out = append(out, f.Key+"="+f.Variant)
	}
	for _, v := range r.Header[flags.HeaderName] {
		for e := range strings.SplitSeq(v, ",") {
			if e = strings.TrimSpace(e); e != "" && !slices.Contains(out, e) {
				out = append(out, e)
			}
		}
	}
	return out
}
