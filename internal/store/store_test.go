package store

import (
	"fmt"
	"strings"
	"testing"
)

type rec struct {
	N    int    `json:"n"`
	Name string `json:"name"`
}

func TestPutGetScanDeleteSurvivesReopen(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	err = s.Update(func(tx *Tx) error {
		for i := 0; i < 5; i++ {
			if err := tx.Put("b", fmt.Sprintf("a/%d", i), rec{i, "x"}); err != nil {
				return err
			}
		}
		return tx.Put("b", "z", rec{99, "z"})
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var got rec
	_ = s.View(func(tx *Tx) error {
		found, err := tx.Get("b", "a/3", &got)
		if !found || err != nil || got.N != 3 {
			t.Errorf("Get after reopen = %v %v %+v", found, err, got)
		}
		if found, _ := tx.Get("b", "nope", &got); found {
			t.Error("missing key found")
		}
		if found, _ := tx.Get("nobucket", "x", &got); found {
			t.Error("missing bucket found")
		}
		var keys []string
		_ = tx.Scan("b", "a/", func(k string, _ []byte) error { keys = append(keys, k); return nil })
		if strings.Join(keys, ",") != "a/0,a/1,a/2,a/3,a/4" {
			t.Errorf("Scan = %v", keys)
		}
		return nil
	})
	_ = s.Update(func(tx *Tx) error {
		n, err := tx.DeletePrefix("b", "a/")
		if n != 5 || err != nil {
			t.Errorf("DeletePrefix = %d, %v", n, err)
		}
		if c := tx.Count("b", ""); c != 1 {
			t.Errorf("Count after delete = %d, want 1", c)
		}
		return tx.Delete("b", "z")
	})
}

func TestSecondOpenFailsClearly(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_, err = Open(dir, Options{})
	if err == nil || !strings.Contains(err.Error(), "another umbra") {
		t.Fatalf("second Open: %v", err)
	}
}

func TestCorruptValueIsAnError(t *testing.T) {
	s, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_ = s.Update(func(tx *Tx) error { return tx.Put("b", "k", "a string") })
	_ = s.View(func(tx *Tx) error {
		var r rec
		if _, err := tx.Get("b", "k", &r); err == nil {
			t.Error("decoding a string into a struct must fail")
		}
		return nil
	})
}
