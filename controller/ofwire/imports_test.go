package ofwire_test

import (
	"os/exec"
	"strings"
	"testing"
)

// The codec stays a leaf below the controller (README "What it may
// import"): nothing that does I/O or logging on op25b's side, no etcd.
func TestImportRules(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go tool: %v", err)
	}
	out, err := exec.Command(goTool, "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	forbidden := []string{
		"github.com/op25b/op25b/controller", // exact: the session layer above
		"github.com/op25b/op25b/controller/cluster",
		"github.com/op25b/op25b/topology/store",
		"github.com/op25b/op25b/api",
		"github.com/op25b/op25b/controller/ofwire/ofwiretest", // test support only
		"log/slog",
	}
	deps := strings.Fields(string(out))
	for _, d := range deps {
		for _, f := range forbidden {
			if d == f {
				t.Errorf("ofwire depends on %s", d)
			}
		}
		if strings.HasPrefix(d, "go.etcd.io/") {
			t.Errorf("ofwire depends on %s", d)
		}
	}
}
