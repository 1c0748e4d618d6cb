package flags

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	flagdeval "github.com/open-feature/flagd/core/pkg/evaluator"
	flagdlog "github.com/open-feature/flagd/core/pkg/logger"
	"github.com/open-feature/flagd/core/pkg/model"
	flagdofrep "github.com/open-feature/flagd/core/pkg/service/ofrep"
	"github.com/open-feature/flagd/core/pkg/store"
	flagdsync "github.com/open-feature/flagd/core/pkg/sync"
)

// Reasons and error codes, as OpenFeature and flagd name them.
const (
	ReasonStatic         = model.StaticReason
	ReasonTargetingMatch = model.TargetingMatchReason
	ReasonDefault        = model.DefaultReason
	ReasonDisabled       = model.DisabledReason
	ReasonError          = model.ErrorReason

	ErrFlagNotFound        = model.FlagNotFoundErrorCode
	ErrParse               = model.ParseErrorCode
	ErrGeneral             = model.GeneralErrorCode
	ErrInvalidContext      = model.InvalidContextCode
	ErrTargetingKeyMissing = "TARGETING_KEY_MISSING"
)

// TargetingKey is the context attribute flagd buckets on.
const TargetingKey = "targetingKey"

// Result is one flag evaluation. On success Reason is set and, unless
// the flag is disabled or defers to the code default (no defaultVariant),
// Value and Variant too; on failure ErrorCode and ErrorDetails are set.
type Result struct {
	Key          string         `json:"key"`
	Value        any            `json:"value,omitempty"`
	Variant      string         `json:"variant,omitempty"`
	Reason       string         `json:"reason,omitempty"`
	ErrorCode    string         `json:"errorCode,omitempty"`
	ErrorDetails string         `json:"errorDetails,omitempty"`
	Metadata     map[string]any `json:"metadata,omitempty"`
}

// OK reports whether the evaluation succeeded.
func (r Result) OK() bool { return r.ErrorCode == "" }

// Info describes the running flag set.
type Info struct {
	Source   string    `json:"source"`
	Hash     string    `json:"hash"`    // sha256 of the file, hex
	Version  uint64    `json:"version"` // 1 for the first load, +1 per change
	Flags    int       `json:"flags"`
	LoadedAt time.Time `json:"loaded_at"`
	// Warnings are what validation found in the file that flagd, too,
	// loads and only logs (its schema findings, umbra's lints), one per
	// line as "SOURCE[:LINE:COL]: flag "KEY": finding".
	Warnings []string `json:"warnings"`
}

// Evaluator evaluates the running flag set. The zero value is not usable;
// call New. All methods are safe for concurrent use.
type Evaluator struct {
	mu       sync.Mutex // serialises loads
	cur      atomic.Pointer[snapshot]
	required atomic.Pointer[[]Ref]
	version  atomic.Uint64
}

// snapshot is one loaded flag set with its own flagd store and evaluator,
// never changed after the swap.
type snapshot struct {
	eval  *flagdeval.JSON
	flags map[string]*flagInfo
	keys  []string // sorted
	info  Info
	cache *resultCache
}

// flagInfo is what umbra learnt about a flag when loading it.
type flagInfo struct {
	variants []string // sorted
	// needsTargetingKey: the targeting reads targetingKey, directly or
	// through a fractional split without its own bucketing value.
	needsTargetingKey bool
	// cacheable: the result depends on the flag set and the context only
	// (the rule reads no $flagd.timestamp nor a computed variable name).
	cacheable bool
}

// New returns an Evaluator with no flags: every evaluation answers
// FLAG_NOT_FOUND until a flag set is loaded.
func New() *Evaluator { return &Evaluator{} }

// quietLogger drops flagd's logs: problems surface as results and load
// errors instead.
var quietLogger = flagdlog.NewLogger(nil, false)

// LoadFile reads and loads a flag file; see Load.
func (e *Evaluator) LoadFile(path string) error {
	_, err := e.reload(path)
	return err
}

func readFile(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("flags: %w", err)
	}
	return data, nil
}

// Load validates data, a flag file in flagd's format named source in
// errors, and swaps it in. Loading the flags already running is a no-op.
// It refuses what flagd refuses to load (see validate); then the running
// flags stay and the error names every problem, one per line, as
// "SOURCE[:LINE:COL]: flag "KEY": reason". What flagd loads with a
// warning is loaded, and the warnings are in Info().Warnings.
func (e *Evaluator) Load(data []byte, source string) error {
	_, err := e.load(data, source)
	return err
}

func (e *Evaluator) load(data []byte, source string) (changed bool, err error) {
	if source == "" {
		source = "flags"
	}
	hash := hashOf(data)
	e.mu.Lock()
	defer e.mu.Unlock()
	if cur := e.cur.Load(); cur != nil && cur.info.Hash == hash && cur.info.Source == source {
		return false, nil
	}
	// Building the flagd evaluator first registers flagd's custom
	// operators (fractional, sem_ver, starts_with, ends_with), which
	// validation checks targeting rules against.
	st, err := store.NewStore(quietLogger, []string{source})
	if err != nil {
		return false, fmt.Errorf("%s: %w", source, err)
	}
	ev := flagdeval.NewJSON(quietLogger, st)
	def, warnings, err := validate(data, source)
	if err != nil {
		return false, err
	}
	if warnings == nil {
		warnings = []string{} // [] in the admin API, not null
	}
	if err := ev.SetState(flagdsync.DataSync{FlagData: string(data), Source: source}); err != nil {
		return false, fmt.Errorf("%s: %w", source, err)
	}
	if req := e.required.Load(); req != nil {
		if err := checkRefs(def.flags, *req); err != nil {
			return false, fmt.Errorf("%s: %w", source, err)
		}
	}
	s := &snapshot{eval: ev, flags: def.flags, keys: def.keys(), cache: newResultCache()}
	s.info = Info{Source: source, Hash: hash, Version: e.version.Add(1), Flags: len(def.flags), LoadedAt: time.Now(), Warnings: warnings}
	e.cur.Store(s)
	return true, nil
}

func hashOf(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// Info describes the running flag set (zero before the first load). Its
// Warnings must not be modified.
func (e *Evaluator) Info() Info {
	if s := e.cur.Load(); s != nil {
		return s.info
	}
	return Info{}
}

// Keys returns the keys of the running flags, sorted.
func (e *Evaluator) Keys() []string {
	if s := e.cur.Load(); s != nil {
		return slices.Clone(s.keys)
	}
	return nil
}

// Has reports whether the running flag set defines key.
func (e *Evaluator) Has(key string) bool {
	s := e.cur.Load()
	return s != nil && s.flags[key] != nil
}

// Variants returns the variant names of flag key, sorted (nil when the
// flag is not defined).
func (e *Evaluator) Variants(key string) []string {
	if s := e.cur.Load(); s != nil && s.flags[key] != nil {
		return slices.Clone(s.flags[key].variants)
	}
	return nil
}

// NeedsTargetingKey reports whether flag key's targeting reads the
// targeting key (directly, or a fractional split bucketing on it).
func (e *Evaluator) NeedsTargetingKey(key string) bool {
	s := e.cur.Load()
	return s != nil && s.flags[key] != nil && s.flags[key].needsTargetingKey
}

var bg = context.Background()

// Evaluate evaluates flag key for the evaluation context ctx, which it
// does not modify. The Result's Value and Metadata may be shared with
// other callers: do not modify them.
func (e *Evaluator) Evaluate(key string, ctx map[string]any) Result {
	s := e.cur.Load()
	if s == nil {
		return notFound(key)
	}
	return s.evaluate(key, ctx)
}

func (s *snapshot) evaluate(key string, ctx map[string]any) Result {
	f := s.flags[key]
	if f == nil {
		return notFound(key)
	}
	if f.cacheable && len(ctx) <= maxCachedAttrs {
		var buf [maxCachedAttrs]kv
		if attrs, ok := mapAttrs(ctx, buf[:]); ok {
			return s.evaluateAttrs(key, f, attrs, ctx)
		}
	}
	return result(s.eval.ResolveAsAnyValue(bg, "", key, ctx))
}

// maxCachedAttrs bounds the context attributes of a cached evaluation.
const maxCachedAttrs = 8

// evaluateAttrs evaluates through the cache; attrs is the context sorted
// by name, ctx the same context as a map or nil (built on a miss).
func (s *snapshot) evaluateAttrs(key string, f *flagInfo, attrs []kv, ctx map[string]any) Result {
	var kb [256]byte
	k, ok := appendKey(kb[:0], key, attrs)
	if !f.cacheable || !ok {
		return result(s.eval.ResolveAsAnyValue(bg, "", key, ctxOf(attrs, ctx)))
	}
	if r, hit := s.cache.get(k); hit {
		return r
	}
	r := result(s.eval.ResolveAsAnyValue(bg, "", key, ctxOf(attrs, ctx)))
	s.cache.add(k, r)
	return r
}

func ctxOf(attrs []kv, ctx map[string]any) map[string]any {
	if ctx != nil {
		return ctx
	}
	ctx = make(map[string]any, len(attrs))
	for _, a := range attrs {
		ctx[a.name] = a.value
	}
	return ctx
}

// EvaluateAll evaluates every flag for ctx, sorted by key, and returns
// the flag set's metadata (the file's top-level "metadata") too.
func (e *Evaluator) EvaluateAll(ctx map[string]any) ([]Result, map[string]any) {
	s := e.cur.Load()
	if s == nil {
		return []Result{}, nil
	}
	vals, setMetadata, err := s.eval.ResolveAllValues(bg, "", ctx)
	if err != nil {
		// The store is in memory: this does not happen. Answer per flag.
		out := make([]Result, len(s.keys))
		for i, k := range s.keys {
			out[i] = Result{Key: k, Reason: ReasonError, ErrorCode: ErrGeneral, ErrorDetails: err.Error()}
		}
		return out, setMetadata
	}
	out := make([]Result, len(vals))
	for i, v := range vals {
		out[i] = result(v)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, setMetadata
}

// Variant returns the variant flag key evaluates to for ctx, or "" when
// the evaluation fails, the flag is disabled or it defers to the code
// default. Routing uses it: "" never equals a configured variant.
func (e *Evaluator) Variant(key string, ctx map[string]any) string {
	return e.cur.Load().variant(key, ctx)
}

// variant evaluates key in this flag set (nil-safe).
func (s *snapshot) variant(key string, ctx map[string]any) string {
	if s == nil {
		return ""
	}
	return s.evaluate(key, ctx).Variant
}

// variantAttrs is variant for a context given as attributes sorted by
// name; it builds no map unless the cache misses (nil-safe).
func (s *snapshot) variantAttrs(key string, attrs []kv) string {
	if s == nil {
		return ""
	}
	f := s.flags[key]
	if f == nil {
		return ""
	}
	return s.evaluateAttrs(key, f, attrs, nil).Variant
}

func notFound(key string) Result {
	return Result{Key: key, Reason: ReasonError, ErrorCode: ErrFlagNotFound, ErrorDetails: fmt.Sprintf("flag `%s` does not exist", key)}
}

// result converts flagd's answer as flagd's own OFREP service does
// (flagd/core's service/ofrep, used here so the codes and details are
// flagd's): FLAG_NOT_FOUND, PARSE_ERROR (a rule jsonlogic cannot apply: an
// unknown operator, a $ref to no evaluator) and GENERAL for the rest (a
// rule naming no variant, a null variant); a FALLBACK (no default
// variant) is DEFAULT without a value, a disabled flag has neither value
// nor variant.
func result(v flagdeval.AnyValue) Result {
	if v.Error != nil {
		_, e := flagdofrep.EvaluationErrorResponseFrom(v)
		return Result{Key: v.FlagKey, Metadata: v.Metadata, Reason: ReasonError, ErrorCode: e.ErrorCode, ErrorDetails: e.ErrorDetails}
	}
	s := flagdofrep.SuccessResponseFrom(v)
	return Result{Key: v.FlagKey, Metadata: v.Metadata, Reason: s.Reason, Value: s.Value, Variant: s.Variant}
}

// Ref is a flag (and variant) the configuration relies on.
type Ref struct {
	Key     string
	Variant string // "" when any variant will do (forwarded flags)
	Route   string // which route names it, for errors
	Index   int    // the route's position in the config's routes
	Field   string // "match.flag" or "forward_flags"
}

// RefError is a Ref the flag set does not satisfy.
type RefError struct {
	Ref Ref
	Msg string
}

func (e *RefError) Error() string { return e.Msg }

// RefErrors lists every unsatisfied Ref; callers can place each at its
// route (Ref.Index) in the config file.
type RefErrors []*RefError

func (l RefErrors) Error() string {
	msgs := make([]string, len(l))
	for i, e := range l {
		msgs[i] = e.Msg
	}
	return strings.Join(msgs, "\n")
}

// Check reports every ref the running flag set does not satisfy, as
// RefErrors.
func (e *Evaluator) Check(refs []Ref) error {
	s := e.cur.Load()
	if s == nil {
		if len(refs) == 0 {
			return nil
		}
		return errors.New("no flag file is loaded")
	}
	return checkRefs(s.flags, refs)
}

// Require checks refs against the running flags and, when they hold,
// makes every later Load reject flag files that break them (a route
// whose flag vanished would stop matching silently). Call it when a
// configuration is committed; Require(nil) lifts the requirement.
func (e *Evaluator) Require(refs []Ref) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := e.Check(refs); err != nil {
		return err
	}
	refs = slices.Clone(refs)
	e.required.Store(&refs)
	return nil
}

func checkRefs(flags map[string]*flagInfo, refs []Ref) error {
	var errs RefErrors
	for _, r := range refs {
		f := flags[r.Key]
		switch {
		case f == nil:
			errs = append(errs, &RefError{r, fmt.Sprintf("route %q %s names flag %q, which the flag file does not define", r.Route, r.Field, r.Key)})
		case r.Variant != "" && !slices.Contains(f.variants, r.Variant):
			errs = append(errs, &RefError{r, fmt.Sprintf("route %q %s wants variant %q of flag %q, which has %s", r.Route, r.Field, r.Variant, r.Key, quoteList(f.variants))})
		}
	}
	if errs == nil {
		return nil
	}
	return errs
}

func quoteList(vs []string) string {
	q := make([]string, len(vs))
	for i, v := range vs {
		q[i] = fmt.Sprintf("%q", v)
	}
	return strings.Join(q, ", ")
}
