package releasetest

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
)

// TestVersionFromBuildInfo builds cmd/umbra in a checkout as the README
// does (go build, VCS stamping on as it is by default) and checks what
// `umbra version` and `umbra --version` print: the pseudo-version the go
// command derives from the commit, the full revision, the commit time and
// the Go version; then changes a file and checks the rebuilt binary says
// +dirty.
func TestVersionFromBuildInfo(t *testing.T) {
	repo := snapshot(t)
	rev := git(t, repo, "rev-parse", "HEAD")
	// GOFLAGS from the environment replaces a machine-wide
	// -buildvcs=false (go env -w); a default Go install stamps anyway.
	// CGO_ENABLED=0 and -trimpath, which change nothing of the build info
	// read here, let this build share its compiled packages with
	// TestReleaseReproducible's.
	env := []string{"GOFLAGS=-buildvcs=true", "CGO_ENABLED=0"}
	bin := filepath.Join(t.TempDir(), "umbra")
	build := func() { run(t, repo, env, "go", "build", "-trimpath", "-o", bin, "./cmd/umbra") }
	build()

	out := run(t, repo, nil, bin, "version")
	want := regexp.MustCompile(`^umbra v0\.0\.0-20260102030405-` + rev[:12] + `\n` +
		`  revision: ` + rev + `\n` +
		`  commit time: 2026-01-02T03:04:05Z\n` +
		`  go: ` + regexp.QuoteMeta(runtime.Version()) + ` ` + runtime.GOOS + `/` + runtime.GOARCH + `\n$`)
	if !want.MatchString(out) {
		t.Errorf("umbra version:\n%s\nwant to match\n%s", out, want)
	}
	if flag := run(t, repo, nil, bin, "--version"); flag != out {
		t.Errorf("umbra --version:\n%s\nwant what umbra version prints:\n%s", flag, out)
	}

	readme := filepath.Join(repo, "README.md")
	b, err := os.ReadFile(readme)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(readme, append(b, "\nlocal edit\n"...), 0o644); err != nil {
		t.Fatal(err)
	}
	build()
	out = run(t, repo, nil, bin, "version")
	if !strings.HasPrefix(out, "umbra v0.0.0-20260102030405-"+rev[:12]+"+dirty\n") || !strings.Contains(out, "  revision: "+rev+"+dirty\n") {
		t.Errorf("umbra version of a dirty tree:\n%s\nwant the version and revision marked +dirty", out)
	}
}

// TestReleaseReproducible runs scripts/release.sh in two checkouts of the
// same commit at different paths and checks the binaries are identical
// byte for byte, static, trimmed, stamped with the commit, and report the
// release version. One platform keeps it quick; the script builds the
// others the same way with GOOS/GOARCH.
func TestReleaseReproducible(t *testing.T) {
	a := snapshot(t)
	b := clone(t, a)
	rev := git(t, a, "rev-parse", "HEAD")
	platform := runtime.GOOS + "/" + runtime.GOARCH
	env := []string{"PLATFORMS=" + platform}
	name := "umbra_v9.8.7_" + runtime.GOOS + "_" + runtime.GOARCH
	outA, outB := filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b")
	run(t, a, env, "bash", "scripts/release.sh", "v9.8.7", outA)
	run(t, b, env, "bash", "scripts/release.sh", "v9.8.7", outB)

	binA, binB := read(t, filepath.Join(outA, name)), read(t, filepath.Join(outB, name))
	if !bytes.Equal(binA, binB) {
		t.Fatalf("%s differs between two checkouts of %s (%d and %d bytes): the build is not reproducible", name, rev, len(binA), len(binB))
	}
	if sa, sb := read(t, filepath.Join(outA, "SHA256SUMS")), read(t, filepath.Join(outB, "SHA256SUMS")); !bytes.Equal(sa, sb) || !bytes.Contains(sa, []byte("  "+name+"\n")) {
		t.Errorf("SHA256SUMS:\n%s\n%s", sa, sb)
	}

	info := run(t, a, nil, "go", "version", "-m", filepath.Join(outA, name))
	for _, want := range []string{"\tbuild\t-trimpath=true\n", "\tbuild\tCGO_ENABLED=0\n", "\tbuild\tvcs.revision=" + rev + "\n", "\tbuild\tvcs.modified=false\n"} {
		if !strings.Contains(info, want) {
			t.Errorf("go version -m: missing %q in\n%s", want, info)
		}
	}
	if strings.Contains(string(binA), a) {
		t.Errorf("the binary holds the build path %s", a)
	}
	if out := run(t, a, nil, filepath.Join(outA, name), "version"); !strings.HasPrefix(out, "umbra v9.8.7\n  revision: "+rev+"\n") {
		t.Errorf("release binary's version:\n%s", out)
	}
}

func read(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
