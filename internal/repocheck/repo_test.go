package repocheck

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// repoRoot is the directory holding go.mod, above this package.
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test directory")
		}
		dir = parent
	}
}

// trackedFiles lists the repository's files with one of the suffixes,
// relative to root: git's index when there is one, else a walk that skips
// build outputs.
func trackedFiles(t *testing.T, root string, suffixes ...string) []string {
	t.Helper()
	var all []string
	if out, err := exec.Command("git", "-C", root, "ls-files", "-z").Output(); err == nil {
		for _, f := range strings.Split(string(out), "\x00") {
			if f != "" {
				all = append(all, f)
			}
		}
	} else {
		err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(root, path)
			if d.IsDir() {
				switch d.Name() {
				case ".git", "bin", "op25b-data", "__pycache__":
					return filepath.SkipDir
				}
				return nil
			}
			all = append(all, filepath.ToSlash(rel))
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	var out []string
	for _, f := range all {
		for _, s := range suffixes {
			if strings.HasSuffix(f, s) {
				if _, err := os.Stat(filepath.Join(root, f)); err == nil { // deleted but not yet staged
					out = append(out, f)
				}
				break
			}
		}
	}
	return out
}
