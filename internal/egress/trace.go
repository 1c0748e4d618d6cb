package egress

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// traceID is a W3C trace id (16 bytes).
type traceID [16]byte

// headerTraceparent is the W3C Trace Context header.
const headerTraceparent = "Traceparent"

// parseTraceparent returns the trace id of a W3C traceparent value
// ("00-<32 hex trace id>-<16 hex span id>-<2 hex flags>").
func parseTraceparent(s string) (traceID, bool) {
	var id traceID
	if len(s) < 55 || s[2] != '-' || s[35] != '-' || s[52] != '-' || s[:2] == "ff" || (len(s) > 55 && s[55] != '-') {
		return id, false
	}
	if _, err := hex.Decode(id[:], []byte(s[3:35])); err != nil || id == (traceID{}) {
		return id, false
	}
	for _, c := range []byte(s[3:35]) {
		if c >= 'A' && c <= 'F' { // hex.Decode accepts upper case; W3C does not
			return id, false
		}
	}
	return id, true
}

func (id traceID) String() string { return hex.EncodeToString(id[:]) }

// traceparent renders id as a sampled traceparent with a random span id
// (one allocation: the string).
func (id traceID) traceparent() string {
	var span [8]byte
	for span == ([8]byte{}) {
		putUint64(span[:], mrand.Uint64())
	}
	var b [55]byte
	copy(b[:], "00-")
	hex.Encode(b[3:35], id[:])
	b[35] = '-'
	hex.Encode(b[36:52], span[:])
	copy(b[52:], "-01")
	return string(b[:])
}

func putUint64(b []byte, v uint64) {
	for i := range 8 {
		b[i] = byte(v >> (8 * i))
	}
}

// minter makes and recognises the trace ids of shadow copies. A copy's
// trace id is 8 random bytes followed by 8 bytes of HMAC-SHA256 over them
// with a secret key, so that a call carrying it is known to come from a
// shadow copy without looking anything up: after its recording expired,
// when the store is full, after a restart (the key is kept in a file).
// Nobody without the key can make a live request look like a copy, and a
// random trace id is a copy's with probability 2^-64.
type minter struct {
	key  []byte
	macs sync.Pool // of *mac
}

// mac is a pooled HMAC with the scratch space of its sum: a sum on the
// stack escapes through the hash.Hash interface (one allocation a call).
type mac struct {
	h   hash.Hash
	sum [sha256.Size]byte
}

func newMinter(key []byte) *minter {
	m := &minter{key: key}
	m.macs.New = func() any { return &mac{h: hmac.New(sha256.New, m.key)} }
	return m
}

func (m *minter) tag(nonce []byte, out []byte) {
	x := m.macs.Get().(*mac)
	x.h.Reset()
	x.h.Write(nonce)
	copy(out, x.h.Sum(x.sum[:0]))
	m.macs.Put(x)
}

// mint returns a new shadow trace id.
func (m *minter) mint() traceID {
	var id traceID
	putUint64(id[:8], mrand.Uint64()|1) // never all zero
	m.tag(id[:8], id[8:])
	return id
}

// isShadow reports whether id was minted with this key.
func (m *minter) isShadow(id traceID) bool {
	var want [8]byte
	m.tag(id[:8], want[:])
	return hmac.Equal(want[:], id[8:])
}

// loadKey reads the key file, creating it with a new random key when it
// does not exist.
func loadKey(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		key, derr := hex.DecodeString(strings.TrimSpace(string(b)))
		if derr != nil || len(key) < 16 {
			return nil, fmt.Errorf("egress key file %s: want at least 32 hex digits", path)
		}
		return key, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return loadKey(path) // another process created it meanwhile
	}
	if err != nil {
		return nil, err
	}
	_, werr := f.WriteString(hex.EncodeToString(key) + "\n")
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	return key, werr
}

func rngUint64() uint64 { return mrand.Uint64() }
