package controller

import (
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/netrack/openflow/ofp"

	"github.com/op25b/op25b/controller/ofwire"
	"github.com/op25b/op25b/flows"
	"github.com/op25b/op25b/internal/fakeswitch"
	"github.com/op25b/op25b/topology"
)

func sameFlowSet(got, want []flows.Flow) bool {
	render := func(fs []flows.Flow) []string {
		var out []string
		for _, f := range fs {
			out = append(out, fmt.Sprintf("%x %s", f.Cookie, flows.Render(ofwire.Canonical(f))))
		}
		slices.Sort(out)
		return out
	}
	return slices.Equal(render(got), render(want))
}

// A master whose flow monitor vouches that nothing changed plans a new
// desired set from the one it installed, without a dump; a foreign change
// on its way is still repaired; after the role changes, the next set is
// planned from a dump again (another master may have written meanwhile).
func TestPolicyChangesPlannedWithoutDump(t *testing.T) {
	rc := startController(t, Config{AuditInterval: time.Hour})
	dpid := topology.DPID("00000000c0de0001")
	sw, err := fakeswitch.Start(fakeswitch.Config{DPID: dpid, Controllers: []string{rc.addr}, Reconnect: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sw.Close)
	sets := [][]flows.Flow{
		append(pipelineFlows(), dropFlows(100, netip.MustParseAddr("10.7.0.0"))[:100]...),
		append(pipelineFlows(), dropFlows(120, netip.MustParseAddr("10.7.0.20"))[:120]...),
		pipelineFlows(),
	}
	rev := int64(1)
	apply := func(fs []flows.Flow, gen uint64) {
		t.Helper()
		rev++
		rc.SetDesired(Desired{DPID: dpid, Revision: rev, Flows: fs, Master: true, Generation: gen})
		rc.waitApplied(t, dpid, rev)
		waitFor(t, "the switch holds the desired set", func() bool { return sameFlowSet(sw.Flows(), fs) })
	}
	apply(sets[0], 1)
	if d := sw.Stats().Dumps; d != 1 {
		t.Fatalf("%d dumps after the first install, want 1", d)
	}
	apply(sets[1], 1)
	apply(sets[2], 1)
	if d := sw.Stats().Dumps; d != 1 {
		t.Fatalf("%d dumps after two policy changes, want still 1", d)
	}

	// A foreign delete and, at once, a new policy: whichever the worker
	// sees first, the switch ends up with exactly the new set.
	victim := sets[2][5]
	if err := sw.Apply(ofwire.FlowMod{Command: ofp.FlowDeleteStrict, Table: victim.Table, Priority: victim.Priority,
		Cookie: victim.Cookie, CookieMask: ^uint64(0), Match: victim.Match}); err != nil {
		t.Fatal(err)
	}
	apply(sets[0], 1)
	waitFor(t, "the foreign delete undone", func() bool { return sameFlowSet(sw.Flows(), sets[0]) })

	// Slave, then master again with a new generation: a dump first.
	rev++
	rc.SetDesired(Desired{DPID: dpid, Revision: rev, Flows: sets[0], Master: false, Generation: 2})
	waitFor(t, "slave", func() bool { return rc.status(dpid).Role == "slave" })
	dumps := sw.Stats().Dumps
	apply(sets[1], 3)
	if d := sw.Stats().Dumps; d != dumps+1 {
		t.Fatalf("%d dumps after becoming master again, want %d", d, dumps+1)
	}
}
