// Package testkit is the scaffolding the end-to-end suites under test/
// share: a gateway started from YAML text with its log captured, HTTP
// client helpers, /metrics scraping, polling with a deadline and a dead
// address. Suite-specific helpers (upstreams, config headers, admin API
// wrappers) stay in their suites.
package testkit
