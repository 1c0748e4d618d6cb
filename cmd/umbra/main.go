// Command umbra is a dark-launch gateway: it proxies live traffic and
// shadows, compares, canaries and flags new versions of services.
package main

import (
	"errors"
	"fmt"
	"os"
	"runtime/debug"

	"github.com/umbragw/umbra/internal/config"
)

// version overrides the module version from the build info when set at
// build time with -ldflags "-X main.version=..." (scripts/release.sh does).
// Left empty, `go install ...@v1.2.3` reports v1.2.3 and a build in a
// checkout its pseudo-version, both from runtime/debug.ReadBuildInfo.
var version = ""

// exitError carries a process exit code: 2 for bad usage or config, as
// documented, 1 for failures at run time.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }

// defaultGCPercent trades memory for CPU: a gateway's live heap is small
// (a few MB of routes and pools) while every request allocates, so
// collecting at 4x the live heap instead of 2x cut the collector's share of
// a loaded core in the profile (see docs/benchmarks.md). GOGC overrides it.
const defaultGCPercent = 400

func main() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(defaultGCPercent)
	}
	err := newRootCmd().Execute()
	if err == nil {
		return
	}
	code := 2 // cobra's own errors are usage errors
	var ee *exitError
	var cl config.ErrorList
	switch {
	case errors.As(err, &cl):
		for _, e := range cl {
			fmt.Fprintln(os.Stderr, e)
		}
	case errors.As(err, &ee):
		code = ee.code
		fmt.Fprintln(os.Stderr, "umbra:", ee.err)
	default:
		fmt.Fprintln(os.Stderr, "umbra:", err)
	}
	if errors.As(err, &ee) {
		code = ee.code
	}
	os.Exit(code)
}
