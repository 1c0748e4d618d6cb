// Package flagstest holds umbra's end-to-end tests of feature flags,
// dark routes, X-Umbra-Flags and adoption tracking: each test writes a
// config file and a flagd flag file to a temp dir, loads the config with
// config.Load (as `umbra serve` does), starts a real gateway on loopback
// in front of httptest backends and talks to it over HTTP, with the real
// OpenFeature Go SDK and its OFREP provider where a client evaluates
// flags.
//
// testdata/gherkin holds umbra's flag scenarios in the vocabulary of
// flagd's test bed, run with godog (TestGherkin); TestFlagdTestbed runs
// the official test bed when UMBRA_FLAGD_TESTBED names a checkout of
// github.com/open-feature/flagd-testbed, which no Go module carries.
package flagstest
