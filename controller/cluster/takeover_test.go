package cluster

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/op25b/op25b/internal/fakeswitch"
	"github.com/op25b/op25b/internal/testenv"
	"github.com/op25b/op25b/topology"
)

// fakeBridges starts n simulated bridges, each connected to every node.
func fakeBridges(t testing.TB, n int, nodes []*node) []*fakeswitch.Switch {
	t.Helper()
	var targets []string
	for _, nd := range nodes {
		targets = append(targets, strings.TrimPrefix(nd.addr, "tcp:"))
	}
	var out []*fakeswitch.Switch
	for i := range n {
		sw, err := fakeswitch.Start(fakeswitch.Config{DPID: topology.DPIDFromUint64(0xfa4e_0000 + uint64(i)), Controllers: targets,
			Reconnect: 100 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(sw.Close)
		out = append(out, sw)
	}
	return out
}

// fakeDoc registers the simulated bridges in policyDoc's document.
func fakeDoc(sws []*fakeswitch.Switch, real ...testenv.Bridge) *topology.Document {
	doc := policyDoc(time.Time{}, real...)
	for i, sw := range sws {
		doc.Bridges = append(doc.Bridges, topology.Bridge{DPID: sw.DPID(), Name: fmt.Sprintf("fake-%d", i), Pop: "tokyo-2"})
	}
	return doc
}

// switchView is what the switches themselves say: each one's master
// (controller address) and generation, and how many role requests it got.
type switchView struct {
	master map[topology.DPID]string
	gen    map[topology.DPID]uint64
	roles  map[topology.DPID]int
}

func viewSwitches(sws []*fakeswitch.Switch) switchView {
	v := switchView{master: map[topology.DPID]string{}, gen: map[topology.DPID]uint64{}, roles: map[topology.DPID]int{}}
	for _, sw := range sws {
		v.master[sw.DPID()], v.gen[sw.DPID()] = sw.Master()
		v.roles[sw.DPID()] = sw.Stats().RoleRequests
	}
	return v
}

// allMastered: every switch has a master and every node has settled
// (each bridge mastered by exactly one node, which applied rev).
func allMastered(t testing.TB, nodes []*node, sws []*fakeswitch.Switch, rev int64) bool {
	for _, sw := range sws {
		if m, _ := sw.Master(); m == "" {
			return false
		}
		owner := masterOf(t, nodes, sw.DPID())
		if owner == "" {
			return false
		}
		for _, n := range nodes {
			if n.id == owner {
				if rep, ok := ControllerSwitches(n.ctrl).Report(sw.DPID()); !ok || rep.AppliedRevision < rev {
					return false
				}
			}
		}
	}
	return true
}

// leaderIndex returns the index of the etcd member that leads.
func leaderIndex(t testing.TB, ec *testenv.EtcdCluster) (int, uint64) {
	t.Helper()
	for i, ep := range ec.Endpoints {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		st, err := ec.Client.Status(ctx, ep)
		cancel()
		if err == nil && st.Leader == st.Header.MemberId {
			return i, st.Header.MemberId
		}
	}
	t.Fatal("no etcd leader")
	return -1, 0
}

// TestNoTakeoverDuringEtcdLeaderChange: at the default lease TTL, moving
// etcd's leadership to another member (a 1 s-scale election) and then
// killing the leader (an election after the election timeout) changes no
// bridge's master or generation, and no replica sends a single role request:
// the switches, simulated and real, see nothing.
func TestNoTakeoverDuringEtcdLeaderChange(t *testing.T) {
	testenv.RequireOVS(t)
	ec := testenv.NewEtcdCluster(t, 3)
	var nodes []*node
	for i := 1; i <= 3; i++ {
		nodes = append(nodes, startNodeWith(t, fmt.Sprintf("op25b-%d", i), ec.Endpoints, nil)) // op25bd's defaults
	}
	sws := fakeBridges(t, 12, nodes)
	real := newBridges(t, 1, nodes)
	doc := fakeDoc(sws, real...)
	rev := putDoc(t, nodes[0].store, doc)
	testenv.Eventually(t, 60*time.Second, "every bridge mastered and applied", func() bool {
		return allMastered(t, nodes, sws, rev) && converged(t, nodes, real, doc, rev)
	})
	// OVS publishes controller roles in OVSDB every few seconds.
	testenv.Eventually(t, 30*time.Second, "Open vSwitch reports a master", func() bool {
		n := 0
		for _, role := range ovsRoles(t, real[0]) {
			if role == "master" {
				n++
			}
		}
		return n == 1
	})
	before := viewSwitches(sws)
	ovsBefore := fmt.Sprint(ovsRoles(t, real[0]))
	mastersBefore := map[string]map[topology.DPID]uint64{}
	for _, n := range nodes {
		mastersBefore[n.id] = n.replica.Masters()
	}
	unchanged := func(what string) {
		t.Helper()
		after := viewSwitches(sws)
		for dpid, m := range before.master {
			if after.master[dpid] != m || after.gen[dpid] != before.gen[dpid] {
				t.Errorf("%s: bridge %s master %s gen %d → %s gen %d", what, dpid, m, before.gen[dpid], after.master[dpid], after.gen[dpid])
			}
			if after.roles[dpid] != before.roles[dpid] {
				t.Errorf("%s: bridge %s got %d role requests", what, dpid, after.roles[dpid]-before.roles[dpid])
			}
		}
		if got := fmt.Sprint(ovsRoles(t, real[0])); got != ovsBefore {
			t.Errorf("%s: Open vSwitch roles %q → %q", what, ovsBefore, got)
		}
		for _, n := range nodes {
			if got := n.replica.Masters(); !maps.Equal(got, mastersBefore[n.id]) {
				t.Errorf("%s: %s masters %v → %v", what, n.id, mastersBefore[n.id], got)
			}
		}
	}
	settle := 3 * DefaultLeaseTTL // a lease wrongly lost would have moved bridges by then

	// 1. Leadership moved on purpose (etcdctl move-leader).
	old, _ := leaderIndex(t, ec)
	target := (old + 1) % len(ec.Endpoints)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	st, err := ec.Client.Status(ctx, ec.Endpoints[target])
	if err == nil {
		leaderCli, cerr := testenv.NewEtcdClient([]string{ec.Endpoints[old]})
		if cerr != nil {
			t.Fatal(cerr)
		}
		_, err = leaderCli.MoveLeader(ctx, st.Header.MemberId)
		leaderCli.Close()
	}
	cancel()
	if err != nil {
		t.Fatalf("move leader: %v", err)
	}
	if now, _ := leaderIndex(t, ec); now == old {
		t.Fatalf("leader still member %d after move-leader", old)
	}
	time.Sleep(settle)
	unchanged("after move-leader")

	// 2. The leader killed: the others elect a new one after the election
	// timeout (1–2 s with etcd's defaults), clients fail over.
	leader, _ := leaderIndex(t, ec)
	killed := time.Now()
	ec.StopMember(leader)
	ec.WaitServing(30 * time.Second)
	t.Logf("etcd served again %s after its leader was killed", time.Since(killed).Round(time.Millisecond))
	time.Sleep(settle)
	unchanged("after the leader was killed")
	ec.StartMember(leader)
	ec.WaitServing(30 * time.Second)
	time.Sleep(DefaultLeaseTTL)
	unchanged("after the old leader came back")
	for _, n := range nodes {
		if err := n.replica.Ready(); err != nil {
			t.Errorf("%s not ready: %v", n.id, err)
		}
	}
}

// TestTakeoverWithoutFlapping: after a master crashes (no goodbye: its lease
// lingers until the TTL, as with kill -9), each of its bridges changes
// master exactly once, within the default TTL plus a generous margin; the
// other bridges never change; and nothing moves afterwards.
func TestTakeoverWithoutFlapping(t *testing.T) {
	ec := testenv.NewEtcdCluster(t, 3)
	var nodes []*node
	for i := 1; i <= 3; i++ {
		nodes = append(nodes, startNodeWith(t, fmt.Sprintf("op25b-%d", i), ec.Endpoints, nil))
	}
	sws := fakeBridges(t, 24, nodes)
	doc := fakeDoc(sws)
	rev := putDoc(t, nodes[0].store, doc)
	testenv.Eventually(t, 60*time.Second, "every bridge mastered and applied", func() bool { return allMastered(t, nodes, sws, rev) })

	// Record every master change the switches see, from now on.
	var mu sync.Mutex
	changes := map[topology.DPID][]string{}
	last := viewSwitches(sws).master
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
			now := viewSwitches(sws).master
			mu.Lock()
			for dpid, m := range now {
				if m != last[dpid] {
					changes[dpid] = append(changes[dpid], m)
					last[dpid] = m
				}
			}
			mu.Unlock()
		}
	})
	defer func() { close(stop); wg.Wait() }()

	victim := nodes[0]
	victimAddr := strings.TrimPrefix(victim.addr, "tcp:")
	owned := map[topology.DPID]bool{}
	for dpid := range victim.replica.Masters() {
		owned[dpid] = true
	}
	if len(owned) == 0 {
		t.Fatal("the victim masters no bridge")
	}
	crashed := time.Now()
	victim.crash()
	testenv.Eventually(t, DefaultLeaseTTL+20*time.Second, "the victim's bridges taken over", func() bool {
		return allMastered(t, nodes[1:], sws, rev)
	})
	t.Logf("%d bridges taken over %s after the crash", len(owned), time.Since(crashed).Round(time.Millisecond))
	time.Sleep(3 * DefaultLeaseTTL)

	mu.Lock()
	defer mu.Unlock()
	for _, sw := range sws {
		got := changes[sw.DPID()]
		if !owned[sw.DPID()] {
			if len(got) > 0 {
				t.Errorf("bridge %s (not the victim's) changed master: %v", sw.DPID(), got)
			}
			continue
		}
		// The switch drops the victim's session at once ("" = no master),
		// then one survivor claims it: one change of master.
		var masters []string
		for _, m := range got {
			if m != "" {
				masters = append(masters, m)
			}
		}
		if len(masters) != 1 || masters[0] == victimAddr {
			t.Errorf("bridge %s: masters after the crash %v, want exactly one survivor", sw.DPID(), got)
		}
	}
}
