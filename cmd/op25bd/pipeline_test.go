package main

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/op25b/op25b/internal/testenv"
)

// TestPipelineInFrontOfExistingTables: with --first-table 10 --continue
// goto:20, op25b lives in tables 10..14 behind an operator's table 0 and
// hands what it forwards to the operator's table 20. The operator's own
// flows (no op25b cookie) stay untouched, SMTP from the dynamic pool is
// dropped, and everything else reaches table 20.
func TestPipelineInFrontOfExistingTables(t *testing.T) {
	testenv.RequireOVS(t)
	d := startDaemon(t, "op25b-pipe", "--data-dir", t.TempDir(), "--first-table", "10", "--continue", "goto:20")
	br := testenv.NewBridge(t, "")
	br.AddPort(t, 1)
	br.AddPort(t, 2)
	// OVS flushes a bridge's flows when it gets its first controller
	// (`op25bctl ovs attach` saves and restores them; here the operator's
	// flows simply come after).
	br.SetController(t, "tcp:"+d.openflow)
	// The operator's pipeline: table 0 sends everything to op25b, table 20
	// outputs to port 2 (a visible, distinct verdict).
	br.Ofctl(t, "add-flow", br.Name, "table=0,priority=0,cookie=0x1,actions=goto_table:10")
	br.Ofctl(t, "add-flow", br.Name, "table=20,priority=0,cookie=0x1,actions=output:2")

	doc := fmt.Sprintf(`{"pools":[{"name":"dyn","prefix":"10.1.0.0/16","kind":"dynamic","service":"ftth"}],
 "relays":[{"name":"msa","prefix":"192.0.2.25/32"}],"destinations":[],
 "services":[{"name":"ftth","phases":[{"block":"all","relays":true}]}],
 "bridges":[{"dpid":"%s","name":"sub-a","pop":"tokyo-1"}]}`, br.DPID)
	rev := putConfig(t, d.api, doc)
	testenv.Eventually(t, 60*time.Second, "bridge applied", func() bool {
		s, err := getStatus(d.api)
		return err == nil && len(s.Bridges) == 1 && s.Bridges[0].AppliedRevision >= rev
	})

	owned := br.OwnedFlows(t)
	if strings.Contains(owned, "table=0,") || strings.Contains(owned, "table=0 ") || !strings.Contains(owned, "table=10") {
		t.Fatalf("op25b flows not confined to tables 10..14:\n%s", owned)
	}
	all := br.Ofctl(t, "dump-flows", br.Name)
	for _, operator := range []string{"goto_table:10", "actions=output:2"} {
		if !strings.Contains(all, operator) {
			t.Fatalf("operator flow %q gone:\n%s", operator, all)
		}
	}
	for _, c := range []struct {
		packet string
		drop   bool
	}{
		{"tcp,in_port=1,nw_src=10.1.2.3,nw_dst=203.0.113.25,tp_dst=25", true},
		{"tcp,in_port=1,nw_src=10.1.2.3,nw_dst=192.0.2.25,tp_dst=25", false},
		{"tcp,in_port=1,nw_src=10.1.2.3,nw_dst=203.0.113.25,tp_dst=587", false},
	} {
		if got := br.Trace(t, c.packet); (got == "drop") != c.drop {
			t.Errorf("trace %s = %q, want dropped %v", c.packet, got, c.drop)
		}
	}
	// Forwarded packets went through the operator's table 20 (OVS's trace
	// lists each table it visits as " 20. ...").
	full := testenv.Run(t, "ovs-appctl", "ofproto/trace", br.Name, "tcp,in_port=1,nw_src=10.1.2.3,nw_dst=203.0.113.25,tp_dst=587")
	if !regexp.MustCompile(`(?m)^\s*20\. `).MatchString(full) {
		t.Errorf("forwarded packet did not reach table 20:\n%s", full)
	}
}
