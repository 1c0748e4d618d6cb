package deploytest

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

var (
	unitFile        = filepath.Join(root, "deploy", "systemd", "umbra.service")
	systemdConfig   = filepath.Join(root, "deploy", "systemd", "umbra.yaml")
	installedBinary = "/usr/local/bin/umbra"
)

// unitForAnalysis writes the unit into a temporary directory with its
// binary path pointing at an executable that exists here (this test's
// own binary: systemd-analyze checks that the commands can be run).
func unitForAnalysis(t *testing.T) string {
	t.Helper()
	unit := read(t, unitFile)
	if !strings.Contains(unit, "ExecStart="+installedBinary+" serve -c /etc/umbra/umbra.yaml\n") {
		t.Fatalf("%s: ExecStart is not %s serve -c /etc/umbra/umbra.yaml", unitFile, installedBinary)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "umbra.service")
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(unit, installedBinary, self)), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func systemdAnalyze(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not installed (Debian package systemd): the unit is not verified")
	}
	return bin
}

// TestSystemdUnitVerify: systemd-analyze verify says nothing about the
// unit. It exits 0 on an unknown key but prints it, so any output fails.
func TestSystemdUnitVerify(t *testing.T) {
	bin := systemdAnalyze(t)
	cmd := exec.Command(bin, "verify", unitForAnalysis(t))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if err != nil || out.Len() > 0 {
		t.Errorf("systemd-analyze verify %s: %v\n%s", unitFile, err, out.String())
	}
}

// TestSystemdUnitHardening: systemd-analyze security rates the unit's
// exposure at most 2.0 ("OK"; a unit without hardening is 9.6), and the
// options the unit is chosen for are there.
func TestSystemdUnitHardening(t *testing.T) {
	bin := systemdAnalyze(t)
	out, err := exec.Command(bin, "security", "--offline=true", "--no-pager", unitForAnalysis(t)).CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-analyze security: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`Overall exposure level for umbra.service: ([0-9.]+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("no exposure level in:\n%s", out)
	}
	if level, _ := strconv.ParseFloat(string(m[1]), 64); level > 2.0 {
		t.Errorf("exposure level %.1f, want at most 2.0:\n%s", level, out)
	}
	unit := read(t, unitFile)
	for _, opt := range []string{"DynamicUser=yes", "StateDirectory=umbra", "WorkingDirectory=/var/lib/umbra", "NoNewPrivileges=yes",
		"ProtectSystem=strict", "ProtectHome=yes", "PrivateTmp=yes", "CapabilityBoundingSet=\n", "ExecReload=/bin/kill -HUP $MAINPID",
		"RestartPreventExitStatus=2"} {
		if !strings.Contains(unit, "\n"+opt) {
			t.Errorf("%s lacks %s", unitFile, opt)
		}
	}
}

// TestSystemdConfigValidates: the example config loads and compiles, and
// its data_dir is the unit's StateDirectory, the one place the service
// may write.
func TestSystemdConfigValidates(t *testing.T) {
	cfg := validateConfig(t, systemdConfig, read(t, systemdConfig), nil)
	if !strings.HasSuffix(cfg.DataDir, "/var/lib/umbra") {
		t.Errorf("data_dir %q, want /var/lib/umbra (StateDirectory=umbra)", cfg.DataDir)
	}
}
