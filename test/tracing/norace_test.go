//go:build !race

package tracingtest

const raceEnabled = false
