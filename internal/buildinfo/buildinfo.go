// Package buildinfo says which umbra this is: the module version, the VCS
// revision it was built from (and whether the tree had local changes), and
// the Go toolchain, all read from the build info the Go linker embeds
// (runtime/debug.ReadBuildInfo), so `go install ...@v1.2.3`, `go build` in
// a checkout and the release script all report themselves without extra
// steps.
package buildinfo

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
)

// Info describes a build.
type Info struct {
	Version   string // module version (v1.2.3, a pseudo-version, or "devel")
	Revision  string // VCS revision, "" when the build had no VCS stamp
	Modified  bool   // the work tree had uncommitted changes
	Time      string // commit time (RFC 3339), "" when unknown
	GoVersion string // toolchain that built the binary
	Platform  string // GOOS/GOARCH
}

// Read returns the running binary's build info. A non-empty override (the
// release script's -X main.version=...) wins over the module version.
func Read(override string) Info {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		bi = &debug.BuildInfo{GoVersion: runtime.Version()}
	}
	return fromBuildInfo(bi, override)
}

func fromBuildInfo(bi *debug.BuildInfo, override string) Info {
	info := Info{Version: override, GoVersion: bi.GoVersion, Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if info.Version == "" {
		info.Version = bi.Main.Version
	}
	// "(devel)" is what the go command records for a build without a
	// version it can derive; say it plainly.
	if info.Version == "" || info.Version == "(devel)" {
		info.Version = "devel"
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			info.Revision = s.Value
		case "vcs.modified":
			info.Modified = s.Value == "true"
		case "vcs.time":
			info.Time = s.Value
		}
	}
	return info
}

// RevisionLabel is the revision with "+dirty" when the tree had local
// changes, or "unknown" without a VCS stamp.
func (i Info) RevisionLabel() string {
	switch {
	case i.Revision == "":
		return "unknown"
	case i.Modified:
		return i.Revision + "+dirty"
	}
	return i.Revision
}

// String is what `umbra version` prints: the version on the first line,
// then one "key: value" line each.
func (i Info) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "umbra %s\n", i.Version)
	fmt.Fprintf(&b, "  revision: %s\n", i.RevisionLabel())
	if i.Time != "" {
		fmt.Fprintf(&b, "  commit time: %s\n", i.Time)
	}
	fmt.Fprintf(&b, "  go: %s %s\n", i.GoVersion, i.Platform)
	return b.String()
}
