package diffs

import "testing"

// TestSinceJudgesOnlyNewComparisons: Since classifies the differences made
// after a baseline (the broken answers before it do not count), nil means
// all of them, a reset endpoint counts from zero, and a noise mark hides
// the field.
func TestSinceJudgesOnlyNewComparisons(t *testing.T) {
	r := newRec(t, testCfg(), "shop")
	for range 50 {
		r.process(priced("shop", "GET /p", "11"))
	}
	base := r.Counts("shop")
	if c := base["GET /p"]; c.Compared != 50 || c.Fields["$.price"].Raw != 50 {
		t.Fatalf("Counts = %+v", base)
	}
	for range 100 {
		r.process(priced("shop", "GET /p", "10"))
	}
	if n, worst, x := r.Since("shop", base); n != 100 || worst != "" || x != 0 {
		t.Errorf("since the baseline: %d compared, worst %q %v; want 100 and none", n, worst, x)
	}
	if n, worst, x := r.Since("shop", nil); n != 150 || worst != "GET /p $.price" || x < 0.33 || x > 0.34 {
		t.Errorf("everything: %d compared, worst %q %v; want 150, GET /p $.price at 1/3", n, worst, x)
	}
	if _, err := r.Reset("shop", ""); err != nil {
		t.Fatal(err)
	}
	for range 10 {
		r.process(priced("shop", "GET /p", "12"))
	}
	if n, worst, x := r.Since("shop", base); n != 10 || worst != "GET /p $.price" || x != 1 {
		t.Errorf("after a reset: %d compared, worst %q %v; want 10, $.price at 1", n, worst, x)
	}
	if err := r.MarkNoise("shop", "", "$.price", true); err != nil {
		t.Fatal(err)
	}
	if _, worst, _ := r.Since("shop", base); worst != "" {
		t.Errorf("a field marked as noise is the worst: %q", worst)
	}
}
