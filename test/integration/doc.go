// Package integration holds umbra's end-to-end tests: a real gateway on
// real sockets in front of real upstream servers, driven by real clients
// (net/http and raw net.Conn), with the race detector on. They cover the
// proxy's HTTP semantics, routing, balancing and passive health, hot
// reload under load, graceful shutdown, the admin API, the metrics and the
// umbra binary itself.
//
// Run them with:
//
//	go test -race -count=1 ./test/integration/
//
// The package has no code of its own; everything is in _test.go files.
package integration
