//go:build race

package tracingtest

// raceEnabled: under -race sync.Pool drops items at random and the
// detector allocates itself, so allocation counts are only logged.
const raceEnabled = true
