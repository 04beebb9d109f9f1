package archtest

import (
	"encoding/json"
	"io"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/op25b/op25b"

// rules: each of our packages (relative to the module) with the packages
// it must not link, directly or through another package. A pattern ending
// in "/..." is the package and everything below it; "std:NAME" is a
// standard-library package.
var rules = []struct {
	pkg    string
	forbid []string
	why    string
}{
	{"topology/store", []string{"go.etcd.io/etcd/server/...", "go.etcd.io/raft/...", "go.etcd.io/bbolt/..."},
		"the document in etcd is a client of etcd; the embedded server is internal/etcdembed"},
}

type goPackage struct {
	ImportPath string
	Deps       []string
}

// packages returns every package of the module (lab included) with the
// packages it links, from one `go list` run.
func packages(t *testing.T) map[string][]string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go tool: %v", err)
	}
	cmd := exec.Command(goTool, "list", "-json=ImportPath,Deps", module+"/...")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	pkgs := map[string][]string{}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var p goPackage
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("go list output: %v", err)
		}
		pkgs[strings.TrimPrefix(strings.TrimPrefix(p.ImportPath, module), "/")] = p.Deps
	}
	return pkgs
}

func matches(pattern, pkg string) bool {
	if base, ok := strings.CutSuffix(pattern, "/..."); ok {
		return pkg == base || strings.HasPrefix(pkg, base+"/")
	}
	return pkg == pattern
}

func TestImportRules(t *testing.T) {
	pkgs := packages(t)
	for _, r := range rules {
		deps, ok := pkgs[r.pkg]
		if !ok {
			t.Errorf("rule for %s: no such package", r.pkg)
			continue
		}
		for _, d := range deps {
			for _, f := range r.forbid {
				if matches(f, d) {
					t.Errorf("%s links %s (forbidden: %s)", r.pkg, d, r.why)
				}
			}
		}
	}
}
