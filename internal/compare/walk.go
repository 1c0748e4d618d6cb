package compare

import (
	"hash/maphash"
	"math"
	"slices"
	"strconv"
	"strings"
)

// The structural diff of two JSON documents. The walk keeps, per depth, the
// path automaton's state (d.states) and the concrete location (d.segs); a
// location's strings are only built when a difference is reported.
//
// The same walk answers "are these equal?" in probe mode (d.probe): the
// first difference sets d.found and every loop stops. Multiset matching
// (unordered arrays, and telling a reordered array from a changed one)
// uses probes and canonical hashes, with array positions not counting in
// paths (d.anyIndex), since an element has no fixed position there.

// json compares two parsed documents.
func (d *differ) json(a, b *value) {
	if d.ignoredAt(0) {
		return // "$" is ignored
	}
	d.walk(a, b, 0)
}

func (d *differ) ignoredAt(lvl int) bool {
	w := d.c.m.words
	return w > 0 && intersects(d.states[lvl*w:(lvl+1)*w], d.c.m.ignore)
}

func (d *differ) unorderedAt(lvl int) bool {
	w := d.c.m.words
	return w > 0 && intersects(d.states[lvl*w:(lvl+1)*w], d.c.m.unord)
}

// child computes the automaton state of segment s below depth lvl and
// reports whether an ignore path matches it.
func (d *differ) child(lvl int, s seg) bool {
	w := d.c.m.words
	if w == 0 {
		return false
	}
	if d.anyIndex && s.idx >= 0 {
		s.idx = anyIndex
	}
	if need := (lvl + 2) * w; need > len(d.states) {
		d.states = append(d.states, make([]uint64, need-len(d.states))...)
	}
	return d.c.m.next(d.states[lvl*w:(lvl+1)*w], d.states[(lvl+1)*w:(lvl+2)*w], s)
}

// enter moves to child s of depth lvl and reports whether it is ignored;
// leave moves back.
func (d *differ) enter(lvl int, s seg) bool {
	d.segs = append(d.segs, s)
	return d.child(lvl, s)
}

func (d *differ) leave() { d.segs = d.segs[:len(d.segs)-1] }

// walk compares two values at depth lvl (whose state is set).
func (d *differ) walk(a, b *value, lvl int) {
	if a.kind != b.kind {
		d.addValue(KindType, a, b)
		return
	}
	switch a.kind {
	case kBool, kString:
		if a.str != b.str {
			d.addValue(KindValue, a, b)
		}
	case kNumber:
		if !d.c.numbersEqual(a.str, b.str) {
			d.addValue(KindValue, a, b)
		}
	case kObject:
		if a.str != b.str { // the same text has no difference
			d.objects(a, b, lvl)
		}
	case kArray:
		if a.str == b.str {
			return
		}
		if d.unorderedAt(lvl) {
			d.multiset(a, b, lvl)
		} else {
			d.ordered(a, b, lvl)
		}
	}
}

// objects compares members by key: a key only in live is missing, one
// only in the other answer is extra.
func (d *differ) objects(a, b *value, lvl int) {
	na, nb := a.members(), b.members()
	if na == nb {
		same := true
		for i := range na {
			if a.key(i) != b.key(i) {
				same = false
				break
			}
		}
		if same { // the usual case: the same keys in the same order
			for i := range na {
				d.member(a.val(i), b.val(i), a.key(i), lvl)
				if d.found {
					return
				}
			}
			return
		}
	}
	matched := make([]bool, nb)
	var index map[string]int
	if nb > 32 {
		index = make(map[string]int, nb)
		for j := range nb {
			index[b.key(j)] = j
		}
	}
	hint := 0
	for i := range na {
		key := a.key(i)
		j := -1
		if index != nil {
			if k, ok := index[key]; ok {
				j = k
			}
		} else {
			j = findKey(b, key, hint)
		}
		if j < 0 {
			d.member(a.val(i), nil, key, lvl)
		} else {
			matched[j] = true
			hint = j + 1
			d.member(a.val(i), b.val(j), key, lvl)
		}
		if d.found {
			return
		}
	}
	for j := range nb {
		if !matched[j] {
			d.member(nil, b.val(j), b.key(j), lvl)
			if d.found {
				return
			}
		}
	}
}

// findKey finds key in object o, looking from member hint first (keys
// tend to keep their order), or returns -1.
func findKey(o *value, key string, hint int) int {
	n := o.members()
	for k := range n {
		j := (hint + k) % n
		if o.key(j) == key {
			return j
		}
	}
	return -1
}

// member compares one object member; a or b is nil when only one side has it.
func (d *differ) member(a, b *value, key string, lvl int) {
	if !d.enter(lvl, seg{key: key, idx: keySeg}) {
		switch {
		case b == nil:
			d.addValue(KindMissing, a, nil)
		case a == nil:
			d.addValue(KindExtra, nil, b)
		default:
			d.walk(a, b, lvl+1)
		}
	}
	d.leave()
}

// ordered compares arrays index by index. Lengths that differ are one
// array_length difference (plus those of the common prefix). When the
// elements are the same but in another order, the per-index differences
// are replaced by one order difference.
func (d *differ) ordered(a, b *value, lvl int) {
	aa, ba := a.list, b.list
	start, first := len(d.out), -1
	for i := range min(len(aa), len(ba)) {
		n := len(d.out)
		if !d.enter(lvl, seg{idx: i}) {
			d.walk(&aa[i], &ba[i], lvl+1)
		}
		d.leave()
		if d.found {
			return
		}
		if first < 0 && len(d.out) > n {
			first = i
		}
	}
	if len(aa) != len(ba) {
		d.addLength(len(aa), len(ba))
		return
	}
	if first >= 0 && d.maybePermutation(aa, ba, first, lvl) {
		if la, lb := d.match(aa, ba, lvl); len(la) == 0 && len(lb) == 0 {
			d.truncate(start)
			d.addValue(KindOrder, a, b)
		}
	}
}

// maybePermutation is a cheap test before a full match: the first element
// that differs must equal some element of the other array.
func (d *differ) maybePermutation(aa, ba []value, i, lvl int) bool {
	saved := d.anyIndex
	d.anyIndex = true
	defer func() { d.anyIndex = saved }()
	if d.child(lvl, seg{idx: anyIndex}) {
		return true
	}
	for j := range ba {
		if j != i && d.equal(&aa[i], &ba[j], lvl+1) {
			return true
		}
	}
	return false
}

// multiset compares arrays whose order does not count. Lengths that differ
// are one array_length difference; unpaired elements are value differences
// at [*], pairing the unpaired elements of each side in order.
func (d *differ) multiset(a, b *value, lvl int) {
	aa, ba := a.list, b.list
	la, lb := d.match(aa, ba, lvl)
	if len(la) == 0 && len(lb) == 0 {
		return
	}
	if d.probe {
		d.found = true
		return
	}
	if len(aa) != len(ba) {
		d.addLength(len(aa), len(ba))
	}
	for k := range min(len(la), len(lb)) {
		d.segs = append(d.segs, seg{idx: la[k]})
		d.addValue(KindValue, &aa[la[k]], &ba[lb[k]])
		d.leave()
	}
}

// maxTolerantPairs bounds the pairs of leftover elements compared with
// numeric tolerance after exact matching.
const maxTolerantPairs = 1024

// match pairs equal elements of two arrays as multisets and returns the
// unpaired indices of each side, in order. Elements are paired by
// canonical hash and checked with a probe; with a numeric tolerance, the
// leftovers then get a maximum matching under the tolerant equality (so
// that the result is symmetric even though tolerance is not transitive).
func (d *differ) match(aa, ba []value, lvl int) (la, lb []int) {
	saved := d.anyIndex
	d.anyIndex = true
	defer func() { d.anyIndex = saved }()
	el := lvl + 1
	if d.child(lvl, seg{idx: anyIndex}) {
		// The elements themselves are ignored: only the count matters.
		for i := len(ba); i < len(aa); i++ {
			la = append(la, i)
		}
		for j := len(aa); j < len(ba); j++ {
			lb = append(lb, j)
		}
		return la, lb
	}
	if len(aa) == len(ba) {
		inOrder := true
		for i := range aa {
			if !d.equal(&aa[i], &ba[i], el) {
				inOrder = false
				break
			}
		}
		if inOrder {
			return nil, nil
		}
	}
	ha := make([]uint64, len(aa))
	hb := make([]uint64, len(ba))
	for i := range aa {
		ha[i] = d.hash(&aa[i], el)
	}
	for j := range ba {
		hb[j] = d.hash(&ba[j], el)
	}
	byHash := make([]int, len(ba))
	for j := range byHash {
		byHash[j] = j
	}
	slices.SortFunc(byHash, func(x, y int) int {
		switch {
		case hb[x] < hb[y]:
			return -1
		case hb[x] > hb[y]:
			return 1
		}
		return x - y
	})
	used := make([]bool, len(ba))
	for i := range aa {
		k, _ := slices.BinarySearchFunc(byHash, ha[i], func(j int, h uint64) int {
			switch {
			case hb[j] < h:
				return -1
			case hb[j] > h:
				return 1
			}
			return 0
		})
		paired := false
		for ; k < len(byHash) && hb[byHash[k]] == ha[i]; k++ {
			if j := byHash[k]; !used[j] && d.equal(&aa[i], &ba[j], el) {
				used[j], paired = true, true
				break
			}
		}
		if !paired {
			la = append(la, i)
		}
	}
	for j := range ba {
		if !used[j] {
			lb = append(lb, j)
		}
	}
	if d.c.tol > 0 && len(la) > 0 && len(lb) > 0 && len(la)*len(lb) <= maxTolerantPairs {
		la, lb = d.matchTolerant(aa, ba, la, lb, el)
	}
	return la, lb
}

// matchTolerant finds a maximum matching between leftovers (Kuhn's
// augmenting paths) and returns what is still unpaired.
func (d *differ) matchTolerant(aa, ba []value, la, lb []int, el int) (ra, rb []int) {
	nb := len(lb)
	adj := make([]bool, len(la)*nb)
	for x, i := range la {
		for y, j := range lb {
			adj[x*nb+y] = d.equal(&aa[i], &ba[j], el)
		}
	}
	owner := make([]int, nb)
	for y := range owner {
		owner[y] = -1
	}
	seen := make([]bool, nb)
	var augment func(x int) bool
	augment = func(x int) bool {
		for y := range nb {
			if adj[x*nb+y] && !seen[y] {
				seen[y] = true
				if owner[y] < 0 || augment(owner[y]) {
					owner[y] = x
					return true
				}
			}
		}
		return false
	}
	pairedA := make([]bool, len(la))
	for x := range la {
		clear(seen)
		augment(x)
	}
	for y, x := range owner {
		if x >= 0 {
			pairedA[x] = true
		} else {
			rb = append(rb, lb[y])
		}
	}
	for x, i := range la {
		if !pairedA[x] {
			ra = append(ra, i)
		}
	}
	return ra, rb
}

// equal reports whether two values at depth lvl have no difference.
func (d *differ) equal(a, b *value, lvl int) bool {
	probe, found := d.probe, d.found
	d.probe, d.found = true, false
	d.walk(a, b, lvl)
	eq := !d.found
	d.probe, d.found = probe, found
	return eq
}

// hash is a hash of v's canonical form at depth lvl: object keys in any
// order, unordered arrays in any order, numbers by value, ignored parts
// left out. Values without a difference have the same hash (numbers
// compared with tolerance aside).
func (d *differ) hash(v *value, lvl int) uint64 {
	switch v.kind {
	case kNull:
		return mix(1)
	case kBool:
		if v.str == "true" {
			return mix(2)
		}
		return mix(3)
	case kString:
		return mix(4 ^ maphash.String(d.c.seed, v.str))
	case kNumber:
		return mix(5 ^ d.c.numberHash(v.str))
	case kArray:
		h := mix(6 + uint64(len(v.list)))
		unordered := d.unorderedAt(lvl)
		if d.child(lvl, seg{idx: anyIndex}) {
			return h
		}
		for i := range v.list {
			eh := d.hash(&v.list[i], lvl+1)
			if unordered {
				h += mix(eh)
			} else {
				h = mix(h*31 + eh)
			}
		}
		return h
	default:
		h := mix(7)
		for i := range v.members() {
			key := v.key(i)
			if d.child(lvl, seg{key: key, idx: keySeg}) {
				continue
			}
			h += mix(maphash.String(d.c.seed, key) ^ mix(d.hash(v.val(i), lvl+1)+8))
		}
		return h
	}
}

// mix is the splitmix64 finalizer.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// numbersEqual compares two JSON number literals: by value within the
// relative tolerance, except integers beyond 2^53 (ids that float64 cannot
// hold), compared exactly.
func (c *Comparator) numbersEqual(a, b string) bool {
	if a == b {
		return true
	}
	if isInteger(a) && isInteger(b) && (bigInteger(a) || bigInteger(b)) {
		return false // JSON spells an integer one way (bar "-0", which is small)
	}
	fa, errA := strconv.ParseFloat(a, 64)
	fb, errB := strconv.ParseFloat(b, 64)
	if errA != nil || errB != nil {
		return false // out of float64's range: the literals differ
	}
	if fa == fb {
		return true
	}
	return c.tol > 0 && math.Abs(fa-fb) <= c.tol*math.Max(math.Abs(fa), math.Abs(fb))
}

func (c *Comparator) numberHash(s string) uint64 {
	if isInteger(s) && bigInteger(s) {
		return maphash.String(c.seed, s)
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return maphash.String(c.seed, s)
	}
	if f == 0 {
		f = 0 // -0 and 0 are equal
	}
	return math.Float64bits(f)
}

func isInteger(s string) bool { return !strings.ContainsAny(s, ".eE") }

// bigInteger reports whether an integer literal is beyond 2^53.
func bigInteger(s string) bool {
	s = strings.TrimPrefix(s, "-")
	const max = "9007199254740992" // 2^53
	return len(s) > len(max) || len(s) == len(max) && s > max
}

// MaxInstancesPerField bounds the differences Diff returns for one Field
// (an array of thousands of shifted elements would otherwise return
// thousands). Counting is per field and request, so nothing is lost; the
// first instances are kept as samples.
const MaxInstancesPerField = 16

// admit renders the current location's field and reports whether another
// difference may be reported for it.
func (d *differ) admit() (string, bool) {
	d.render = appendPath(d.render[:0], d.segs, true)
	if d.perField == nil && len(d.out) < MaxInstancesPerField {
		return string(d.render), true // no field can be full yet
	}
	if d.perField == nil {
		d.perField = make(map[string]int)
		for i := range d.out {
			d.perField[d.out[i].Field]++
		}
	}
	if d.perField[string(d.render)] >= MaxInstancesPerField {
		return "", false
	}
	field := string(d.render)
	d.perField[field]++
	return field, true
}

// truncate drops the differences from start on.
func (d *differ) truncate(start int) {
	if d.perField != nil {
		for i := start; i < len(d.out); i++ {
			d.perField[d.out[i].Field]--
		}
	}
	clear(d.out[start:])
	d.out = d.out[:start]
}

func (d *differ) addValue(kind string, a, b *value) {
	if d.probe {
		d.found = true
		return
	}
	field, ok := d.admit()
	if !ok {
		return
	}
	x := Difference{Field: field, Kind: kind}
	d.render = appendPath(d.render[:0], d.segs, false)
	x.Path = string(d.render)
	if a != nil {
		d.render = appendValue(d.render[:0], a)
		x.Live = clip(d.render)
	}
	if b != nil {
		d.render = appendValue(d.render[:0], b)
		x.Other = clip(d.render)
	}
	d.out = append(d.out, x)
}

func (d *differ) addLength(la, lb int) {
	if d.probe {
		d.found = true
		return
	}
	field, ok := d.admit()
	if !ok {
		return
	}
	d.render = appendPath(d.render[:0], d.segs, false)
	d.out = append(d.out, Difference{Field: field, Path: string(d.render), Kind: KindArrayLength,
		Live: "length " + strconv.Itoa(la), Other: "length " + strconv.Itoa(lb)})
}
