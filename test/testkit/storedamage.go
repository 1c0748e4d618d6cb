package testkit

import (
	"encoding/binary"
	"math/rand/v2"
	"os"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// Kinds of damage DamageStore does to a bbolt file, as fault injection
// found them: each made bbolt panic (or fault) at umbra's start-up.
const (
	DamageTruncated = "truncated" // the file cut to 16 KiB
	DamageFreelist  = "freelist"  // garbage over the freelist page
	DamageRoot      = "root"      // garbage over the root bucket's page
	DamageData      = "data"      // garbage over a page of a bucket's keys
	DamageEmpty     = "empty"     // the file cut to 0 bytes
	// DamageDeleted removes the file; it is damage only when the store
	// marked itself as holding state (store.ExpectedFile), so it is not in
	// DamageKinds.
	DamageDeleted = "deleted"
)

// DamageKinds lists every kind of damage.
var DamageKinds = []string{DamageTruncated, DamageFreelist, DamageRoot, DamageData, DamageEmpty}

// DamageStore damages the closed bbolt file at path. For the data kind the
// file must hold a bucket named dataBucket that has a page of its own (is
// not inline), whose first leaf is overwritten; dataBucket may be "" for
// the other kinds.
func DamageStore(t testing.TB, path, kind, dataBucket string) {
	t.Helper()
	switch kind {
	case DamageTruncated:
		truncate(t, path, 16<<10)
		return
	case DamageEmpty:
		truncate(t, path, 0)
		return
	case DamageDeleted:
		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
		return
	}
	pages := pagesOf(t, path, dataBucket)
	id, ok := map[string]uint64{DamageFreelist: pages.freelist, DamageRoot: pages.root, DamageData: pages.data}[kind]
	if !ok {
		t.Fatalf("unknown damage %q", kind)
	}
	garbage := make([]byte, pages.size)
	rng := rand.New(rand.NewPCG(uint64(len(kind)), id))
	for i := range garbage {
		garbage[i] = byte(rng.Uint32())
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(garbage, int64(id)*int64(pages.size)); err != nil {
		t.Fatal(err)
	}
}

func truncate(t testing.TB, path string, size int64) {
	t.Helper()
	if err := os.Truncate(path, size); err != nil {
		t.Fatal(err)
	}
}

type storePages struct {
	size                 int
	freelist, root, data uint64
}

// pagesOf finds the pages of the live meta: the freelist, the root
// bucket's page and a page of dataBucket's keys (a leaf under its root).
func pagesOf(t testing.TB, path, dataBucket string) storePages {
	t.Helper()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	p := storePages{size: db.Info().PageSize}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// Two meta pages (0 and 1); the one with the higher txid is live. A
	// meta is the 16-byte page header, then magic, version, page size,
	// flags (4 bytes each), the root bucket (root, sequence), freelist,
	// high-water mark and txid (8 bytes each).
	meta := func(i int) (root, freelist, txid uint64) {
		m := raw[i*p.size+16:]
		return binary.LittleEndian.Uint64(m[16:]), binary.LittleEndian.Uint64(m[32:]), binary.LittleEndian.Uint64(m[48:])
	}
	r0, f0, t0 := meta(0)
	r1, f1, t1 := meta(1)
	p.root, p.freelist = r0, f0
	if t1 > t0 {
		p.root, p.freelist = r1, f1
	}
	if dataBucket == "" {
		p.data = p.root // no bucket named: the data kind is not asked for
	}
	err = db.View(func(tx *bolt.Tx) error {
		if dataBucket == "" {
			return nil
		}
		b := tx.Bucket([]byte(dataBucket))
		if b == nil || b.Root() == 0 {
			t.Fatalf("bucket %q is missing or inline: no page of its own to damage", dataBucket)
		}
		p.data = uint64(b.Root())
		if info, err := tx.Page(int(b.Root())); err == nil && info != nil && info.Type == "branch" {
			// A branch's first element is pos, ksize (4 bytes each) and the child's page id.
			off := int(p.data)*p.size + 16 + 8
			p.data = binary.LittleEndian.Uint64(raw[off:])
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if p.freelist == 0 || p.root == 0 || p.data == 0 || p.freelist >= 1<<40 {
		t.Fatalf("pages of %s: %+v", path, p)
	}
	return p
}
