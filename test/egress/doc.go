// Package egresstest holds umbra's end-to-end tests of the egress sandbox:
// a real gateway started from the real config parser, checkout services
// v1, v1-secondary and v2 on real sockets that charge a stand-in payment
// provider through umbra's egress listener, and the provider counting what
// it really receives.
//
// They prove that the provider sees each live checkout exactly once while
// v2 is shadowed at 100% (thousands of concurrent checkouts with repeated
// and interleaved calls), that v2 gets v1's recorded answers, that a call
// only v2 makes is never forwarded and is reported, that a changed
// outbound field is a regression and a random one noise, that canary calls
// reach the provider, that faults (provider down or slow, recording
// expired, store full, egress misconfigured) never leak a shadow call nor
// change live answers, and that Hoverfly v5 simulations are imported and
// recordings exported and imported again.
//
// Run them with:
//
//	go test -race -count=1 ./test/egress/
package egresstest
