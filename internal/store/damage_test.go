package store_test

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/umbragw/umbra/internal/store"
	"github.com/umbragw/umbra/test/testkit"
)

// filledStore writes a store in dir with enough keys in bucket "data" to
// need several pages, and a second transaction so the freelist has pages.
func filledStore(t *testing.T, dir string) {
	t.Helper()
	s, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	pad := strings.Repeat("x", 100)
	err = s.Update(func(tx *store.Tx) error {
		for i := range 2000 {
			if err := tx.Put("data", fmt.Sprintf("k%05d", i), map[string]any{"i": i, "pad": pad}); err != nil {
				return err
			}
		}
		return tx.Put("rollouts", "svc", map[string]any{"phase": "promoted", "weight": 100})
	})
	if err == nil {
		err = s.Update(func(tx *store.Tx) error { return tx.Delete("data", "k00007") })
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestOpenDamagedFileRecovers: every kind of damage found by fault
// injection (which made bbolt panic at start-up, or which bbolt silently
// took for a new store) is caught: the file is moved aside with its bytes,
// an empty usable store opens, Lost says what was wrong and an ERROR says
// it loudly.
func TestOpenDamagedFileRecovers(t *testing.T) {
	for _, kind := range testkit.DamageKinds {
		t.Run(kind, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, store.FileName)
			filledStore(t, dir)
			testkit.DamageStore(t, path, kind, "data")
			damaged, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			var logs bytes.Buffer
			s, err := store.Open(dir, store.Options{Log: slog.New(slog.NewJSONHandler(&logs, nil))})
			if err != nil {
				t.Fatalf("Open of a %s file: %v", kind, err)
			}
			defer s.Close()
			if s.Lost() == "" {
				t.Fatalf("Open of a %s file: Lost is empty", kind)
			}
			aside, err := os.ReadFile(s.MovedTo())
			if err != nil || !bytes.Equal(aside, damaged) || !strings.HasPrefix(filepath.Base(s.MovedTo()), store.FileName+".corrupt-") {
				t.Errorf("moved to %q: %d bytes (%v), want the %d damaged bytes", s.MovedTo(), len(aside), err, len(damaged))
			}
			if !strings.Contains(logs.String(), `"level":"ERROR"`) || !strings.Contains(logs.String(), s.MovedTo()) {
				t.Errorf("no ERROR naming the moved file:\n%s", logs.String())
			}
			var got map[string]any
			err = s.Update(func(tx *store.Tx) error { return tx.Put("b", "k", map[string]any{"ok": true}) })
			if err == nil {
				err = s.View(func(tx *store.Tx) error {
					if found, _ := tx.Get("rollouts", "svc", &got); found {
						t.Error("the fresh store holds the old state")
					}
					_, err := tx.Get("b", "k", &got)
					return err
				})
			}
			if err != nil || got["ok"] != true {
				t.Errorf("the fresh store does not work: %v %v", err, got)
			}
		})
	}
}

// TestOpenDamagedFileFails: with on_corruption fail, Open refuses with an
// error naming the file and leaves it where it is.
func TestOpenDamagedFileFails(t *testing.T) {
	for _, kind := range testkit.DamageKinds {
		t.Run(kind, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, store.FileName)
			filledStore(t, dir)
			testkit.DamageStore(t, path, kind, "data")
			s, err := store.Open(dir, store.Options{OnCorruption: store.OnCorruptionFail})
			if err == nil {
				s.Close()
				t.Fatalf("Open of a %s file succeeded", kind)
			}
			if !errors.Is(err, store.ErrCorrupt) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "on_corruption") {
				t.Errorf("error = %v", err)
			}
			if _, err := os.Stat(path); err != nil {
				t.Errorf("the file is gone: %v", err)
			}
			matches, _ := filepath.Glob(path + ".corrupt-*")
			if len(matches) != 0 {
				t.Errorf("moved aside although told to fail: %v", matches)
			}
		})
	}
}

// TestOpenSoundAndNewFiles: a missing file is a new store and a sound one
// opens as it is; neither is lost.
func TestOpenSoundAndNewFiles(t *testing.T) {
	dir := t.TempDir()
	s, err := store.Open(dir, store.Options{OnCorruption: store.OnCorruptionFail})
	if err != nil || s.Lost() != "" {
		t.Fatalf("new store: %v, lost %q", err, s.Lost())
	}
	s.Close()
	filledStore(t, dir)
	s, err = store.Open(dir, store.Options{OnCorruption: store.OnCorruptionFail})
	if err != nil || s.Lost() != "" {
		t.Fatalf("sound store: %v, lost %q", err, s.Lost())
	}
	defer s.Close()
	if n := 0; s.View(func(tx *store.Tx) error { n = tx.Count("data", ""); return nil }) != nil || n != 1999 {
		t.Errorf("keys after reopen: %d", n)
	}
}

// TestOpenMissingFileThatHeldState: a store file that is gone although
// the store said it held state (ExpectedFile) is lost state, not a first
// start: Lost says so (or Open refuses, with on_corruption fail); without
// the marker a missing file is a new store.
func TestOpenMissingFileThatHeldState(t *testing.T) {
	dir := t.TempDir()
	s, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.ExpectState(); err != nil {
		t.Fatal(err)
	}
	s.Close()
	testkit.DamageStore(t, filepath.Join(dir, store.FileName), testkit.DamageDeleted, "")
	if s, err := store.Open(dir, store.Options{OnCorruption: store.OnCorruptionFail}); !errors.Is(err, store.ErrCorrupt) || !strings.Contains(err.Error(), store.ExpectedFile) {
		if err == nil {
			s.Close()
		}
		t.Errorf("fail mode: %v", err)
	}
	var logs bytes.Buffer
	s, err = store.Open(dir, store.Options{Log: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(s.Lost(), "missing") || s.MovedTo() != "" || !strings.Contains(logs.String(), "level=ERROR") {
		t.Errorf("lost %q, moved to %q, log:\n%s", s.Lost(), s.MovedTo(), logs.String())
	}
	s.Close()

	// Without the marker: a first start.
	if err := os.Remove(filepath.Join(dir, store.ExpectedFile)); err != nil {
		t.Fatal(err)
	}
	testkit.DamageStore(t, filepath.Join(dir, store.FileName), testkit.DamageDeleted, "")
	s, err = store.Open(dir, store.Options{OnCorruption: store.OnCorruptionFail})
	if err != nil || s.Lost() != "" {
		t.Fatalf("a missing file without the marker: %v, lost %q", err, s.Lost())
	}
	s.Close()
}
