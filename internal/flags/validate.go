package flags

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"

	"github.com/diegoholiveira/jsonlogic/v3"
	flagdschema "github.com/open-feature/flagd-schemas/json"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

// definition is what validation learnt from a flag file.
type definition struct {
	flags map[string]*flagInfo
}

func (d *definition) keys() []string {
	keys := make([]string, 0, len(d.flags))
	for k := range d.flags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// problems collects what validation finds, each positioned where
// possible: errors, which refuse the file, and warnings, which do not.
type problems struct {
	source string
	data   []byte
	list   []string // errors
	warns  []string
}

func (p *problems) add(offset int, format string, args ...any) {
	p.list = append(p.list, p.line(offset, format, args...))
}

func (p *problems) warn(offset int, format string, args ...any) {
	p.warns = append(p.warns, p.line(offset, format, args...))
}

func (p *problems) line(offset int, format string, args ...any) string {
	msg := fmt.Sprintf(format, args...)
	if offset >= 0 {
		line, col := lineCol(p.data, offset)
		return fmt.Sprintf("%s:%d:%d: %s", p.source, line, col, msg)
	}
	return fmt.Sprintf("%s: %s", p.source, msg)
}

func (p *problems) err() error {
	if len(p.list) == 0 {
		return nil
	}
	return errors.New(strings.Join(p.list, "\n"))
}

// lineCol turns a byte offset into a 1-based line and column.
func lineCol(data []byte, off int) (line, col int) {
	off = min(max(off, 0), len(data))
	line = 1 + bytes.Count(data[:off], []byte("\n"))
	col = off - bytes.LastIndexByte(data[:off], '\n')
	return line, col
}

// validate checks a flag file and sorts what it finds as flagd does.
// Errors are what flagd refuses to load: broken JSON, a document, flag,
// state, variants, defaultVariant or metadata of the wrong JSON type, a
// defaultVariant that names no variant. Everything else flagd loads and
// only logs (its JSON schema findings: partial or v-prefixed versions,
// nested or single-bucket fractional splits, a number where a string is
// expected, unknown states; a typo'd operator or $ref, which then answers
// PARSE_ERROR at evaluation), so umbra loads it too and returns it as
// warnings, umbra's precise ones by flag key first, then the schema's.
func validate(data []byte, source string) (def *definition, warnings []string, err error) {
	p := &problems{source: source, data: data}
	var doc any
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		var se *json.SyntaxError
		switch {
		case errors.As(err, &se):
			p.add(int(se.Offset)-1, "invalid JSON: %v", se)
		case errors.Is(err, io.EOF):
			p.add(-1, "the file is empty: want a JSON object with \"flags\"")
		case errors.Is(err, io.ErrUnexpectedEOF):
			// a truncated file (a partial write): point at its end
			p.add(len(data), "invalid JSON: %v", err)
		default:
			p.add(-1, "invalid JSON: %v", err)
		}
		return nil, nil, p.err()
	}
	end := int(dec.InputOffset())
	if _, err := dec.Token(); err != io.EOF {
		for end < len(data) && strings.IndexByte(" \t\r\n", data[end]) >= 0 {
			end++
		}
		p.add(end, "invalid JSON: text after the top-level object")
		return nil, nil, p.err()
	}
	root, ok := doc.(map[string]any)
	if !ok {
		p.add(0, "want a JSON object with \"flags\", got %s", jsonType(doc))
		return nil, nil, p.err()
	}
	pos := keyOffsets(data)
	evaluators, _ := root["$evaluators"].(map[string]any)
	if ev := root["$evaluators"]; ev != nil && evaluators == nil {
		p.add(pos.of("$evaluators"), "\"$evaluators\" must be an object of named targeting rules, got %s", jsonType(ev))
	}
	if md := root["metadata"]; md != nil {
		if _, ok := md.(map[string]any); !ok {
			p.add(pos.of("metadata"), "\"metadata\" must be an object, got %s", jsonType(md))
		}
	}
	def = &definition{flags: map[string]*flagInfo{}}
	linted := map[string]bool{} // flags umbra's own checks warned about
	check := func(key string, v any, off int) {
		before := len(p.warns)
		def.flags[key] = checkFlag(p, key, v, evaluators, off)
		linted[key] = linted[key] || len(p.warns) > before
	}
	switch fl := root["flags"].(type) {
	case map[string]any:
		for _, k := range sortedKeys(fl) {
			check(k, fl[k], pos.of("flags", k))
		}
	case []any:
		for i, f := range fl {
			m, isObj := f.(map[string]any)
			if !isObj && f != nil {
				p.add(pos.of("flags"), "flags[%d] must be an object, got %s", i, jsonType(f))
				continue
			}
			k, isStr := m["key"].(string)
			switch {
			case m["key"] != nil && !isStr:
				p.add(pos.of("flags"), "flags[%d]: \"key\" must be a string, got %s", i, jsonType(m["key"]))
				continue
			case k == "":
				p.warn(pos.of("flags"), "flags[%d] has no \"key\": it is the flag with the empty key", i)
			case def.flags[k] != nil:
				p.warn(pos.of("flags"), "flag %q is defined twice: the later definition is the one loaded", k)
			}
			check(k, f, -1)
		}
	case nil:
		if _, present := root["flags"]; !present {
			p.add(0, "missing \"flags\": want {\"flags\": {\"my-flag\": {...}}}")
		} else {
			p.warn(pos.of("flags"), "\"flags\" is null: no flags are defined")
		}
	default:
		p.add(pos.of("flags"), "\"flags\" must be an object keyed by flag key, got %s", jsonType(fl))
	}
	if len(p.list) > 0 {
		return nil, nil, p.err()
	}
	schemaProblems(p, doc, pos, linted)
	return def, p.warns, nil
}

// checkFlag checks one flag: wrong JSON types (which flagd's loader
// refuses) are errors, the rest warnings.
func checkFlag(p *problems, key string, v any, evaluators map[string]any, off int) *flagInfo {
	info := &flagInfo{cacheable: true}
	f, ok := v.(map[string]any)
	if !ok {
		if v == nil {
			p.warn(off, "flag %q is null: it has no variants and always answers the code default", key)
			return info
		}
		p.add(off, "flag %q must be an object, got %s", key, jsonType(v))
		return info
	}
	bad := func(format string, args ...any) {
		p.add(off, "flag %q: %s", key, fmt.Sprintf(format, args...))
	}
	lint := func(format string, args ...any) {
		p.warn(off, "flag %q: %s", key, fmt.Sprintf(format, args...))
	}
	for _, field := range []string{"key", "source"} {
		if x, ok := f[field]; ok && x != nil {
			if _, isStr := x.(string); !isStr {
				bad("%s must be a string, got %s", field, jsonType(x))
			}
		}
	}
	switch s := f["state"].(type) {
	case string:
		if s != "ENABLED" && s != "DISABLED" {
			lint("state %q is not \"ENABLED\" or \"DISABLED\": the flag is enabled", s)
		}
	case nil:
		lint("no \"state\": the flag is enabled; write \"state\": \"ENABLED\" or \"DISABLED\"")
	default:
		bad("state must be \"ENABLED\" or \"DISABLED\", got %s", jsonType(s))
	}
	variants, ok := f["variants"].(map[string]any)
	switch {
	case f["variants"] == nil:
		lint("no \"variants\": every evaluation answers the code default or an error")
	case !ok:
		bad("\"variants\" must be an object of variant name to value, got %s", jsonType(f["variants"]))
	case len(variants) == 0:
		lint("\"variants\" is empty")
	}
	info.variants = sortedKeys(variants)
	var firstType, firstName string
	for _, name := range info.variants {
		t := jsonType(variants[name])
		switch {
		case t == "null" || t == "an array":
			lint("variant %q is %s: variants are booleans, strings, numbers or objects", name, t)
		case firstType == "":
			firstType, firstName = t, name
		case t != firstType:
			lint("variants mix types: %q is %s, %q is %s", firstName, firstType, name, t)
		}
	}
	switch dv := f["defaultVariant"].(type) {
	case nil: // no default: the code default applies (flagd's FALLBACK)
	case string:
		// flagd reads "" as no default variant
		if _, known := variants[dv]; dv != "" && !known && (variants != nil || f["variants"] == nil) {
			bad("defaultVariant %q is not one of its variants (%s)", dv, quoteList(info.variants))
		}
	default:
		bad("defaultVariant must be a variant name or null, got %s", jsonType(dv))
	}
	if t, ok := f["targeting"]; ok && t != nil {
		switch tm := t.(type) {
		case map[string]any:
			w := &ruleWalker{evaluators: evaluators, seen: map[string]bool{}}
			w.walk(tm)
			for _, pr := range w.problems {
				lint("targeting: %s", pr)
			}
			info.needsTargetingKey = w.targetingKey
			info.cacheable = !w.uncacheable
		default:
			lint("targeting is %s, not a JSONLogic rule object", jsonType(t))
		}
	}
	if m, ok := f["metadata"]; ok && m != nil {
		mm, isMap := m.(map[string]any)
		if !isMap {
			bad("metadata must be an object, got %s", jsonType(m))
		}
		for _, k := range sortedKeys(mm) {
			switch mm[k].(type) {
			case bool, string, float64:
			default:
				lint("metadata %q is %s: metadata values are booleans, strings or numbers", k, jsonType(mm[k]))
			}
		}
	}
	return info
}

// ruleWalker checks a JSONLogic rule: every operator must be known to
// jsonlogic (with flagd's custom ones registered), every {"$ref": NAME}
// must name an evaluator. It also finds whether the rule depends on the
// targeting key.
type ruleWalker struct {
	evaluators   map[string]any
	seen         map[string]bool // evaluators being expanded, against cycles
	problems     []string
	targetingKey bool
	// uncacheable: the rule reads $flagd.timestamp, or a variable whose
	// name is computed, so equal contexts may evaluate differently.
	uncacheable bool
}

func (w *ruleWalker) walk(v any) {
	switch t := v.(type) {
	case []any:
		for _, x := range t {
			w.walk(x)
		}
	case map[string]any:
		if len(t) != 1 {
			// jsonlogic reads a map of several keys as data, not a rule
			return
		}
		for op, args := range t {
			w.op(op, args)
		}
	}
}

func (w *ruleWalker) op(op string, args any) {
	switch op {
	case "$ref":
		name, _ := args.(string)
		body, ok := w.evaluators[name]
		switch {
		case !ok:
			w.problems = append(w.problems, fmt.Sprintf("$ref %q names no evaluator in \"$evaluators\": evaluations answer PARSE_ERROR", name))
		case w.seen[name]:
			w.problems = append(w.problems, fmt.Sprintf("$ref %q refers to itself: evaluations answer PARSE_ERROR", name))
		default:
			w.seen[name] = true
			w.walk(body)
			delete(w.seen, name)
		}
		return
	case "var":
		name := args
		if a, ok := args.([]any); ok && len(a) > 0 {
			name = a[0]
		}
		switch n, ok := name.(string); {
		case !ok && name != nil:
			w.uncacheable = true
		case n == TargetingKey:
			w.targetingKey = true
		case n == "" || n == "$flagd" || strings.HasPrefix(n, "$flagd.timestamp"):
			w.uncacheable = true
		}
	case "fractional":
		// Without a bucketing expression first, fractional buckets on
		// the flag key and the targeting key.
		if a, ok := args.([]any); ok && len(a) > 0 {
			if _, dist := a[0].([]any); dist || a[0] == nil {
				w.targetingKey = true
			}
		}
	}
	if !jsonlogic.ValidateJsonLogic(map[string]any{op: []any{}}) {
		w.problems = append(w.problems, fmt.Sprintf("unknown operator %q: evaluations answer PARSE_ERROR", op))
		return
	}
	w.walk(args)
}

// schemaProblems adds what flagd's published schema finds as warnings:
// flagd itself only logs them. One warning per flag (or per place outside
// the flags): the deepest finding, which names the value at fault, where
// the schema's alternatives (a value may be a string, a number, a rule...)
// leave one finding per alternative. Flags umbra's own checks already
// warned about (linted) are skipped: their schema findings say the same
// less precisely.
func schemaProblems(p *problems, doc any, pos offsets, linted map[string]bool) {
	s, err := flagdSchema()
	if err != nil {
		p.warn(-1, "cannot compile flagd's schema: %v", err)
		return
	}
	err = s.Validate(doc)
	var ve *jsonschema.ValidationError
	if err == nil || !errors.As(err, &ve) {
		if err != nil {
			p.warn(-1, "%v (flagd schema)", err)
		}
		return
	}
	deepest := map[string]*jsonschema.ValidationError{} // by flag key or top-level place
	var order []string
	for _, leaf := range leafErrors(ve, nil) {
		loc := leaf.InstanceLocation
		if len(loc) == 1 && loc[0] == "flags" || len(loc) >= 3 && loc[0] == "flags" && loc[2] == "variants" {
			continue // checked above: the flags' shape and variants
		}
		group := "/" + strings.Join(loc, "/")
		if len(loc) >= 2 && loc[0] == "flags" {
			if linted[loc[1]] {
				continue
			}
			group = "flags\x00" + loc[1]
		}
		cur, seen := deepest[group]
		if !seen {
			order = append(order, group)
		}
		if !seen || moreSpecific(leaf, cur) {
			deepest[group] = leaf
		}
	}
	sort.Strings(order) // the validator's order follows Go maps
	for _, group := range order {
		leaf := deepest[group]
		loc := leaf.InstanceLocation
		msg := leaf.ErrorKind.LocalizedString(printer)
		if pk, ok := leaf.ErrorKind.(*kind.Pattern); ok {
			// the semantic version pattern is 200 characters of regexp
			msg = fmt.Sprintf("%q does not match the schema's pattern", pk.Got)
		}
		where := "at /" + strings.Join(loc, "/")
		if len(loc) == 0 {
			where = "at the top level"
		}
		off := -1
		if len(loc) >= 2 && loc[0] == "flags" {
			where = fmt.Sprintf("flag %q", loc[1])
			if len(loc) > 2 {
				where += " at /" + strings.Join(loc[2:], "/")
			}
			off = pos.of("flags", loc[1])
		}
		p.warn(off, "%s: %s (flagd schema)", where, msg)
	}
}

// moreSpecific reports whether schema finding a says more than b: it is
// deeper in the document, or as deep and not a bare "additional
// properties" or type finding.
func moreSpecific(a, b *jsonschema.ValidationError) bool {
	if la, lb := len(a.InstanceLocation), len(b.InstanceLocation); la != lb {
		return la > lb
	}
	return vague(b) && !vague(a)
}

func vague(e *jsonschema.ValidationError) bool {
	switch e.ErrorKind.(type) {
	case *kind.AdditionalProperties, *kind.Type:
		return true
	}
	return false
}

var printer = message.NewPrinter(language.English)

// leafErrors returns the innermost causes, which name the concrete
// violations rather than "oneOf failed".
func leafErrors(e *jsonschema.ValidationError, out []*jsonschema.ValidationError) []*jsonschema.ValidationError {
	if len(e.Causes) == 0 {
		return append(out, e)
	}
	for _, c := range e.Causes {
		out = leafErrors(c, out)
	}
	return out
}

var (
	schemaOnce sync.Once
	schema     *jsonschema.Schema
	schemaErr  error
)

func flagdSchema() (*jsonschema.Schema, error) {
	schemaOnce.Do(func() {
		c := jsonschema.NewCompiler()
		for url, text := range map[string]string{
			"https://flagd.dev/schema/v0/flagd.json":     flagdschema.FlagdSchema,
			"https://flagd.dev/schema/v0/flags.json":     flagdschema.FlagSchema,
			"https://flagd.dev/schema/v0/targeting.json": flagdschema.TargetingSchema,
		} {
			doc, err := jsonschema.UnmarshalJSON(strings.NewReader(text))
			if err == nil {
				err = c.AddResource(url, doc)
			}
			if err != nil {
				schemaErr = err
				return
			}
		}
		schema, schemaErr = c.Compile("https://flagd.dev/schema/v0/flagd.json")
	})
	return schema, schemaErr
}

// offsets maps "flags"-level key paths to the byte offset of the key in
// the file, for positioned errors.
type offsets map[string]int

func (o offsets) of(path ...string) int {
	if off, ok := o[strings.Join(path, "\x00")]; ok {
		return off
	}
	return -1
}

// keyOffsets records where the top-level keys and the keys of the
// "flags" object are written.
func keyOffsets(data []byte) offsets {
	type frame struct {
		obj, wantKey bool
		key          string
	}
	o := offsets{}
	dec := json.NewDecoder(bytes.NewReader(data))
	var stack []frame
	for {
		before := dec.InputOffset()
		tok, err := dec.Token()
		if err != nil {
			return o
		}
		if n := len(stack); n > 0 && stack[n-1].obj && stack[n-1].wantKey {
			if key, ok := tok.(string); ok {
				stack[n-1].key, stack[n-1].wantKey = key, false
				off := int(before) + bytes.IndexByte(data[before:], '"')
				switch {
				case n == 1:
					o[key] = off
				case n == 2 && stack[0].key == "flags" && stack[1].obj:
					o["flags\x00"+key] = off
				}
				continue
			}
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, frame{obj: true, wantKey: true})
			continue
		case json.Delim('['):
			stack = append(stack, frame{})
			continue
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
		}
		// a value is complete: the enclosing object expects a key next
		if n := len(stack); n > 0 && stack[n-1].obj {
			stack[n-1].wantKey = true
		}
	}
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func jsonType(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case string:
		return "a string"
	case float64, json.Number:
		return "a number"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}
