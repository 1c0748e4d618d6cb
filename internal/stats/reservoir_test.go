package stats

import (
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"testing"
)

// chiSquare is Pearson's statistic of observed counts against one common
// expected count.
func chiSquare(obs []int, expected float64) float64 {
	s := 0.0
	for _, o := range obs {
		d := float64(o) - expected
		s += d * d / expected
	}
	return s
}

// Each position of the stream must be kept with probability k/n. The test
// counts, over many seeded reservoirs, how often each position survives and
// compares with Pearson's chi-square. Each trial keeps exactly k positions
// (sampling without replacement), which makes the statistic's expectation
// (n−k) rather than n−1, so the 99.9% chi-square quantile with n−1 degrees
// of freedom is a conservative bound; a biased sampler (say, one that never
// replaces the first positions, or prefers late ones) fails by far.
func TestReservoirUniform(t *testing.T) {
	cases := []struct {
		k, n, trials int
		crit         float64 // R: qchisq(0.999, n-1)
	}{
		{10, 100, 5000, 148.230359165101703},   // qchisq(0.999, 99): mostly Algorithm L's fill and first skips
		{50, 1000, 1000, 1142.847983891035483}, // qchisq(0.999, 999): long skips
	}
	for _, c := range cases {
		hits := make([]int, c.n)
		for trial := 0; trial < c.trials; trial++ {
			r := NewSeededReservoir(c.k, uint64(trial)+1)
			for i := 0; i < c.n; i++ {
				r.Add(float64(i))
			}
			s := r.Snapshot()
			if len(s) != c.k || r.Count() != int64(c.n) {
				t.Fatalf("len %d count %d", len(s), r.Count())
			}
			for _, v := range s {
				hits[int(v)]++
			}
		}
		expected := float64(c.trials*c.k) / float64(c.n)
		stat := chiSquare(hits, expected)
		if stat > c.crit {
			t.Errorf("k=%d n=%d: chi-square %.1f > %.1f", c.k, c.n, stat, c.crit)
		}
		// And the halves of the stream are equally represented.
		first := 0
		for _, h := range hits[:c.n/2] {
			first += h
		}
		frac := float64(first) / float64(c.trials*c.k)
		if math.Abs(frac-0.5) > 0.02 {
			t.Errorf("k=%d n=%d: first half holds %.4f of the sample", c.k, c.n, frac)
		}
	}
}

// Long streams: Algorithm L's skips keep the sample uniform far past the
// fill. Positions are grouped into 20 equal bins.
func TestReservoirUniformLongStream(t *testing.T) {
	const k, n, trials, bins = 100, 50000, 20, 20
	hits := make([]int, bins)
	for trial := 0; trial < trials; trial++ {
		r := NewSeededReservoir(k, uint64(1000+trial))
		for i := 0; i < n; i++ {
			r.Add(float64(i))
		}
		for _, v := range r.Snapshot() {
			hits[int(v)*bins/n]++
		}
	}
	// R: qchisq(0.999, 19) = 43.820195964517531
	if stat := chiSquare(hits, float64(trials*k)/bins); stat > 43.820195964517531 {
		t.Errorf("chi-square over %d bins = %.1f: %v", bins, stat, hits)
	}
}

func TestReservoirDeterministic(t *testing.T) {
	run := func() []float64 {
		r := NewSeededReservoir(16, 42)
		for i := range 10000 {
			r.Add(float64(i))
		}
		return r.Snapshot()
	}
	a, b := run(), run()
	if !slices.Equal(a, b) {
		t.Errorf("same seed, different samples:\n%v\n%v", a, b)
	}
	r := NewSeededReservoir(16, 43)
	for i := range 10000 {
		r.Add(float64(i))
	}
	if slices.Equal(a, r.Snapshot()) {
		t.Error("different seeds gave the same sample")
	}
}

func TestReservoirBasics(t *testing.T) {
	r := NewReservoir(0) // raised to 1
	if r.Capacity() != 1 {
		t.Errorf("capacity %d", r.Capacity())
	}
	r = NewReservoir(5)
	for i := range 3 {
		r.Add(float64(i))
	}
	r.Add(math.NaN())
	if got := r.Snapshot(); !slices.Equal(got, []float64{0, 1, 2}) || r.Count() != 3 || r.Len() != 3 {
		t.Errorf("under capacity: %v count %d", got, r.Count())
	}
	// The snapshot is a copy.
	s := r.Snapshot()
	s[0] = 99
	if r.Snapshot()[0] != 0 {
		t.Error("snapshot aliases the sample")
	}
	for i := range 100 {
		r.Add(float64(i))
	}
	if r.Len() != 5 || r.Count() != 103 {
		t.Errorf("len %d count %d", r.Len(), r.Count())
	}
	r.Reset()
	if r.Len() != 0 || r.Count() != 0 || r.Capacity() != 5 {
		t.Errorf("after reset: len %d count %d cap %d", r.Len(), r.Count(), r.Capacity())
	}
	for i := range 5 {
		r.Add(float64(i + 10))
	}
	if got := r.Snapshot(); !slices.Equal(got, []float64{10, 11, 12, 13, 14}) {
		t.Errorf("refill after reset: %v", got)
	}
}

// Memory stays at the capacity however many observations arrive.
func TestReservoirBoundedMemory(t *testing.T) {
	r := NewSeededReservoir(1000, 1)
	for i := range 1000 {
		r.Add(float64(i))
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := range 500_000 {
		r.Add(float64(i))
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	if r.Len() != 1000 || cap(r.buf) != 1000 {
		t.Errorf("len %d cap %d", r.Len(), cap(r.buf))
	}
	// Add allocates nothing once the sample is full.
	if d := after.TotalAlloc - before.TotalAlloc; d > 64<<10 {
		t.Errorf("500k adds allocated %d bytes", d)
	}
	if a := testing.AllocsPerRun(1000, func() { r.Add(1) }); a != 0 {
		t.Errorf("Add allocates %v times", a)
	}
}

// Concurrent Adds, Snapshots, Counts and Resets (run under -race).
func TestReservoirConcurrent(t *testing.T) {
	r := NewReservoir(64)
	const writers, per = 8, 20000
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range per {
				r.Add(float64(w*per + i))
			}
		}()
	}
	stop := make(chan struct{})
	var readers sync.WaitGroup
	readers.Add(1)
	go func() {
		defer readers.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if s := r.Snapshot(); len(s) > 64 {
				t.Errorf("snapshot of %d", len(s))
			}
			_ = r.Count()
			_ = r.Capacity()
		}
	}()
	wg.Wait()
	close(stop)
	readers.Wait()
	if r.Count() != writers*per || r.Len() != 64 {
		t.Errorf("count %d len %d", r.Count(), r.Len())
	}
	seen := map[float64]bool{}
	for _, v := range r.Snapshot() {
		if v < 0 || v >= writers*per || seen[v] {
			t.Errorf("bad or duplicate value %v", v)
		}
		seen[v] = true
	}

	// Resets racing with Adds keep the invariants.
	var wg2 sync.WaitGroup
	for range 4 {
		wg2.Add(1)
		go func() {
			defer wg2.Done()
			for i := range 5000 {
				if i%1000 == 0 {
					r.Reset()
				}
				r.Add(float64(i))
			}
		}()
	}
	wg2.Wait()
	if r.Len() > 64 || int64(r.Len()) > r.Count() {
		t.Errorf("after racing resets: len %d count %d", r.Len(), r.Count())
	}
}

// NewSeededReservoir is NewReservoir with a fixed seed: the same seed and
// the same sequence of Adds (in the same order) give the same sample.
func NewSeededReservoir(capacity int, seed uint64) *Reservoir {
	return newReservoir(capacity, rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)))
}
