package flags

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/umbragw/umbra/internal/config"
)

// OFREP paths, after the mount prefix.
const (
	ofrepSingle = "/v1/evaluate/flags/"
	ofrepBulk   = "/v1/evaluate/flags"
)

// MaxRequestBody bounds an OFREP request body; larger ones get 413.
const MaxRequestBody = 1 << 20

// HandlerOptions configure the OFREP endpoint.
type HandlerOptions struct {
	// PathPrefix is where the handler is mounted ("/ofrep" by default);
	// it serves PathPrefix+"/v1/evaluate/flags[/{key}]". Standard OFREP
	// providers are configured with the base URL before "/ofrep".
	PathPrefix string
	// CORSOrigins are the browser origins allowed to call the endpoint
	// ("*" for any); other origins get no CORS headers.
	CORSOrigins []string
	// APIKeys and BearerTokens, when any is set, make every evaluation
	// require a credential: X-API-Key: KEY or Authorization: Bearer KEY
	// for API keys, Authorization: Bearer TOKEN for bearer tokens.
	APIKeys      []string
	BearerTokens []string
	// RequireTargetingKey answers TARGETING_KEY_MISSING for a flag whose
	// targeting reads the targeting key when the context has none. By
	// default, as flagd does, such a flag evaluates without it (a
	// fractional split then serves the default variant).
	RequireTargetingKey bool
}

// Handler serves OFREP, the OpenFeature Remote Evaluation Protocol
// (github.com/open-feature/protocol, service/openapi.yaml):
//
//	POST {prefix}/v1/evaluate/flags/{key}   one flag
//	POST {prefix}/v1/evaluate/flags         every flag (ETag, 304)
//
// with the request body {"context": {...}}. Answers and error codes are
// those of flagd's own OFREP service.
type Handler struct {
	e       *Evaluator
	prefix  string
	origins map[string]bool
	anyOrig bool
	keys    map[[32]byte]bool // sha256 of API keys
	bearers map[[32]byte]bool // sha256 of bearer tokens (and API keys)
	reqTK   bool
}

// NewHandler returns the OFREP handler for e.
func NewHandler(e *Evaluator, o HandlerOptions) *Handler {
	h := &Handler{e: e, prefix: strings.TrimSuffix(o.PathPrefix, "/"), origins: map[string]bool{}, reqTK: o.RequireTargetingKey}
	if o.PathPrefix == "" {
		h.prefix = config.DefaultFlags.OFREP.PathPrefix
	}
	for _, or := range o.CORSOrigins {
		if or == "*" {
			h.anyOrig = true
		}
		h.origins[strings.ToLower(or)] = true
	}
	if len(o.APIKeys)+len(o.BearerTokens) > 0 {
		h.keys, h.bearers = map[[32]byte]bool{}, map[[32]byte]bool{}
		for _, k := range o.APIKeys {
			h.keys[sha256.Sum256([]byte(k))] = true
			h.bearers[sha256.Sum256([]byte(k))] = true
		}
		for _, t := range o.BearerTokens {
			h.bearers[sha256.Sum256([]byte(t))] = true
		}
	}
	return h
}

// HandlerFromConfig builds the handler a config asks for, reading its key
// files. It returns nil, nil when flags or OFREP are off.
func HandlerFromConfig(e *Evaluator, f *config.Flags) (*Handler, error) {
	if f == nil || !f.OFREP.On() {
		return nil, nil
	}
	o := HandlerOptions{PathPrefix: f.OFREP.PathPrefix, CORSOrigins: f.OFREP.CORSOrigins, RequireTargetingKey: f.OFREP.RequireTargetingKey}
	if p := f.OFREP.Auth.APIKeysFile; p != "" {
		keys, err := config.ReadAPIKeys(p)
		if err != nil {
			return nil, err
		}
		for _, k := range keys {
			o.APIKeys = append(o.APIKeys, k.Key)
		}
	}
	if p := f.OFREP.Auth.BearerTokenFile; p != "" {
		t, err := config.ReadToken(p)
		if err != nil {
			return nil, err
		}
		o.BearerTokens = append(o.BearerTokens, t)
	}
	return NewHandler(e, o), nil
}

// Prefix is the path the handler is mounted at.
func (h *Handler) Prefix() string { return h.prefix }

// Owns reports whether a request path belongs to the handler: the prefix
// itself or anything under prefix + "/". The gateway sends such requests
// to the handler instead of route matching.
func (h *Handler) Owns(path string) bool {
	return strings.HasPrefix(path, h.prefix) && (len(path) == len(h.prefix) || path[len(h.prefix)] == '/')
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rest, ok := strings.CutPrefix(r.URL.Path, h.prefix)
	var key string
	bulk := false
	switch {
	case !ok:
		writeJSON(w, http.StatusNotFound, generalError{"not an OFREP path"})
		return
	case rest == ofrepBulk || rest == ofrepSingle:
		bulk = true
	case strings.HasPrefix(rest, ofrepSingle):
		key = rest[len(ofrepSingle):]
	default:
		writeJSON(w, http.StatusNotFound, generalError{fmt.Sprintf("no OFREP endpoint at %s: use POST %s%s/{key} or POST %s%s", r.URL.Path, h.prefix, ofrepBulk, h.prefix, ofrepBulk)})
		return
	}
	cors := h.cors(w, r)
	switch r.Method {
	case http.MethodOptions:
		h.preflight(w, r, cors)
		return
	case http.MethodPost:
	default:
		w.Header().Set("Allow", "POST, OPTIONS")
		writeJSON(w, http.StatusMethodNotAllowed, generalError{"OFREP evaluations are POST requests"})
		return
	}
	if status, msg := h.authorize(r); status != 0 {
		if status == http.StatusUnauthorized {
			w.Header().Set("WWW-Authenticate", `Bearer realm="ofrep"`)
		}
		writeJSON(w, status, generalError{msg})
		return
	}
	ctx, code, details := readContext(w, r)
	switch {
	case details == errTooLarge:
		writeJSON(w, http.StatusRequestEntityTooLarge, generalError{details})
		return
	case code != "" && bulk:
		writeJSON(w, http.StatusBadRequest, bulkError{ErrorCode: code, ErrorDetails: details})
		return
	case code != "":
		writeJSON(w, http.StatusBadRequest, evalError{Key: key, ErrorCode: code, ErrorDetails: details, Metadata: map[string]any{}})
		return
	}
	if bulk {
		h.bulk(w, r, ctx)
		return
	}
	h.single(w, key, ctx)
}

func (h *Handler) single(w http.ResponseWriter, key string, ctx map[string]any) {
	if h.reqTK && !hasTargetingKey(ctx) && h.e.NeedsTargetingKey(key) {
		writeJSON(w, http.StatusBadRequest, evalError{Key: key, ErrorCode: ErrTargetingKeyMissing,
			ErrorDetails: fmt.Sprintf("flag `%s` buckets on the targeting key: send context.targetingKey", key), Metadata: map[string]any{}})
		return
	}
	res := h.e.Evaluate(key, ctx)
	switch {
	case res.ErrorCode == ErrFlagNotFound:
		writeJSON(w, http.StatusNotFound, failure(res))
	case !res.OK():
		writeJSON(w, http.StatusBadRequest, failure(res))
	default:
		writeJSON(w, http.StatusOK, success(res))
	}
}

// bulk answers every flag. The ETag is the SHA-256 of the response body,
// as flagd does: the answer depends on the context and, for rules
// reading $flagd.timestamp, on time, so a tag over the flag set alone
// could call a changed answer unchanged.
func (h *Handler) bulk(w http.ResponseWriter, r *http.Request, ctx map[string]any) {
	results, setMetadata := h.e.EvaluateAll(ctx)
	items := make([]any, 0, len(results))
	for _, res := range results {
		switch {
		case h.reqTK && !hasTargetingKey(ctx) && h.e.NeedsTargetingKey(res.Key):
			items = append(items, evalError{Key: res.Key, ErrorCode: ErrTargetingKeyMissing,
				ErrorDetails: fmt.Sprintf("flag `%s` buckets on the targeting key: send context.targetingKey", res.Key), Metadata: map[string]any{}})
		case res.OK():
			items = append(items, success(res))
		default:
			items = append(items, failure(res))
		}
	}
	body, err := json.Marshal(bulkResponse{Flags: items, Metadata: orEmpty(setMetadata)})
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, generalError{"cannot encode the evaluations: " + err.Error()})
		return
	}
	body = append(body, '\n')
	sum := sha256.Sum256(body)
	etag := `"` + hex.EncodeToString(sum[:16]) + `"`
	w.Header().Set("ETag", etag)
	w.Header().Set("Cache-Control", "no-cache")
	if ifNoneMatch(r.Header.Values("If-None-Match"), etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

// ifNoneMatch reports whether any listed entity tag matches etag (weak
// comparison, RFC 9110 13.1.2; "*" matches any).
func ifNoneMatch(fields []string, etag string) bool {
	for _, f := range fields {
		for _, t := range splitTags(f) {
			if t == "*" || strings.TrimPrefix(t, "W/") == etag {
				return true
			}
		}
	}
	return false
}

// splitTags splits an entity-tag list on commas outside quotes.
func splitTags(list string) []string {
	var tags []string
	start, quoted := 0, false
	for i := 0; i <= len(list); i++ {
		if i < len(list) && list[i] == '"' {
			quoted = !quoted
		}
		if i == len(list) || list[i] == ',' && !quoted {
			if t := strings.TrimSpace(list[start:i]); t != "" {
				tags = append(tags, t)
			}
			start = i + 1
		}
	}
	return tags
}

func hasTargetingKey(ctx map[string]any) bool {
	s, _ := ctx[TargetingKey].(string)
	return s != ""
}

const errTooLarge = "request body too large"

// readContext decodes {"context": {...}}. An empty body is an empty
// context, as in flagd. Malformed JSON is PARSE_ERROR; a context that is
// not an object, or a targetingKey that is not a string, INVALID_CONTEXT.
func readContext(w http.ResponseWriter, r *http.Request) (ctx map[string]any, code, details string) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxRequestBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, ErrParse, errTooLarge
		}
		return nil, ErrParse, "cannot read the request body: " + err.Error()
	}
	ctx = map[string]any{}
	if len(bytes.TrimSpace(body)) == 0 {
		return ctx, "", ""
	}
	var req struct {
		Context json.RawMessage `json:"context"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&req); err != nil {
		return nil, ErrParse, "the request body is not valid JSON: " + err.Error()
	}
	if dec.More() {
		return nil, ErrParse, "the request body holds more than one JSON value"
	}
	if raw := bytes.TrimSpace(req.Context); len(raw) > 0 && !bytes.Equal(raw, []byte("null")) {
		if raw[0] != '{' {
			return nil, ErrInvalidContext, "context must be a JSON object"
		}
		if err := json.Unmarshal(raw, &ctx); err != nil {
			return nil, ErrParse, "the context is not valid JSON: " + err.Error()
		}
	}
	if tk, ok := ctx[TargetingKey]; ok {
		if _, isStr := tk.(string); !isStr {
			return nil, ErrInvalidContext, "context.targetingKey must be a string"
		}
	}
	return ctx, "", ""
}

// authorize returns 0 when the request may evaluate, else 401 (no
// credential) or 403 (a credential that is not accepted).
func (h *Handler) authorize(r *http.Request) (int, string) {
	if h.keys == nil {
		return 0, ""
	}
	if k := r.Header.Get("X-API-Key"); k != "" {
		if match(h.keys, k) {
			return 0, ""
		}
		return http.StatusForbidden, "the API key is not accepted"
	}
	if a := r.Header.Get("Authorization"); a != "" {
		scheme, tok, _ := strings.Cut(a, " ")
		if strings.EqualFold(scheme, "Bearer") && match(h.bearers, strings.TrimSpace(tok)) {
			return 0, ""
		}
		return http.StatusForbidden, "the bearer token is not accepted"
	}
	return http.StatusUnauthorized, "credentials required: send X-API-Key or Authorization: Bearer"
}

// match compares hashes, so the time taken says nothing about how much
// of a key was right.
func match(set map[[32]byte]bool, cred string) bool {
	sum := sha256.Sum256([]byte(cred))
	ok := false
	for k := range set {
		ok = subtle.ConstantTimeCompare(k[:], sum[:]) == 1 || ok
	}
	return ok
}

// cors sets the CORS response headers when the request's Origin is
// allowed, and reports whether it is.
func (h *Handler) cors(w http.ResponseWriter, r *http.Request) bool {
	origin := r.Header.Get("Origin")
	w.Header().Add("Vary", "Origin")
	if origin == "" || !(h.anyOrig || h.origins[strings.ToLower(origin)]) {
		return false
	}
	w.Header().Set("Access-Control-Allow-Origin", origin)
	w.Header().Set("Access-Control-Expose-Headers", "ETag")
	return true
}

func (h *Handler) preflight(w http.ResponseWriter, r *http.Request, allowed bool) {
	if r.Header.Get("Origin") == "" || r.Header.Get("Access-Control-Request-Method") == "" {
		// a plain OPTIONS request
		w.Header().Set("Allow", "POST, OPTIONS")
		w.WriteHeader(http.StatusNoContent)
		return
	}
	if !allowed {
		writeJSON(w, http.StatusForbidden, generalError{"origin not allowed"})
		return
	}
	if m := r.Header.Get("Access-Control-Request-Method"); m != http.MethodPost {
		writeJSON(w, http.StatusForbidden, generalError{"method not allowed: OFREP evaluations are POST requests"})
		return
	}
	w.Header().Set("Access-Control-Allow-Methods", "POST, OPTIONS")
	w.Header().Set("Access-Control-Allow-Headers", "Content-Type, Authorization, X-API-Key, If-None-Match")
	w.Header().Set("Access-Control-Max-Age", "600")
	w.WriteHeader(http.StatusNoContent)
}

// OFREP bodies (service/openapi.yaml).

type successBody struct {
	Key      string         `json:"key"`
	Value    any            `json:"value,omitempty"`
	Reason   string         `json:"reason"`
	Variant  string         `json:"variant,omitempty"`
	Metadata map[string]any `json:"metadata"`
}

func success(r Result) successBody {
	return successBody{Key: r.Key, Value: r.Value, Reason: r.Reason, Variant: r.Variant, Metadata: orEmpty(r.Metadata)}
}

// orEmpty is metadata for a body: flagd writes a missing one as null,
// which OFREP's schema (an object) does not allow; umbra writes {}.
func orEmpty(md map[string]any) map[string]any {
	if md == nil {
		return map[string]any{}
	}
	return md
}

// evalError is OFREP's evaluationFailure, with flagd's fields: metadata
// (the flag's, as far as flagd read it) is always there.
type evalError struct {
	Key          string         `json:"key"`
	ErrorCode    string         `json:"errorCode"`
	ErrorDetails string         `json:"errorDetails,omitempty"`
	Metadata     map[string]any `json:"metadata"`
}

// failure is the error body for a failed evaluation.
func failure(r Result) evalError {
	return evalError{Key: r.Key, ErrorCode: r.ErrorCode, ErrorDetails: r.ErrorDetails, Metadata: orEmpty(r.Metadata)}
}

type bulkError struct {
	ErrorCode    string `json:"errorCode"`
	ErrorDetails string `json:"errorDetails,omitempty"`
}

// bulkResponse carries the flag set's metadata, as flagd's does.
type bulkResponse struct {
	Flags    []any          `json:"flags"`
	Metadata map[string]any `json:"metadata"`
}

type generalError struct {
	ErrorDetails string `json:"errorDetails"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		status, body = http.StatusInternalServerError, []byte(`{"errorDetails":"cannot encode the answer"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}
