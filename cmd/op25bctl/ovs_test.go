package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/op25b/op25b/internal/testenv"
)

// TestOVSAttachDetach runs `op25bctl ovs` against the local Open vSwitch, as
// an operator does on a PoP host; internal/ovsattach has the finer cases.
func TestOVSAttachDetach(t *testing.T) {
	br := testenv.NewBridge(t, "")
	c := ctl{t: t, bin: filepath.Join(buildBinaries(t), "op25bctl")}
	targets := "tcp:127.0.0.1:16653,tcp:127.0.0.1:16654"

	c.ok("ovs", "attach", br.Name, "--controllers", targets)
	c.ok("ovs", "attach", br.Name, "--controllers", targets) // idempotent
	got := strings.TrimSpace(testenv.Run(t, "ovs-vsctl", "get-controller", br.Name))
	if got != "tcp:127.0.0.1:16653\ntcp:127.0.0.1:16654" {
		t.Fatalf("controllers after attach = %q", got)
	}
	if mode := strings.TrimSpace(testenv.Run(t, "ovs-vsctl", "get-fail-mode", br.Name)); mode != "secure" {
		t.Fatalf("fail-mode after attach = %q, want secure", mode)
	}

	c.ok("ovs", "detach", br.Name)
	if got := strings.TrimSpace(testenv.Run(t, "ovs-vsctl", "get-controller", br.Name)); got != "" {
		t.Fatalf("controllers after detach = %q, want none", got)
	}
	if mode := strings.TrimSpace(testenv.Run(t, "ovs-vsctl", "get-fail-mode", br.Name)); mode != "secure" {
		t.Fatalf("fail-mode after detach = %q, want secure (detaching must not open the hole)", mode)
	}

	c.fails(1, "bridge not found", "ovs", "attach", "op25b-nosuch", "--controllers", targets)
	c.fails(2, "--controllers is required", "ovs", "attach", br.Name)
	c.fails(2, "usage", "ovs", "reattach", br.Name)
}
