package stats

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// latencies returns n log-normal-ish latencies in ms, rounded to 0.1 ms as
// a gateway would record them (so with ties).
func latencies(r *rand.Rand, n int, scale float64) []float64 {
	out := make([]float64, n)
	for i := range out {
		v := scale * (20 + r.ExpFloat64()*15 + r.NormFloat64()*2)
		out[i] = float64(int(max(v, 0.1)*10)) / 10
	}
	return out
}

func BenchmarkMannWhitney(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("%dx%d", n, n), func(b *testing.B) {
			r := rand.New(rand.NewPCG(1, 1))
			x, y := latencies(r, n, 1.05), latencies(r, n, 1)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := MannWhitney(x, y, Greater); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("exact49x49", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = MannWhitney(exactX, exactY, TwoSided)
		}
	})
}

func BenchmarkHodgesLehmann(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("%dx%d", n, n), func(b *testing.B) {
			r := rand.New(rand.NewPCG(2, 2))
			x, y := latencies(r, n, 1.05), latencies(r, n, 1)
			b.ReportAllocs()
			for b.Loop() {
				_ = HodgesLehmann(x, y)
			}
		})
	}
}

func BenchmarkCompareProportions(b *testing.B) {
	b.Run("z-test", func(b *testing.B) {
		for b.Loop() {
			_, _ = CompareProportions(52, 5000, 400, 50000)
		}
	})
	b.Run("fisher", func(b *testing.B) {
		for b.Loop() {
			_, _ = CompareProportions(3, 100000, 0, 1000000)
		}
	})
}

func BenchmarkQuantile10000(b *testing.B) {
	x := latencies(rand.New(rand.NewPCG(4, 4)), 10000, 1)
	b.ReportAllocs()
	for b.Loop() {
		_ = Quantile(x, 0.99)
	}
}

func BenchmarkReservoirAdd(b *testing.B) {
	b.Run("serial", func(b *testing.B) {
		r := NewSeededReservoir(4096, 1)
		b.ReportAllocs()
		i := 0.0
		for b.Loop() {
			r.Add(i)
			i++
		}
	})
	b.Run("parallel", func(b *testing.B) {
		r := NewSeededReservoir(4096, 1)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i := 0.0
			for pb.Next() {
				r.Add(i)
				i++
			}
		})
	})
}
