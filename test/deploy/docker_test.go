package deploytest

import (
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var dockerfile = filepath.Join(root, "deploy", "docker", "Dockerfile")

// TestDockerfile reads the Dockerfile for what this machine cannot build:
// a build stage on go.mod's Go, a static path-free build of ./cmd/umbra
// with the release script's flags, a distroless static final stage, a
// numeric non-root user, and the image's default config valid.
func TestDockerfile(t *testing.T) {
	df := read(t, dockerfile)
	from := regexp.MustCompile(`(?m)^FROM (\S+)`).FindAllStringSubmatch(df, -1)
	if len(from) < 2 {
		t.Fatalf("%d FROM lines: want a multi-stage build", len(from))
	}
	goMod := regexp.MustCompile(`(?m)^go (\S+)$`).FindStringSubmatch(read(t, filepath.Join(root, "go.mod")))
	if !strings.Contains(df, "ARG GO_VERSION="+goMod[1]+"\n") || !strings.HasPrefix(from[0][1], "golang:${GO_VERSION}") {
		t.Errorf("the build stage is not on go.mod's Go %s", goMod[1])
	}
	if last := from[len(from)-1][1]; !strings.HasPrefix(last, "gcr.io/distroless/static") {
		t.Errorf("final stage on %s, want distroless/static", last)
	}
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath", `-ldflags "-s -w -buildid= -X main.version=${VERSION}"`, "./cmd/umbra",
		"\nUSER 65532:65532\n", `ENTRYPOINT ["/usr/local/bin/umbra"]`} {
		if !strings.Contains(df, want) {
			t.Errorf("%s lacks %q", dockerfile, want)
		}
	}
	release := read(t, filepath.Join(root, "scripts", "release.sh"))
	if !strings.Contains(release, `-ldflags "-s -w -buildid= -X main.version=$version"`) {
		t.Errorf("scripts/release.sh and the Dockerfile no longer build with the same flags")
	}
	validateConfig(t, "deploy/docker/umbra.yaml", read(t, filepath.Join(root, "deploy", "docker", "umbra.yaml")), nil)
}

// TestDockerBuild runs scripts/check-docker.sh, which builds the image and
// compares its binary with the README's build. It needs a Docker engine
// that can pull the base images; the script says when it has none.
func TestDockerBuild(t *testing.T) {
	if _, err := exec.LookPath("docker"); err != nil {
		t.Skip("docker is not installed: the Dockerfile is not built (scripts/check-docker.sh)")
	}
	if err := exec.Command("docker", "info").Run(); err != nil {
		t.Skip("no Docker engine is reachable (docker info failed): the Dockerfile is not built (scripts/check-docker.sh)")
	}
	cmd := exec.Command("bash", filepath.Join("scripts", "check-docker.sh"))
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if _, reason, ok := strings.Cut(string(out), "check-docker: SKIPPED: "); ok && err == nil {
		t.Skip(strings.TrimSpace(reason) + " (scripts/check-docker.sh)")
	}
	if err != nil || !strings.Contains(string(out), "check-docker: ok") {
		t.Errorf("scripts/check-docker.sh: %v\n%s", err, out)
	}
}
