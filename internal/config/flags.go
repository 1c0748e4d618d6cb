package config

import (
	"fmt"
	"net/url"
	"os"
	"sort"
	"strings"

	"github.com/umbragw/umbra/internal/jsonpath"
)

// Flags configures feature flags: a flag file in flagd's definition format,
// evaluated in-process, served to callers over OFREP and usable in route
// matching (see docs/config.md, "Feature flags").
type Flags struct {
	// File is the flag definition file (flagd's JSON format). It is
	// watched and reloaded on its own, apart from the config file.
	File string `yaml:"file" json:"file"`
	// The OpenFeature remote evaluation endpoint on the main listener.
	OFREP OFREP `yaml:"ofrep" json:"ofrep"`
}

// OFREP configures the OpenFeature Remote Evaluation Protocol endpoint on
// the main listener.
type OFREP struct {
	// Enabled serves the endpoint; default true.
	Enabled *bool `yaml:"enabled" json:"enabled"`
	// PathPrefix is where the endpoint is mounted; OFREP's paths
	// (/v1/evaluate/flags...) follow it. Default /ofrep.
	PathPrefix string `yaml:"path_prefix" json:"path_prefix"`
	// Browser origins allowed to call the endpoint from JavaScript, or "*".
	CORSOrigins []string `yaml:"cors_origins" json:"cors_origins,omitempty"`
	// RequireTargetingKey answers TARGETING_KEY_MISSING for flags whose
	// targeting buckets on the targeting key when the context has none,
	// instead of flagd's behaviour (the default variant).
	RequireTargetingKey bool `yaml:"require_targeting_key" json:"require_targeting_key"`
	// Require a credential for evaluations (not for CORS preflights).
	Auth OFREPAuth `yaml:"auth" json:"auth"`
}

// On reports whether the OFREP endpoint is served (default true).
func (o OFREP) On() bool { return o.Enabled == nil || *o.Enabled }

// OFREPAuth restricts the OFREP endpoint to callers presenting a key.
// With neither file the endpoint is open.
type OFREPAuth struct {
	// APIKeysFile lists accepted keys, one per line ("KEY" or "NAME KEY"),
	// sent as X-API-Key or Authorization: Bearer.
	APIKeysFile string `yaml:"api_keys_file" json:"api_keys_file,omitempty"`
	// BearerTokenFile holds one token accepted as Authorization: Bearer.
	BearerTokenFile string `yaml:"bearer_token_file" json:"bearer_token_file,omitempty"`
}

// Callers identifies API callers for adoption tracking.
type Callers struct {
	// Key is where a caller's name is read from (header:NAME, cookie:NAME,
	// query:NAME or client_ip).
	Key string `yaml:"key" json:"key,omitempty"`
	// APIKeysFile maps API keys to caller names, one "NAME KEY" per line;
	// the key is read from X-API-Key or Authorization: Bearer. It takes
	// precedence over Key when the request carries a known key.
	APIKeysFile string `yaml:"api_keys_file" json:"api_keys_file,omitempty"`
	// MaxCallers caps the callers tracked by name; the rest are "other".
	MaxCallers int `yaml:"max_callers" json:"max_callers"`

	// Key parsed (set by validation).
	KeySource KeySource `yaml:"-" json:"-"`
}

// Enabled reports whether caller tracking is configured.
func (c Callers) Enabled() bool { return c.Key != "" || c.APIKeysFile != "" }

// FlagMatch is a route condition on a flag's evaluated variant.
type FlagMatch struct {
	// Key of a flag in the flag file.
	Key string `yaml:"key" json:"key"`
	// The variant the caller must get, for example "on".
	Variant string `yaml:"variant" json:"variant"`
}

// ContextAttr is one parsed routes[].flag_context entry: the evaluation
// context attribute Name takes the request value read from Source.
type ContextAttr struct {
	// The evaluation context attribute.
	Name string
	// Where the request's value for it is read from.
	Source KeySource
}

// Adoption configures per-caller field usage counting on a route.
type Adoption struct {
	// MaxBody is how much of a JSON request body is inspected; a longer
	// body is skipped (and counted), never half-read.
	MaxBody ByteSize `yaml:"max_body" json:"max_body"`
	// The fields counted, at most 64.
	Fields []AdoptionField `yaml:"fields" json:"fields"`
}

// AdoptionField is one request-body field whose use is counted.
type AdoptionField struct {
	// Name of the field in reports and metrics; unique within the route.
	Name string `yaml:"name" json:"name"`
	// Where the field is in the body: $ followed by .name, ['name'], [N] or [*].
	Path string `yaml:"path" json:"path"`
}

// APIKey is one line of an API key file.
type APIKey struct {
	Name string // "" when the line holds only the key
	// The key itself.
	Key string
}

const maxAdoptionFields = 64 // adoption.MaxFields

// targetingKey is the evaluation context attribute holding the caller's key.
const targetingKey = "targetingKey"

// ReadAPIKeys reads an API key file: one key per line, either "KEY" or
// "NAME KEY" separated by white space; blank lines and lines starting
// with '#' are ignored. It fails on an empty file and duplicate keys.
func ReadAPIKeys(path string) ([]APIKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var keys []APIKey
	seen := map[string]int{}
	for i, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		var k APIKey
		switch len(f) {
		case 1:
			k.Key = f[0]
		case 2:
			k.Name, k.Key = f[0], f[1]
		default:
			return nil, fmt.Errorf("%s:%d: want KEY or NAME KEY, got %d words", path, i+1, len(f))
		}
		if j, dup := seen[k.Key]; dup {
			return nil, fmt.Errorf("%s:%d: the key on line %d appears again", path, i+1, j)
		}
		seen[k.Key] = i + 1
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("API key file %s holds no key", path)
	}
	return keys, nil
}

// ParseFieldPath parses an adoption rule's path with the shared JSONPath
// grammar (package jsonpath) and keeps the steps a request body can be
// scanned for: names, indexes and "*"; recursive descent ("..") is refused.
func ParseFieldPath(s string) ([]jsonpath.Step, error) {
	p, err := jsonpath.Parse(s)
	if err != nil {
		return nil, err
	}
	for _, st := range p.Steps() {
		if st.Descend {
			return nil, fmt.Errorf("path %q: recursive descent (..) is not supported in adoption rules", s)
		}
	}
	if len(p.Steps()) == 0 {
		return nil, fmt.Errorf("path %q names no field", s)
	}
	return p.Steps(), nil
}

// validateFlagsAndCallers checks the top-level flags and callers blocks.
func (p *parser) validateFlagsAndCallers(c *Config) {
	if f := c.Flags; f != nil {
		path := at("flags")
		switch {
		case f.File == "":
			p.errorf(path, "flags needs file: the flag definitions in flagd's JSON format")
		default:
			if _, err := os.Stat(f.File); err != nil {
				p.errorf(join(path, "file"), "%v", err)
			}
		}
		o := &f.OFREP
		op := join(path, "ofrep")
		if !strings.HasPrefix(o.PathPrefix, "/") || strings.HasSuffix(o.PathPrefix, "/") || strings.ContainsAny(o.PathPrefix, "?# \t{}*") {
			p.errorf(join(op, "path_prefix"), "path_prefix %q: use a path starting with '/' and not ending with '/', for example /ofrep", o.PathPrefix)
		}
		for i, origin := range o.CORSOrigins {
			if !validOrigin(origin) {
				p.errorf(join(op, "cors_origins", i), "CORS origin %q: use scheme://host[:port] without a path, or \"*\"", origin)
			}
		}
		if o.Auth.APIKeysFile != "" {
			if _, err := ReadAPIKeys(o.Auth.APIKeysFile); err != nil {
				p.errorf(join(op, "auth", "api_keys_file"), "%v", err)
			}
		}
		if o.Auth.BearerTokenFile != "" {
			if _, err := ReadToken(o.Auth.BearerTokenFile); err != nil {
				p.errorf(join(op, "auth", "bearer_token_file"), "%v", err)
			}
		}
	}
	cl := &c.Callers
	if cl.Key != "" {
		ks, ok := ParseKey(cl.Key)
		if !ok {
			p.errorf(at("callers", "key"), "key %q: use header:NAME, cookie:NAME, query:NAME or client_ip", cl.Key)
		}
		cl.KeySource = ks
	}
	if cl.APIKeysFile != "" {
		keys, err := ReadAPIKeys(cl.APIKeysFile)
		if err != nil {
			p.errorf(at("callers", "api_keys_file"), "%v", err)
		}
		for _, k := range keys {
			if k.Name == "" {
				p.errorf(at("callers", "api_keys_file"), "%s: every line needs NAME KEY: the name labels the caller", cl.APIKeysFile)
				break
			}
		}
	}
	if cl.MaxCallers < 0 {
		p.errorf(at("callers", "max_callers"), "max_callers must not be negative")
	}
}

func validOrigin(o string) bool {
	if o == "*" {
		return true
	}
	u, err := url.Parse(o)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" &&
		u.Path == "" && u.RawQuery == "" && u.Fragment == "" && u.User == nil
}

// validateRouteFlags checks a route's flag condition, dark flag, flag
// context, forwarded flags and adoption rules. Whether the named flags
// exist is checked when the flag file is loaded against the routes.
func (p *parser) validateRouteFlags(c *Config, r *Route, path []any) {
	needFlags := func(key string) {
		if c.Flags == nil {
			p.errorf(join(path, key), "%s needs flags.file at the top level", key)
		}
	}
	if f := r.Match.Flag; f != nil {
		fp := join(path, "match", "flag")
		needFlags("match")
		if f.Key == "" {
			p.errorf(fp, "match.flag needs key: the flag evaluated for the request")
		}
		if f.Variant == "" {
			p.errorf(fp, "match.flag needs variant: the route matches callers who get this variant")
		}
	}
	if r.Dark && r.Match.Flag == nil {
		p.errorf(join(path, "dark"), "dark: true needs match.flag: a dark route is reachable only for callers its flag lets in")
	}
	r.FlagAttrs = r.FlagAttrs[:0]
	names := make([]string, 0, len(r.FlagContext))
	for name := range r.FlagContext {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		src := r.FlagContext[name]
		ep := join(path, "flag_context", name)
		if name == targetingKey {
			p.errorf(ep, "targetingKey is the route's key (routes[].key); it cannot be set in flag_context")
			continue
		}
		ks, ok := ParseKey(src)
		if !ok {
			p.errorf(ep, "flag_context %s: %q: use header:NAME, cookie:NAME, query:NAME or client_ip", name, src)
			continue
		}
		r.FlagAttrs = append(r.FlagAttrs, ContextAttr{Name: name, Source: ks})
	}
	if len(r.FlagContext) > 0 {
		needFlags("flag_context")
	}
	seen := map[string]bool{}
	for i, k := range r.ForwardFlags {
		switch {
		case k == "":
			p.errorf(join(path, "forward_flags", i), "empty flag key")
		case seen[k]:
			p.errorf(join(path, "forward_flags", i), "flag %q is listed twice", k)
		case strings.ContainsAny(k, ",="):
			p.errorf(join(path, "forward_flags", i), "flag key %q: ',' and '=' cannot be forwarded in X-Umbra-Flags", k)
		}
		seen[k] = true
	}
	if len(r.ForwardFlags) > 0 {
		needFlags("forward_flags")
	}
	if a := r.Adoption; a != nil {
		ap := join(path, "adoption")
		if !c.Callers.Enabled() {
			p.errorf(ap, "adoption counts field use per caller: set callers.key or callers.api_keys_file at the top level")
		}
		if len(a.Fields) == 0 {
			p.errorf(ap, "adoption needs fields: the request body fields whose use is counted")
		}
		if len(a.Fields) > maxAdoptionFields {
			p.errorf(join(ap, "fields"), "at most %d adoption fields per route", maxAdoptionFields)
		}
		fieldNames := map[string]bool{}
		for i := range a.Fields {
			f := &a.Fields[i]
			fp := join(ap, "fields", i)
			switch {
			case f.Name == "":
				p.errorf(fp, "adoption field needs name: it labels the counts")
			case !nameRe.MatchString(f.Name):
				p.errorf(join(fp, "name"), "field name %q: use letters, digits, '.', '_' and '-'", f.Name)
			case fieldNames[f.Name]:
				p.errorf(join(fp, "name"), "field name %q is used twice in this route", f.Name)
			}
			fieldNames[f.Name] = true
			if _, err := ParseFieldPath(f.Path); err != nil {
				p.errorf(join(fp, "path"), "%v", err)
			}
		}
	}
}
