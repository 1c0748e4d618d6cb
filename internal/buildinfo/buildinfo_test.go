package buildinfo

import (
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
)

func TestFromBuildInfo(t *testing.T) {
	settings := func(kv ...string) []debug.BuildSetting {
		var s []debug.BuildSetting
		for i := 0; i < len(kv); i += 2 {
			s = append(s, debug.BuildSetting{Key: kv[i], Value: kv[i+1]})
		}
		return s
	}
	platform := runtime.GOOS + "/" + runtime.GOARCH
	for _, tc := range []struct {
		name     string
		bi       debug.BuildInfo
		override string
		want     Info
	}{
		{"go install @version", debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.2.3"}},
			"", Info{Version: "v1.2.3", GoVersion: "go1.26.8", Platform: platform}},
		{"checkout, dirty", debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v0.0.0-20261206021017-7969f7e1abcd+dirty"},
			Settings: settings("vcs", "git", "vcs.revision", "7969f7e1abcd", "vcs.time", "2026-12-06T02:10:17Z", "vcs.modified", "true")},
			"", Info{Version: "v0.0.0-20261206021017-7969f7e1abcd+dirty", Revision: "7969f7e1abcd", Modified: true,
				Time: "2026-12-06T02:10:17Z", GoVersion: "go1.26.8", Platform: platform}},
		{"no version derived", debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"},
			Settings: settings("vcs.revision", "abc", "vcs.modified", "false")},
			"", Info{Version: "devel", Revision: "abc", GoVersion: "go1.26.8", Platform: platform}},
		{"release override", debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}},
			"v2.0.0", Info{Version: "v2.0.0", GoVersion: "go1.26.8", Platform: platform}},
	} {
		if got := fromBuildInfo(&tc.bi, tc.override); got != tc.want {
			t.Errorf("%s:\n got %+v\nwant %+v", tc.name, got, tc.want)
		}
	}
}

func TestString(t *testing.T) {
	i := Info{Version: "v1.2.3", Revision: "abc", Modified: true, Time: "2026-12-06T02:10:17Z", GoVersion: "go1.26.8", Platform: "linux/arm64"}
	want := "umbra v1.2.3\n  revision: abc+dirty\n  commit time: 2026-12-06T02:10:17Z\n  go: go1.26.8 linux/arm64\n"
	if got := i.String(); got != want {
		t.Errorf("String:\n%s\nwant\n%s", got, want)
	}
	if got := (Info{Version: "devel", GoVersion: "go1.26.8", Platform: "linux/amd64"}).String(); !strings.Contains(got, "revision: unknown\n") || strings.Contains(got, "commit time") {
		t.Errorf("without VCS stamp:\n%s", got)
	}
}

func TestReadRunningBinary(t *testing.T) {
	i := Read("")
	if i.GoVersion != runtime.Version() {
		t.Errorf("GoVersion %q, want %q", i.GoVersion, runtime.Version())
	}
	if i.Version == "" {
		t.Error("empty version")
	}
}
