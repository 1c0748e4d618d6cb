// Package shadowtest holds umbra's end-to-end tests of shadow traffic (dark
// launch): a real gateway, configured through the real config parser, on
// real sockets, in front of live and shadow upstreams that are healthy,
// slow, dead, hanging, resetting or speaking garbage. They prove that a
// shadow never affects live traffic (status, body, latency, goroutines),
// that queues are bounded, that sampling is deterministic and nested, and
// that every outcome counter, marker and header rule works.
//
// Run them with:
//
//	go test -race -count=1 ./test/shadow/
//
// The tests are not parallel: several of them count goroutines.
package shadowtest
