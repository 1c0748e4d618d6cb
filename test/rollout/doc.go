// Package rollouttest drives umbra's automated canary rollouts end to end:
// real backends (httptest servers whose behaviour each test controls), a
// real gateway loaded through the config loader, HTTP clients sending
// traffic from many distinct callers, and the admin API, the metrics and
// the CLI to observe and steer the rollout. Plans are accelerated
// (intervals of 100 ms, small minimums) so the whole package runs in well
// under a minute and a half on two shared cores with the race detector.
package rollouttest
