package adoption

import (
	"net/http"
	"strings"

	"github.com/umbragw/umbra/internal/bucket"
	"github.com/umbragw/umbra/internal/config"
)

// Identifier names the caller of a request, as the callers block says.
type Identifier struct {
	src  config.KeySource
	keys map[string]string // API key to caller name
}

// NewIdentifier builds the identifier of a callers block, reading its API
// key file. It returns nil, nil when callers is not configured (no
// adoption tracking).
func NewIdentifier(c config.Callers) (*Identifier, error) {
	if !c.Enabled() {
		return nil, nil
	}
	id := &Identifier{src: c.KeySource}
	if id.src.Kind == "" && c.Key != "" {
		id.src, _ = config.ParseKey(c.Key)
	}
	if c.APIKeysFile != "" {
		keys, err := config.ReadAPIKeys(c.APIKeysFile)
		if err != nil {
			return nil, err
		}
		id.keys = make(map[string]string, len(keys))
		for _, k := range keys {
			id.keys[k.Key] = k.Name
		}
	}
	return id, nil
}

// Caller returns the caller's name: the name of a known API key sent as
// X-API-Key or Authorization: Bearer, else the value of callers.key, else
// "" (counted as "unknown").
func (id *Identifier) Caller(r *http.Request) string {
	if id == nil {
		return ""
	}
	if id.keys != nil {
		k := r.Header.Get("X-API-Key")
		if k == "" {
			if scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " "); ok && strings.EqualFold(scheme, "Bearer") {
				k = strings.TrimSpace(tok)
			}
		}
		if name, ok := id.keys[k]; ok && k != "" {
			return name
		}
	}
	if id.src.Kind != "" {
		if v, ok := bucket.Key(r, id.src); ok {
			return v
		}
	}
	return ""
}

// IsJSON reports whether a Content-Type names a JSON body
// (application/json, application/*+json), the only bodies worth passing
// to Route.Observe.
func IsJSON(contentType string) bool {
	mt, _, _ := strings.Cut(contentType, ";")
	mt = strings.ToLower(strings.TrimSpace(mt))
	return mt == "application/json" || strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json")
}
