package flags

import (
	"encoding/binary"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
)

// flagd's evaluator is exact but not cheap: a flag with targeting costs
// about 25 µs and 110 allocations per evaluation (it marshals the context
// and the rule to JSON and parses both again on every call), which is
// most of a proxied request's budget. Evaluation is a pure function of
// (flag set, flag key, context) as long as the rule does not read
// $flagd.timestamp, so each loaded flag set keeps a bounded cache of
// results by flag key and context. It is dropped with the flag set on
// reload, so it can never serve an answer of old flags.
//
// Only contexts whose values are all strings (what routing builds; what
// most OFREP clients send) are cached. A flag has only a handful of
// distinct results (one per variant and reason), so entries hold an
// index into a table of them rather than a Result: about 60 bytes per
// cached caller and flag. Each of cacheShards shards keeps two
// generations of at most cacheGen entries: a hit in the old generation
// is copied to the new one, and when the new one is full it becomes the
// old one. That is an LRU approximation with O(1) work and a hard bound
// of 2 × cacheShards × cacheGen = 131,072 entries (under 10 MB).
const (
	cacheShards = 16
	cacheGen    = 4096
	maxKeyLen   = 512   // longer contexts are evaluated without the cache
	maxResults  = 65536 // distinct results interned per flag set
)

type cacheShard struct {
	mu       sync.Mutex
	cur, old map[string]uint32
}

type resultCache struct {
	shards [cacheShards]cacheShard

	mu      sync.Mutex // guards index and appends to results
	index   map[resultID]uint32
	results atomic.Pointer[[]Result] // copy on write
}

// resultID identifies a result: a flag's value and metadata follow from
// its key and variant.
type resultID struct{ key, variant, reason, code, details string }

func newResultCache() *resultCache {
	c := &resultCache{index: map[resultID]uint32{}}
	c.results.Store(&[]Result{})
	for i := range c.shards {
		c.shards[i].cur = make(map[string]uint32)
	}
	return c
}

// shard picks a shard from the key's last bytes (the caller's
// attributes, which vary most); the map hashes the key properly.
func (c *resultCache) shard(key []byte) *cacheShard {
	h := uint32(len(key)) * 0x9E3779B1
	for _, b := range key[max(0, len(key)-8):] {
		h = (h ^ uint32(b)) * 0x01000193
	}
	return &c.shards[(h^h>>16)%cacheShards]
}

func (c *resultCache) get(key []byte) (Result, bool) {
	s := c.shard(key)
	s.mu.Lock()
	id, ok := s.cur[string(key)]
	if !ok {
		if id, ok = s.old[string(key)]; ok {
			s.put(string(key), id)
		}
	}
	s.mu.Unlock()
	if !ok {
		return Result{}, false
	}
	return (*c.results.Load())[id], true
}

func (c *resultCache) add(key []byte, r Result) {
	id, ok := c.intern(r)
	if !ok {
		return
	}
	s := c.shard(key)
	s.mu.Lock()
	s.put(string(key), id)
	s.mu.Unlock()
}

func (c *resultCache) intern(r Result) (uint32, bool) {
	rid := resultID{r.Key, r.Variant, r.Reason, r.ErrorCode, r.ErrorDetails}
	c.mu.Lock()
	defer c.mu.Unlock()
	if id, ok := c.index[rid]; ok {
		return id, true
	}
	old := *c.results.Load()
	if len(old) >= maxResults {
		return 0, false
	}
	list := append(old[:len(old):len(old)], r)
	id := uint32(len(old))
	c.index[rid] = id
	c.results.Store(&list)
	return id, true
}

func (s *cacheShard) put(key string, id uint32) {
	if len(s.cur) >= cacheGen {
		s.old, s.cur = s.cur, make(map[string]uint32, cacheGen)
	}
	s.cur[key] = id
}

// kv is one context attribute for a cache key.
type kv struct{ name, value string }

// appendKey renders flag key and the attributes (sorted by name) as a
// cache key, each string length-prefixed so no value can forge another
// key. ok is false when the key would be longer than maxKeyLen.
func appendKey(dst []byte, flag string, attrs []kv) ([]byte, bool) {
	dst = appendStr(dst, flag)
	for _, a := range attrs {
		dst = appendStr(appendStr(dst, a.name), a.value)
	}
	return dst, len(dst) <= maxKeyLen
}

func appendStr(dst []byte, s string) []byte {
	return append(binary.AppendUvarint(dst, uint64(len(s))), s...)
}

// mapAttrs lists a context's attributes sorted by name; ok is false when
// a value is not a string (such contexts are not cached).
func mapAttrs(ctx map[string]any, buf []kv) ([]kv, bool) {
	attrs := buf[:0]
	for k, v := range ctx {
		s, ok := v.(string)
		if !ok {
			return nil, false
		}
		attrs = append(attrs, kv{k, s})
	}
	slices.SortFunc(attrs, func(a, b kv) int { return strings.Compare(a.name, b.name) })
	return attrs, true
}
