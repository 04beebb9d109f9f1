package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestNoServerDependencies: op25bctl is a client. It must not link the
// etcd server, raft, bbolt, the etcd client, the OpenFlow codec, Prometheus
// or op25b's server packages (it did, through package api, at 25 MB).
// lint's validation comes from package topology, which is pure.
func TestNoServerDependencies(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	forbidden := []string{
		"go.etcd.io/etcd/server", "go.etcd.io/raft", "go.etcd.io/bbolt", "go.etcd.io/etcd/client",
		"github.com/netrack/openflow", "github.com/prometheus/", "google.golang.org/grpc",
		"github.com/op25b/op25b/api\n", "github.com/op25b/op25b/topology/store",
		"github.com/op25b/op25b/controller", "github.com/op25b/op25b/flows",
	}
	deps := string(out) + "\n"
	for _, f := range forbidden {
		if strings.Contains(deps, f) {
			t.Errorf("op25bctl links %s", strings.TrimSpace(f))
		}
	}
	for _, want := range []string{"github.com/op25b/op25b/client", "github.com/op25b/op25b/api/apitypes", "github.com/op25b/op25b/topology"} {
		if !strings.Contains(deps, want+"\n") {
			t.Errorf("op25bctl does not link %s", want)
		}
	}
}
