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
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// FileName is the database file inside data_dir.
const FileName = "umbra.db"

// Store is an open embedded database.
type Store struct {
	db *bolt.DB
}

// Open opens (creating if needed) data_dir/umbra.db. A second umbra on the
// same data_dir gets a clear error instead of waiting forever for the lock.
func Open(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("data_dir %s: %w", dir, err)
	}
	path := filepath.Join(dir, FileName)
	db, err := bolt.Open(path, 0o640, &bolt.Options{Timeout: time.Second})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("store %s is locked: is another umbra using this data_dir?", path)
	}
	if err != nil {
		return nil, fmt.Errorf("store %s: %w", path, err)
	}
	return &Store{db: db}, nil
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// Path is the database file.
func (s *Store) Path() string { return s.db.Path() }

// Tx is a read-write transaction over named buckets.
type Tx struct{ tx *bolt.Tx }

// Update runs fn in one read-write transaction: all its writes land or none.
func (s *Store) Update(fn func(*Tx) error) error {
	return s.db.Update(func(tx *bolt.Tx) error { return fn(&Tx{tx}) })
}

// View runs fn in a read-only transaction.
func (s *Store) View(fn func(*Tx) error) error {
	return s.db.View(func(tx *bolt.Tx) error { return fn(&Tx{tx}) })
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
