//go:build race

package router

// raceEnabled: under -race sync.Pool drops items at random, so regexp
// matching (which pools its machines) allocates now and then.
const raceEnabled = true
