// Package store is umbra's embedded store: one bbolt file in data_dir that
// keeps what must survive a restart (comparison counters and samples, noise
// marks, rollout state). Values are JSON, so the file stays inspectable
// with bbolt's own tools and its schema can grow without migrations.
//
// bbolt serialises writers; callers batch their writes (the compare
// package flushes counters once a second) rather than writing per request.
package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// FileName is the database file inside data_dir.
const FileName = "umbra.db"

// ExpectedFile, beside FileName, says that an earlier run saved state that
// must survive a restart (see ExpectState). Without it a missing store file
// is a first start; with it, the file was lost (deleted, a data_dir
// restored without it).
const ExpectedFile = FileName + ".expected"

// What Open does with a damaged file (store.on_corruption).
const (
	OnCorruptionRecover = "recover" // move it aside, start an empty store, say so loudly
	OnCorruptionFail    = "fail"    // refuse to start
)

// DefaultCheckTimeout bounds the consistency check at open.
const DefaultCheckTimeout = 30 * time.Second

// Options say how Open treats a damaged file.
type Options struct {
	// OnCorruption is OnCorruptionRecover (the default) or OnCorruptionFail.
	OnCorruption string
	// CheckTimeout bounds bbolt's consistency check (DefaultCheckTimeout
	// when 0). A check still running then is left to finish in the
	// background and the store is used: a large healthy file must not keep
	// umbra from serving.
	CheckTimeout time.Duration
	// Log receives the ERROR lines of a recovery (slog.Default when nil).
	Log *slog.Logger
}

// Store is an open embedded database.
type Store struct {
	db *bolt.DB
	// lost says why state an earlier run wrote is gone (the file was
	// empty, or damaged and moved aside); "" for a healthy or new store.
	lost string
	// movedTo is where a damaged file was moved.
	movedTo string
	// written counts the key and value bytes Put has stored, for the
	// write-rate bounds of callers (and their benchmarks).
	written atomic.Int64
	// expected: ExpectedFile exists.
	expected atomic.Bool
}

// Written is how many key and value bytes Put has stored since Open.
func (s *Store) Written() int64 { return s.written.Load() }

// Open opens (creating if needed) data_dir/umbra.db. A second umbra on the
// same data_dir gets a clear error instead of waiting forever for the lock.
//
// A damaged file never crashes umbra: bbolt panics (or faults on a
// truncated mmap) on some damage, so the open and bbolt's consistency
// check run under recover with faults turned into panics. Damage, and an
// empty (0-byte) file, which bbolt would silently initialise as a new
// store, are ErrCorrupt; with OnCorruptionRecover the file is moved to
// umbra.db.corrupt-<UTC time> and an empty store opened whose Lost says
// why.
func Open(dir string, opts Options) (*Store, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("data_dir %s: %w", dir, err)
	}
	path := filepath.Join(dir, FileName)
	db, damage, err := openChecked(path, opts.checkTimeout(), opts.logger())
	if err != nil {
		return nil, err
	}
	if damage == "" {
		return &Store{db: db}, nil
	}
	if opts.OnCorruption == OnCorruptionFail {
		return nil, fmt.Errorf("%w: %s: %s (store.on_corruption is fail: move the file aside or set it to recover to start with an empty store)",
			ErrCorrupt, path, damage)
	}
	return recoverFresh(path, damage, opts.logger())
}

// ErrCorrupt is a damaged store file.
var ErrCorrupt = errors.New("store file is damaged")

func (o Options) checkTimeout() time.Duration {
	if o.CheckTimeout > 0 {
		return o.CheckTimeout
	}
	return DefaultCheckTimeout
}

func (o Options) logger() *slog.Logger {
	if o.Log != nil {
		return o.Log
	}
	return slog.Default()
}

// recoverFresh moves the damaged file aside and opens an empty store.
func recoverFresh(path, damage string, log *slog.Logger) (*Store, error) {
	aside := path + ".corrupt-" + time.Now().UTC().Format("20060102T150405.000000000Z")
	if err := os.Rename(path, aside); errors.Is(err, fs.ErrNotExist) {
		aside = "" // the file itself is gone
	} else if err != nil {
		return nil, fmt.Errorf("%w: %s: %s; moving it aside failed: %v", ErrCorrupt, path, damage, err)
	}
	db, err := openBolt(path)
	if err != nil {
		return nil, err
	}
	log.Error("the store file was damaged or lost: started an empty store (a damaged file is moved aside); comparison results and rollout state are lost, rollouts are held until an operator acts (docs/rollouts.md)",
		"file", path, "moved_to", aside, "damage", damage)
	return &Store{db: db, lost: damage, movedTo: aside}, nil
}

// openChecked opens path and checks it. damage describes what is wrong
// with the file ("" when it is sound); err is any other failure (lock
// held, permissions), which recovery cannot help.
func openChecked(path string, timeout time.Duration, log *slog.Logger) (*bolt.DB, string, error) {
	fi, statErr := os.Stat(path)
	switch {
	case errors.Is(statErr, fs.ErrNotExist):
		if _, err := os.Stat(filepath.Join(filepath.Dir(path), ExpectedFile)); err == nil {
			return nil, "the file is missing, but " + ExpectedFile + " says an earlier run saved state in it", nil
		}
		db, err := openBolt(path) // a new store: nothing to check
		return db, "", err
	case statErr != nil:
		return nil, "", fmt.Errorf("store %s: %w", path, statErr)
	case fi.Size() == 0:
		// bbolt would initialise it as a new store, silently dropping
		// whatever rollout an earlier run had (a full disk, a bad copy).
		return nil, "the file is empty (0 bytes): the state an earlier run saved is gone", nil
	}
	opened := make(chan openResult, 1)
	checked := make(chan string, 1)
	go openAndCheck(path, opened, checked)
	r := <-opened
	if r.err != nil || r.damage != "" {
		return nil, r.damage, r.err
	}
	select {
	case damage := <-checked:
		if damage != "" {
			closeQuietly(r.db)
			return nil, damage, nil
		}
		return r.db, "", nil
	case <-time.After(timeout):
		// The check of a large file may take long; serve meanwhile and
		// report its verdict when it comes.
		log.Warn("the store's consistency check is still running; using the store meanwhile", "file", path, "timeout", timeout)
		go func() {
			if damage := <-checked; damage != "" {
				log.Error("the store's consistency check found damage; restart umbra to move the file aside", "file", path, "damage", damage)
			}
		}()
		return r.db, "", nil
	}
}

type openResult struct {
	db     *bolt.DB
	damage string
	err    error
}

// openAndCheck opens path and then checks it, on a goroutine of its own
// whose memory faults are panics (a truncated file faults when a page past
// its end is read); a panic anywhere is damage.
func openAndCheck(path string, opened chan<- openResult, checked chan<- string) {
	debug.SetPanicOnFault(true)
	var r openResult
	isOpen := false
	defer func() {
		p := recover()
		if p == nil {
			return
		}
		damage := fmt.Sprintf("bbolt panicked: %v", p)
		if !isOpen {
			opened <- openResult{damage: damage}
			return
		}
		checked <- damage
	}()
	r.db, r.err = openBolt(path)
	if r.err != nil && !isLocked(r.err) && !errors.Is(r.err, fs.ErrPermission) {
		r.damage, r.err = r.err.Error(), nil
	}
	isOpen = true
	opened <- r
	if r.db != nil {
		checked <- check(r.db)
	}
}

// check runs bbolt's consistency check and returns its first findings.
func check(db *bolt.DB) string {
	var findings []string
	err := db.View(func(tx *bolt.Tx) error {
		// A file shorter than its pages (cut by a full disk or a bad copy)
		// lost data even when every page still reachable is sound.
		if fi, err := os.Stat(db.Path()); err == nil && fi.Size() < tx.Size() {
			findings = append(findings, fmt.Sprintf("the file is truncated: %d bytes, its pages need %d", fi.Size(), tx.Size()))
		}
		for e := range tx.Check() {
			if len(findings) < 5 {
				findings = append(findings, e.Error())
			}
		}
		return nil
	})
	if err != nil {
		findings = append(findings, err.Error())
	}
	return strings.Join(findings, "; ")
}

func openBolt(path string) (*bolt.DB, error) {
	db, err := bolt.Open(path, 0o640, &bolt.Options{Timeout: time.Second})
	if isLocked(err) {
		return nil, fmt.Errorf("store %s is locked: is another umbra using this data_dir?", path)
	}
	if err != nil {
		return nil, fmt.Errorf("store %s: %w", path, err)
	}
	return db, nil
}

func isLocked(err error) bool {
	return errors.Is(err, bolterrors.ErrTimeout) || (err != nil && strings.Contains(err.Error(), "is locked"))
}

func closeQuietly(db *bolt.DB) {
	defer func() { _ = recover() }()
	_ = db.Close()
}

// ExpectState records, once, that the store now holds state a restart
// must find (ExpectedFile); a rollout calls it when it saves its state.
func (s *Store) ExpectState() error {
	if s.expected.Load() {
		return nil
	}
	f, err := os.OpenFile(filepath.Join(filepath.Dir(s.db.Path()), ExpectedFile), os.O_CREATE|os.O_WRONLY, 0o640)
	if err != nil {
		return err
	}
	if _, err := f.WriteString("umbra keeps state in " + FileName + "; delete both files to start afresh\n"); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	s.expected.Store(true)
	return nil
}

// Lost says why the state an earlier run saved is gone: the file was empty
// or damaged and was moved aside. "" for a healthy or new store.
func (s *Store) Lost() string { return s.lost }

// MovedTo is where a damaged file was moved ("" when none was).
func (s *Store) MovedTo() string { return s.movedTo }

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// Path is the database file.
func (s *Store) Path() string { return s.db.Path() }

// Tx is a read-write transaction over named buckets.
type Tx struct {
	tx *bolt.Tx
	s  *Store
}

// Update runs fn in one read-write transaction: all its writes land or none.
func (s *Store) Update(fn func(*Tx) error) (err error) {
	defer recoverPanic(&err)
	return s.db.Update(func(tx *bolt.Tx) error { return fn(&Tx{tx, s}) })
}

// View runs fn in a read-only transaction.
func (s *Store) View(fn func(*Tx) error) (err error) {
	defer recoverPanic(&err)
	return s.db.View(func(tx *bolt.Tx) error { return fn(&Tx{tx, s}) })
}

// recoverPanic turns a panic of bbolt on damage the open check did not
// reach into an error: one failed write must not take every route down.
// bbolt rolls the transaction back as the panic passes.
func recoverPanic(err *error) {
	if p := recover(); p != nil {
		*err = fmt.Errorf("%w: bbolt panicked: %v", ErrCorrupt, p)
	}
}

// Put stores v as JSON under bucket/key.
func (t *Tx) Put(bucket, key string, v any) error {
	b, err := t.tx.CreateBucketIfNotExists([]byte(bucket))
	if err != nil {
		return err
	}
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("store %s/%s: %w", bucket, key, err)
	}
	t.s.written.Add(int64(len(key) + len(data)))
	return b.Put([]byte(key), data)
}

// Get decodes bucket/key into v; found is false when it does not exist.
func (t *Tx) Get(bucket, key string, v any) (found bool, err error) {
	b := t.tx.Bucket([]byte(bucket))
	if b == nil {
		return false, nil
	}
	data := b.Get([]byte(key))
	if data == nil {
		return false, nil
	}
	if err := json.Unmarshal(data, v); err != nil {
		return true, fmt.Errorf("store %s/%s: %w", bucket, key, err)
	}
	return true, nil
}

// Delete removes bucket/key.
func (t *Tx) Delete(bucket, key string) error {
	b := t.tx.Bucket([]byte(bucket))
	if b == nil {
		return nil
	}
	return b.Delete([]byte(key))
}

// Scan calls fn for each key with prefix, in key order. fn must not keep raw.
func (t *Tx) Scan(bucket, prefix string, fn func(key string, raw []byte) error) error {
	b := t.tx.Bucket([]byte(bucket))
	if b == nil {
		return nil
	}
	c := b.Cursor()
	p := []byte(prefix)
	for k, v := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, v = c.Next() {
		if err := fn(string(k), v); err != nil {
			return err
		}
	}
	return nil
}

// DeletePrefix removes every key with prefix and reports how many.
func (t *Tx) DeletePrefix(bucket, prefix string) (int, error) {
	b := t.tx.Bucket([]byte(bucket))
	if b == nil {
		return 0, nil
	}
	var keys [][]byte
	c := b.Cursor()
	p := []byte(prefix)
	for k, _ := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, _ = c.Next() {
		keys = append(keys, append([]byte(nil), k...))
	}
	for _, k := range keys {
		if err := b.Delete(k); err != nil {
			return 0, err
		}
	}
	return len(keys), nil
}

// Count is the number of keys with prefix.
func (t *Tx) Count(bucket, prefix string) int {
	n := 0
	_ = t.Scan(bucket, prefix, func(string, []byte) error { n++; return nil })
	return n
}
