// Package stats holds the statistics umbra's canary analysis uses to judge a
// canary (v2) against the live version (v1) on the same window of traffic,
// in the way Netflix's Kayenta judges a canary: no external metrics system,
// only the observations umbra made itself.
//
//   - Latency distributions: [MannWhitney] (the Mann-Whitney U test, also
//     called the Wilcoxon rank-sum test) says whether the canary's latencies
//     tend to be larger than live's; [HodgesLehmann] and [ShiftCI] say by
//     how much (the median of all pairwise differences, with a confidence
//     interval and a ratio to the live median for limits such as "at most
//     1.2x").
//   - Error rates: [CompareProportions] tests whether the canary's error rate
//     is higher than live's (a pooled two-proportion z-test, or Fisher's
//     exact test when counts are small), and [MinSamplesNeeded] says how many
//     canary requests a test needs before it could see a given increase, so
//     the operator is told "N more requests needed" rather than getting a
//     verdict from too little data.
//   - Tail latency: [Quantile] (R's default, type 7) and [QuantileRatio].
//   - Bounded memory: [Reservoir] keeps a uniform sample of a stream of
//     observations in a fixed amount of memory.
//
// The functions are pure (they never modify their arguments) and safe for
// concurrent use; only [Reservoir] has state, guarded by a mutex.
//
// Every reference value in the tests was produced with R 4.2 (the call is in
// a comment next to the number); R is not needed to run them.
//
// # Why not github.com/aclements/go-moremath/stats
//
// The product brief suggests go-moremath's MannWhitneyUTest. Its normal
// approximation (tie-corrected variance, continuity correction) and its
// exact distribution for untied samples agree with R and with a brute-force
// permutation count, but its exact path for samples with ties (used by
// default up to 25 observations each) returns wrong p-values: the one-sided
// p-value is taken as 1-CDF(U-1) although U moves in steps of 0.5 when there
// are ties (so it counts values of U below the observed one), and the
// two-sided p-value doubles one tail of a distribution that ties make
// asymmetric. Checked against full permutation enumeration: x={1..5},
// y={2,3,6,7,8,9} gives a two-sided p of 0.1169 where the permutation
// p-value is 0.1104, and x={3,3,4,5}, y={1,2,3,3,3,4} gives 0.0952 where it
// is 0.1714 (the same class of bug as JuliaStats/HypothesisTests.jl #337).
// Its exact-size limits are mutable package globals, it errors (rather than
// answering p=1) when all values are equal, it computes upper tails as
// 1-CDF and so loses small p-values, and the module has had no release
// since 2021. The test here is short, so it is written out in this package
// and follows R's wilcox.test exactly (same exact/approximate switch, same
// corrections), which also makes R the reference for the tests.
package stats
