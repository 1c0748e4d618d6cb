package flags

import (
	"encoding/json"
	"net/http"
)

// AdminHandler serves the running flag set for the admin API
// (GET /api/v1/flags): its Info and, per flag, its variants and whether
// its targeting reads the targeting key.
func (e *Evaluator) AdminHandler() http.Handler {
	type flag struct {
		Key               string   `json:"key"`
		Variants          []string `json:"variants"`
		NeedsTargetingKey bool     `json:"needs_targeting_key"`
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "use GET"})
			return
		}
		out := struct {
			Info
			List []flag `json:"list"`
		}{Info: e.Info(), List: []flag{}}
		if s := e.cur.Load(); s != nil {
			for _, k := range s.keys {
				f := s.flags[k]
				out.List = append(out.List, flag{Key: k, Variants: f.variants, NeedsTargetingKey: f.needsTargetingKey})
			}
		}
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(out)
	})
}
