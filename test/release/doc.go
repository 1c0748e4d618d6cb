// Package releasetest checks umbra's release basics with real builds: the
// binary built in a git checkout reports its version, VCS revision (and
// +dirty) and Go version (`umbra version`, `umbra --version`), and
// scripts/release.sh builds byte-identical binaries from two checkouts of
// the same commit at different paths.
//
// The tests build from a snapshot of the working tree committed into a
// fresh git repository (`go build` stamps VCS data only from a directory
// whose .git is a directory, not from a git worktree). They skip, saying
// so, when git or the repository is missing.
//
// Run them with:
//
//	go test -count=1 ./test/release/
package releasetest
