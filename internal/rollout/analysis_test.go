package rollout

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/umbragw/umbra/internal/config"
	"github.com/umbragw/umbra/internal/stats"
)

// defaultAnalysis is the analysis a plan gets when it sets nothing.
func defaultAnalysis(t *testing.T) *config.Analysis {
	t.Helper()
	r := parsePlan(t, "      steps: [{canary: {weight: 10}}, {promote: {}}]\n")
	a := r.Rollout.Analysis
	if a.MaxErrorRateIncrease != 0.005 || a.Confidence != 0.98 || a.Latency.MaxIncrease != 1.2 || a.Latency.MaxP99Ratio != 1.5 {
		t.Fatalf("defaults changed: %+v", a)
	}
	return &a
}

func canaryStep(minRequests int64, minDuration time.Duration) *config.CanaryStep {
	return &config.CanaryStep{Weight: 10, MinRequests: minRequests, MinDuration: config.Duration(minDuration)}
}

func TestAnalyzeCanaryWaitsForData(t *testing.T) {
	a := defaultAnalysis(t)
	for _, tc := range []struct {
		name   string
		c      counts
		step   *config.CanaryStep
		reason string
	}{
		{"canary and time", counts{canaryN: 40, liveN: 500, elapsed: 3 * time.Second}, canaryStep(100, 10*time.Second),
			"waiting for 60 more canary requests and 7s more time"},
		{"everything", counts{canaryN: 40, liveN: 80, elapsed: 3 * time.Second}, canaryStep(100, 10*time.Second),
			"waiting for 60 more canary requests, 20 more live requests and 7s more time"},
		{"live only", counts{canaryN: 100, liveN: 95}, canaryStep(100, 0), "waiting for 5 more live requests"},
		{"no traffic at all", counts{}, canaryStep(100, 0), "waiting for 100 more canary requests and 100 more live requests"},
		// Errors do not count before the step has its data: a quiet service
		// with one early failure holds, it does not fail.
		{"errors before enough data", counts{canaryN: 3, canaryErr: 3, liveN: 30}, canaryStep(50, 0),
			"waiting for 47 more canary requests and 20 more live requests"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := analyzeCanary(tc.c, tc.step, a)
			if r.Verdict != verdictWait || r.Reason != tc.reason {
				t.Fatalf("got %s %q, want wait %q", r.Verdict, r.Reason, tc.reason)
			}
			if r.Inputs["canary_requests"] != float64(tc.c.canaryN) || r.Inputs["live_requests"] != float64(tc.c.liveN) ||
				r.Inputs["elapsed_seconds"] != tc.c.elapsed.Seconds() {
				t.Errorf("inputs %v do not carry the counts %+v", r.Inputs, tc.c)
			}
			if _, ok := r.Inputs["error_p_value"]; ok {
				t.Errorf("error test ran before the step had its data: %v", r.Inputs)
			}
			if n, ok := r.Inputs["canary_requests_to_detect"]; ok && (tc.c.liveN == 0 || n < 0) {
				t.Errorf("canary_requests_to_detect %v with %d live requests", n, tc.c.liveN)
			}
		})
	}
}

// TestHoldSaysRequestsToDetect: a holding canary step says how many more
// canary requests the error test needs to see the configured increase:
// fewer the more it has, more the rarer live's errors make the effect.
func TestHoldSaysRequestsToDetect(t *testing.T) {
	a := defaultAnalysis(t)
	step := canaryStep(1_000_000, 0)
	need := func(c counts) float64 {
		r := analyzeCanary(c, step, a)
		n, ok := r.Inputs["canary_requests_to_detect"]
		if r.Verdict != verdictWait || !ok {
			t.Fatalf("%+v: %s %v, want a hold that says how many", c, r.Verdict, r.Inputs)
		}
		return n
	}
	base := need(counts{liveN: 100_000, liveErr: 1000})
	want, err := stats.MinSamplesNeeded(stats.SampleSizeParams{LiveErrorRate: 0.01, LiveTotal: 100_000,
		MaxIncrease: a.MaxErrorRateIncrease, Confidence: a.Confidence})
	if err != nil || base != float64(want) {
		t.Fatalf("with no canary requests yet: %v, want MinSamplesNeeded's %d (%v)", base, want, err)
	}
	if got := need(counts{canaryN: 1000, liveN: 100_000, liveErr: 1000}); got != base-1000 {
		t.Errorf("after 1000 canary requests: %v, want %v", got, base-1000)
	}
	if got := need(counts{canaryN: int64(base) + 5, liveN: 100_000, liveErr: 1000}); got != 0 {
		t.Errorf("with enough canary requests: %v, want 0", got)
	}
	if got := need(counts{liveN: 100_000, liveErr: 10_000}); got <= base {
		t.Errorf("a noisier live (10%% errors) needs %v, want more than %v", got, base)
	}
}

func TestAnalyzeCanaryPasses(t *testing.T) {
	a := defaultAnalysis(t)
	c := counts{canaryN: 500, liveN: 4500, liveMs: ms(500, 10, 2), canaryMs: ms(500, 10, 2), elapsed: time.Minute}
	r := analyzeCanary(c, canaryStep(500, 30*time.Second), a)
	if r.Verdict != verdictPass || r.Reason != "canary no worse than live over 500/4500 requests" {
		t.Fatalf("got %s %q", r.Verdict, r.Reason)
	}
	for _, k := range []string{"canary_error_rate", "live_error_rate", "error_p_value", "latency_p_value", "latency_shift_ratio", "p99_ratio"} {
		if _, ok := r.Inputs[k]; !ok {
			t.Errorf("input %s missing: %v", k, r.Inputs)
		}
	}
	if got := r.Inputs["latency_shift_ratio"]; math.Abs(got-1) > 0.01 {
		t.Errorf("latency_shift_ratio of equal samples = %v, want 1", got)
	}
	if got := r.Inputs["p99_ratio"]; math.Abs(got-1) > 0.01 {
		t.Errorf("p99_ratio of equal samples = %v, want 1", got)
	}
}

func TestAnalyzeCanaryErrors(t *testing.T) {
	a := defaultAnalysis(t)
	same := ms(300, 10, 2)
	t.Run("fails on a significant increase", func(t *testing.T) {
		c := counts{canaryN: 500, canaryErr: 25, liveN: 2000, liveErr: 1, liveMs: same, canaryMs: same}
		r := analyzeCanary(c, canaryStep(100, 0), a)
		if r.Verdict != verdictFail {
			t.Fatalf("got %s %q, want fail", r.Verdict, r.Reason)
		}
		if !strings.HasPrefix(r.Reason, "canary error rate 5.00% vs live 0.05% (+4.95 points > allowed 0.50, p=") {
			t.Errorf("reason %q", r.Reason)
		}
		if r.Inputs["canary_error_rate"] != 0.05 || r.Inputs["live_error_rate"] != 0.0005 || !(r.Inputs["error_p_value"] < 0.02) {
			t.Errorf("inputs %v", r.Inputs)
		}
		if _, ok := r.Inputs["latency_p_value"]; ok {
			t.Errorf("latency judged after the error verdict: %v", r.Inputs)
		}
	})
	t.Run("a large but not significant increase passes", func(t *testing.T) {
		// 1 error in 20 canary requests, none in 200 live: +5 points, but
		// Fisher's p = 20/220 ≈ 0.09 is not significant at 0.98.
		c := counts{canaryN: 20, canaryErr: 1, liveN: 200, liveMs: same, canaryMs: same[:20]}
		r := analyzeCanary(c, canaryStep(20, 0), a)
		if r.Verdict != verdictPass {
			t.Fatalf("got %s %q, want pass", r.Verdict, r.Reason)
		}
		if p := r.Inputs["error_p_value"]; math.Abs(p-20.0/220) > 1e-9 {
			t.Errorf("error_p_value = %v, want %v (Fisher)", p, 20.0/220)
		}
	})
	t.Run("a significant increase below the allowance passes", func(t *testing.T) {
		c := counts{canaryN: 10000, canaryErr: 30, liveN: 10000, liveErr: 10, liveMs: same, canaryMs: same}
		r := analyzeCanary(c, canaryStep(100, 0), a)
		if r.Verdict != verdictPass {
			t.Fatalf("got %s %q, want pass (+0.2 points < 0.5 allowed)", r.Verdict, r.Reason)
		}
		if !(r.Inputs["error_p_value"] < 0.02) {
			t.Errorf("precondition: the increase should be significant, p=%v", r.Inputs["error_p_value"])
		}
	})
	t.Run("live failing as much as the canary passes", func(t *testing.T) {
		c := counts{canaryN: 1000, canaryErr: 100, liveN: 9000, liveErr: 900, liveMs: same, canaryMs: same}
		if r := analyzeCanary(c, canaryStep(100, 0), a); r.Verdict != verdictPass {
			t.Fatalf("got %s %q, want pass", r.Verdict, r.Reason)
		}
	})
	t.Run("impossible counts wait", func(t *testing.T) {
		c := counts{canaryN: 10, canaryErr: 11, liveN: 10}
		r := analyzeCanary(c, canaryStep(0, 0), a)
		if r.Verdict != verdictWait || !strings.HasPrefix(r.Reason, "error counts: ") {
			t.Fatalf("got %s %q", r.Verdict, r.Reason)
		}
	})
}

func TestAnalyzeCanaryLatency(t *testing.T) {
	a := defaultAnalysis(t)
	live := ms(500, 10, 2) // 10 to 11.8 ms, median about 10.9
	t.Run("30% slower fails on the Hodges-Lehmann shift", func(t *testing.T) {
		c := counts{canaryN: 500, liveN: 500, liveMs: live, canaryMs: ms(500, 13, 2)}
		r := analyzeCanary(c, canaryStep(100, 0), a)
		if r.Verdict != verdictFail {
			t.Fatalf("got %s %q, want fail", r.Verdict, r.Reason)
		}
		for _, want := range []string{"canary latency 2", "% above live", "Hodges-Lehmann", "allowed 20%", "Mann-Whitney p="} {
			if !strings.Contains(r.Reason, want) {
				t.Errorf("reason %q lacks %q", r.Reason, want)
			}
		}
		if sr := r.Inputs["latency_shift_ratio"]; sr < 1.25 || sr > 1.3 {
			t.Errorf("latency_shift_ratio = %v, want about 13.9/10.9", sr)
		}
		if !(r.Inputs["latency_p_value"] < 1e-6) {
			t.Errorf("latency_p_value = %v", r.Inputs["latency_p_value"])
		}
		if r.Inputs["canary_error_rate"] != 0 || r.Inputs["error_p_value"] != 1 {
			t.Errorf("error inputs %v", r.Inputs)
		}
	})
	t.Run("slower within the allowance passes", func(t *testing.T) {
		c := counts{canaryN: 500, liveN: 500, liveMs: live, canaryMs: ms(500, 10.5, 2)}
		r := analyzeCanary(c, canaryStep(100, 0), a)
		if r.Verdict != verdictPass {
			t.Fatalf("got %s %q, want pass", r.Verdict, r.Reason)
		}
		if !(r.Inputs["latency_p_value"] < 0.02) {
			t.Errorf("precondition: significantly slower, p=%v", r.Inputs["latency_p_value"])
		}
	})
	t.Run("a faster canary passes", func(t *testing.T) {
		c := counts{canaryN: 500, liveN: 500, liveMs: live, canaryMs: ms(500, 5, 1)}
		if r := analyzeCanary(c, canaryStep(100, 0), a); r.Verdict != verdictPass {
			t.Fatalf("got %s %q, want pass", r.Verdict, r.Reason)
		}
	})
	t.Run("a heavy tail fails on p99", func(t *testing.T) {
		canary := ms(500, 10.5, 2)
		for i := 0; i < 15; i++ { // 3% of the canary's requests take 40 ms
			canary[i*33] = 40
		}
		c := counts{canaryN: 500, liveN: 500, liveMs: live, canaryMs: canary}
		r := analyzeCanary(c, canaryStep(100, 0), a)
		if r.Verdict != verdictFail || !strings.HasPrefix(r.Reason, "canary p99 latency ") || !strings.Contains(r.Reason, "(allowed 1.50x)") {
			t.Fatalf("got %s %q, want a p99 failure", r.Verdict, r.Reason)
		}
		if sr := r.Inputs["latency_shift_ratio"]; sr > a.Latency.MaxIncrease {
			t.Errorf("precondition: the median shift (%v) should be within the allowance", sr)
		}
		if r99 := r.Inputs["p99_ratio"]; r99 < 3 {
			t.Errorf("p99_ratio = %v", r99)
		}
	})
	t.Run("a heavy tail without a significant shift passes", func(t *testing.T) {
		canary := append([]float64(nil), live...)
		for i := 0; i < 10; i++ {
			canary[i*50] = 40
		}
		c := counts{canaryN: 500, liveN: 500, liveMs: live, canaryMs: canary}
		mw, err := stats.MannWhitney(canary, live, stats.Greater)
		if err != nil || mw.P < 0.02 {
			t.Fatalf("precondition: Mann-Whitney p = %v (%v) should not be significant", mw.P, err)
		}
		if r := analyzeCanary(c, canaryStep(100, 0), a); r.Verdict != verdictPass {
			t.Fatalf("got %s %q, want pass: p99 alone, without a significant shift, does not fail", r.Verdict, r.Reason)
		}
	})
	t.Run("too few samples skip the latency test", func(t *testing.T) {
		c := counts{canaryN: 1, liveN: 1, liveMs: []float64{10}, canaryMs: []float64{100}}
		r := analyzeCanary(c, canaryStep(0, 0), a)
		if r.Verdict != verdictPass {
			t.Fatalf("got %s %q", r.Verdict, r.Reason)
		}
		if _, ok := r.Inputs["latency_p_value"]; ok {
			t.Errorf("latency judged on one sample: %v", r.Inputs)
		}
	})
}

func TestAnalyzeShadow(t *testing.T) {
	step := &config.ShadowStep{MinRequests: 100, MaxDiffRate: 0.01, MaxErrorRate: 0.01}
	slow := &config.ShadowStep{MinRequests: 100, MinDuration: config.Duration(5 * time.Second), MaxDiffRate: 0.01, MaxErrorRate: 0.01}
	for _, tc := range []struct {
		name    string
		s       ShadowStatus
		elapsed time.Duration
		step    *config.ShadowStep
		verdict verdict
		reason  string
	}{
		{"waits for comparisons", ShadowStatus{Compared: 40, Sent: 50}, 0, step, verdictWait, "waiting for 60 more compared answers"},
		{"waits for time", ShadowStatus{Compared: 200, Sent: 200}, 2 * time.Second, slow, verdictWait, "waiting for 3s more time"},
		{"waits for both", ShadowStatus{Compared: 10, Sent: 10}, 2 * time.Second, slow, verdictWait, "waiting for 90 more compared answers and 3s more time"},
		{"failures before min_requests copies wait", ShadowStatus{Compared: 40, Sent: 50, Failed: 10}, 0, step, verdictWait, "waiting for 60 more compared answers"},
		{"a regression before min_requests waits", ShadowStatus{Compared: 40, Sent: 50, WorstField: "GET /x $.total", WorstExcess: 0.5}, 0, step, verdictWait, "waiting for 60 more compared answers"},
		{"fails on shadow errors", ShadowStatus{Compared: 150, Sent: 200, Failed: 5}, 0, step, verdictFail, "shadow error rate 2.50% > allowed 1.00%"},
		{"fails on a regression", ShadowStatus{Compared: 200, Sent: 200, WorstField: "GET /x $.total", WorstExcess: 0.05}, 0, step, verdictFail,
			"shadow answers differ: GET /x $.total in 5.0% more answers than noise explains (allowed 1.0%)"},
		{"passes", ShadowStatus{Compared: 200, Sent: 200, Failed: 1, WorstField: "GET /x $.id", WorstExcess: 0.005}, 0, step, verdictPass,
			"200 answers compared, no field regressed beyond 1.0%"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := analyzeShadow(tc.s, tc.elapsed, tc.step)
			if r.Verdict != tc.verdict || r.Reason != tc.reason {
				t.Fatalf("got %s %q, want %s %q", r.Verdict, r.Reason, tc.verdict, tc.reason)
			}
			if r.Inputs["compared"] != float64(tc.s.Compared) || r.Inputs["shadow_sent"] != float64(tc.s.Sent) ||
				r.Inputs["shadow_failed"] != float64(tc.s.Failed) || r.Inputs["worst_diff_rate"] != tc.s.WorstExcess {
				t.Errorf("inputs %v", r.Inputs)
			}
			if tc.s.Sent > 0 && r.Inputs["shadow_error_rate"] != float64(tc.s.Failed)/float64(tc.s.Sent) {
				t.Errorf("shadow_error_rate %v", r.Inputs["shadow_error_rate"])
			}
		})
	}
}

func TestJoinAnd(t *testing.T) {
	for _, tc := range []struct {
		in   []string
		want string
	}{
		{nil, ""},
		{[]string{"a"}, "a"},
		{[]string{"a", "b"}, "a and b"},
		{[]string{"a", "b", "c"}, "a, b and c"},
		{[]string{"a", "b", "c", "d"}, "a, b, c and d"},
	} {
		if got := joinAnd(tc.in); got != tc.want {
			t.Errorf("joinAnd(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
