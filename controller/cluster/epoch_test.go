package cluster

import (
	"testing"
	"time"

	"github.com/op25b/op25b/controller"
	"github.com/op25b/op25b/internal/testenv"
)

func TestGenerationOrder(t *testing.T) {
	const older, newer = 1_700_000_000, 1_700_000_001
	if generation(older, 999_999) >= generation(newer, 2) {
		t.Fatal("a new etcd cluster's first claim must beat every claim of an older cluster")
	}
	if generation(older, 10) >= generation(older, 11) {
		t.Fatal("within one cluster generations follow revisions")
	}
	if g := generation(newer, 1<<40); int64(g) < 0 {
		t.Fatal("the top bit must stay clear: OVS compares generations as a signed difference")
	}
}

// TestRebuiltEtcdIsNotStale: a bridge mastered by a cluster whose etcd is
// later rebuilt from scratch (revisions start again near 1) must accept the
// new cluster's master. The switch remembers the old, larger generation
// for as long as ovs-vswitchd runs; without the epoch every claim of the new
// cluster would be refused as Stale and the bridge never updated again.
func TestRebuiltEtcdIsNotStale(t *testing.T) {
	testenv.RequireOVS(t)
	first := testenv.EmbeddedEtcd(t)
	a := startNode(t, "op25b-old", first.Endpoints, 3*time.Second)
	b := newBridges(t, 1, []*node{a})[0]
	doc := policyDoc(time.Time{}, b)
	var rev int64
	for range 20 { // push the old cluster's revisions well above the new one's
		doc.Bridges[0].Name = "churn-" + time.Now().Format("150405.000000")
		rev = putDoc(t, a.store, doc)
	}
	testenv.Eventually(t, 30*time.Second, "old cluster's master applied", func() bool {
		rep, ok := ControllerSwitches(a.ctrl).Report(b.DPID)
		return ok && rep.AppliedRevision >= rev
	})
	oldGen := a.replica.Masters()[b.DPID]
	a.crash()

	// A new cluster must start in a later second than the old one's epoch.
	for time.Now().Unix() <= int64(oldGen>>32) {
		time.Sleep(50 * time.Millisecond)
	}
	second := testenv.EmbeddedEtcd(t)
	n := startNode(t, "op25b-new", second.Endpoints, 3*time.Second)
	b.SetController(t, n.addr)
	doc.Bridges[0].Name = "after-rebuild"
	doc.Pools = doc.Pools[:1] // a visible change
	rev = putDoc(t, n.store, doc)
	testenv.Eventually(t, 30*time.Second, "new cluster's master applied its document", func() bool {
		rep, ok := ControllerSwitches(n.ctrl).Report(b.DPID)
		return ok && rep.AppliedRevision >= rev
	})
	if newGen := n.replica.Masters()[b.DPID]; newGen <= oldGen {
		t.Errorf("new generation %#x not above the old %#x", newGen, oldGen)
	}
	if n.sawEvent(controller.EventLostMastership, b.DPID) {
		t.Error("the switch refused the new cluster's master as stale")
	}
	if got := flowCount(t, b); got != expectedFlows(t, doc, b.DPID) {
		t.Errorf("bridge has %d op25b flows, want %d", got, expectedFlows(t, doc, b.DPID))
	}
}
