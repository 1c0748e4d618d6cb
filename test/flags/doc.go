// Package flagstest holds umbra's end-to-end tests of feature flags,
// dark routes, X-Umbra-Flags and adoption tracking: each test writes a
// config file and a flagd flag file to a temp dir, loads the config with
// config.Load (as `umbra serve` does), starts a real gateway on loopback
// in front of httptest backends and talks to it over HTTP, with the real
// OpenFeature Go SDK and its OFREP provider where a client evaluates
// flags.
package flagstest
