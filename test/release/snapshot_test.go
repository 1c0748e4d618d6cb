package releasetest

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// repoRoot is the module's root directory (two levels up from here).
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// git runs git in dir with a fixed identity and dates, so snapshots of the
// same tree are the same commit.
func git(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"GIT_AUTHOR_NAME=umbra test", "GIT_AUTHOR_EMAIL=test@umbra.invalid", "GIT_AUTHOR_DATE=2026-01-02T03:04:05Z",
		"GIT_COMMITTER_NAME=umbra test", "GIT_COMMITTER_EMAIL=test@umbra.invalid", "GIT_COMMITTER_DATE=2026-01-02T03:04:05Z",
		"GIT_CONFIG_NOSYSTEM=1", "HOME="+dir)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("git %s in %s: %v\n%s", strings.Join(args, " "), dir, err, errb.String())
	}
	return strings.TrimSpace(out.String())
}

// snapshot commits the working tree's files (tracked and untracked, less
// ignored ones) into a fresh repository under a new temporary directory
// and returns its path. The snapshot is what a clone of a commit of that
// tree would hold.
func snapshot(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git is not installed: cannot make a checkout to build from")
	}
	src := repoRoot(t)
	if _, err := os.Stat(filepath.Join(src, ".git")); err != nil {
		t.Skipf("%s is not a git checkout: the release build records the commit", src)
	}
	files := git(t, src, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
	dst := filepath.Join(t.TempDir(), "umbra")
	for _, f := range strings.Split(files, "\x00") {
		if f == "" {
			continue
		}
		if err := copyFile(filepath.Join(src, f), filepath.Join(dst, f)); err != nil {
			if os.IsNotExist(err) {
				continue // deleted in the working tree, not yet in the index
			}
			t.Fatal(err)
		}
	}
	git(t, dst, "init", "-q", "-b", "main")
	git(t, dst, "add", "-A")
	git(t, dst, "commit", "-q", "-m", "snapshot")
	return dst
}

// clone clones repo to a new temporary directory (another path, the same
// commit).
func clone(t *testing.T, repo string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "elsewhere", "umbra")
	git(t, filepath.Dir(repo), "clone", "-q", repo, dst)
	return dst
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return err
	}
	if fi.IsDir() {
		return nil // a submodule or nested repository: not part of the build
	}
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		return err
	}
	out, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, fi.Mode().Perm())
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// run runs name in dir and returns its standard output, failing the test
// with the standard error otherwise.
func run(t *testing.T, dir string, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s in %s: %v\n%s%s", name, strings.Join(args, " "), dir, err, out.String(), errb.String())
	}
	return out.String()
}
