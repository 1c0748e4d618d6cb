// Package comparetest holds umbra's end-to-end tests of answer comparison
// (the Diffy-style shadow diff): a real gateway, configured through the
// real config parser, on real sockets, in front of real v1, v1-secondary
// and v2 upstreams, read back over the real admin API and CLI.
//
// They prove that a changed field is reported as a regression with
// redacted samples, that fields random in both live instances are noise,
// that the comparison options (unordered arrays, numeric tolerance,
// gzip, text, binary, empty bodies, status codes, size limit) behave as
// documented, that results and noise marks survive a restart and a reset
// keeps the marks, that live traffic is untouched when the comparison
// queue overflows, and that `umbra diff` prints the report.
//
// Run them with:
//
//	go test -race -count=1 ./test/compare/
package comparetest
