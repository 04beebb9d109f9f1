package cluster

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/op25b/op25b/controller"
	"github.com/op25b/op25b/internal/testenv"
	"github.com/op25b/op25b/topology"
	"github.com/op25b/op25b/topology/store"
)

// A real partition of a master from etcd, as issue 4 asks: "a partitioned
// old master (its etcd access cut) is refused by the switch".
//
// Three replicas on an embedded etcd, each talking to etcd through its own
// loopback proxy; two netdev bridges connected to all three. The master of
// bridge 0 has its proxy blackholed (its etcd connections go silent, new
// ones are accepted and never answered) while its OpenFlow sessions stay up.
// A guard goroutine polls OVS all along: SMTP from a dynamic pool to a
// blocked destination is dropped at every poll, no op25b flow disappears
// and none is deleted and re-added (a flow's duration never goes back).
//
// Checked: another replica claims the lock with a larger generation and
// reconciles without a single flow-mod; the old master steps down when its
// lease cannot be renewed and OVS lists its connection as slave; a policy
// change written during the partition is applied by the new master; the old
// master, acting on its stale view (old document, old generation, MASTER),
// is refused by the switch (OFPRRFC_STALE) and changes nothing; after the
// partition heals the old replica rejoins and takes its bridge back only
// with a new, larger generation, and the latest policy stays enforced.
//
// Two kinds of partition: a blackhole (silence: only timeouts tell) and a
// refusal (connections closed and refused: errors at once).
func TestPartitionedMasterOnOVS(t *testing.T) {
	testenv.RequireOVS(t)
	for _, mode := range []testenv.ProxyMode{testenv.ProxyBlackhole, testenv.ProxyRefuse} {
		t.Run(mode.String(), func(t *testing.T) { testPartitionedMaster(t, mode) })
	}
}

func testPartitionedMaster(t *testing.T, mode testenv.ProxyMode) {
	etcd := testenv.EmbeddedEtcd(t)
	u, err := url.Parse(etcd.Endpoints[0])
	if err != nil {
		t.Fatal(err)
	}
	const ttl = 3 * time.Second
	ids := []string{"op25b-1", "op25b-2", "op25b-3"}
	var nodes []*node
	proxies := map[string]*testenv.TCPProxy{}
	for _, id := range ids {
		p := testenv.NewTCPProxy(t, u.Host)
		proxies[id] = p
		nodes = append(nodes, startNode(t, id, []string{"http://" + p.Addr}, ttl))
	}
	bridges := newBridges(t, 2, nodes)
	// The test writes policy straight to etcd, never through a proxy.
	writer := store.New(etcd.Client, store.DefaultPrefix, testLogger(t))
	doc := policyDoc(time.Time{}, bridges...)
	rev := putDoc(t, writer, doc)
	// The cluster compares its policy snapshot with the store's commit
	// record before claiming a bridge; check it names the right key.
	if kv, err := etcd.Client.Get(context.Background(), store.DefaultPrefix+store.DocumentKey); err != nil || len(kv.Kvs) != 1 || kv.Kvs[0].ModRevision != rev {
		t.Fatalf("%s%s is not the store's commit record at revision %d: %v %v", store.DefaultPrefix, store.DocumentKey, rev, kv, err)
	}
	testenv.Eventually(t, 60*time.Second, "all bridges enforced by one master each", func() bool {
		return converged(t, nodes, bridges, doc, rev)
	})

	b0 := bridges[0]
	victimID := masterOf(t, nodes, b0.DPID)
	var victim *node
	var rest []*node
	for _, n := range nodes {
		if n.id == victimID {
			victim = n
		} else {
			rest = append(rest, n)
		}
	}
	oldGen := victim.replica.Masters()[b0.DPID]
	victimBridges := victim.replica.Masters()
	t.Logf("victim %s masters %v; bridge 0 generation %d", victim.id, victimBridges, oldGen)

	blocked := smtpFrom("10.1.2.3", "198.51.100.7")
	g := startGuard(t, bridges, blocked)
	defer g.stop()

	// Partition: the victim's etcd traffic vanishes or is refused; its
	// OpenFlow sessions (straight to OVS, not through the proxy) are
	// untouched.
	cut := time.Now()
	proxies[victim.id].SetMode(mode)

	var newMaster *node
	testenv.Eventually(t, ttl+30*time.Second, "a surviving replica masters and reconciles bridge 0", func() bool {
		id := masterOf(t, rest, b0.DPID)
		for _, n := range rest {
			if n.id == id {
				newMaster = n
			}
		}
		if newMaster == nil {
			return false
		}
		_, ok := newMaster.firstEventAfter(controller.EventReconciled, b0.DPID, cut)
		return ok
	})
	newGen := newMaster.replica.Masters()[b0.DPID]
	t.Logf("partition: %s took bridge 0 over with generation %d after %s", newMaster.id, newGen, time.Since(cut).Round(time.Millisecond))
	if newGen <= oldGen {
		t.Errorf("new master's generation %d not above the partitioned master's %d", newGen, oldGen)
	}
	for _, e := range newMaster.eventsAfter(controller.EventReconciled, b0.DPID, cut) {
		if e.Changes != 0 {
			t.Errorf("takeover reconcile of %s sent %d flow-mods; the flows were already right", b0.DPID, e.Changes)
		}
	}
	testenv.Eventually(t, ttl+30*time.Second, "every bridge of the victim taken over", func() bool {
		return converged(t, rest, bridges, doc, rev)
	})

	// The victim notices it cannot renew its lease and steps down; the
	// switch agrees: OVS lists its connection as slave and the new master's
	// as master.
	testenv.Eventually(t, ttl+30*time.Second, "partitioned replica stepped down and not ready", func() bool {
		return len(victim.replica.Masters()) == 0 && victim.replica.Ready() != nil
	})
	testenv.Eventually(t, 30*time.Second, "OVS: victim slave, new master master on bridge 0", func() bool {
		roles := ovsRoles(t, b0)
		return roles[strings.TrimPrefix(victim.addr, "tcp:")] == "slave" &&
			roles[strings.TrimPrefix(newMaster.addr, "tcp:")] == "master"
	})
	// The cluster hands SLAVE to the controller asynchronously (SetDesired);
	// the session sends the role request a moment later, so the victim's
	// own view may trail OVS's (which already demoted it when the new master
	// claimed): wait for it rather than sample it.
	testenv.Eventually(t, 10*time.Second, "victim's own view of bridge 0: connected slave", func() bool {
		st := controllerStatus(victim, b0.DPID)
		return st.Connected && st.Role == "slave"
	})
	if victim.sawEventAfter(controller.EventDisconnected, b0.DPID, cut) {
		t.Errorf("the victim's OpenFlow session to bridge 0 dropped; the partition was meant to cut etcd only")
	}
	naturalStale := victim.sawEventAfter(controller.EventLostMastership, b0.DPID, cut)
	t.Logf("victim stepped down; its SLAVE request refused as stale (new master claimed first): %v", naturalStale)

	// A policy change during the partition: a new dynamic pool.
	doc2 := doc.Clone()
	doc2.Pools = append(doc2.Pools, topology.Pool{Name: "osaka-dyn", Prefix: "10.2.0.0/16", Kind: topology.KindDynamic, Service: "ftth"})
	rev2 := putDoc(t, writer, doc2)
	testenv.Eventually(t, 30*time.Second, "new policy applied by the surviving masters", func() bool {
		return converged(t, rest, bridges, doc2, rev2)
	})
	newPool := smtpFrom("10.2.0.9", "198.51.100.7")
	for _, b := range bridges {
		if got := b.Trace(t, newPool); got != "drop" {
			t.Fatalf("%s: new pool not enforced: %s", b.Name, got)
		}
	}
	g.mustDrop(newPool)

	// The old master acting on its stale view, as one that has not noticed
	// the partition would: the old document (without the new pool, so
	// obeying it would revert the change) with its old generation, as
	// MASTER. The switch must refuse it (OFPRRFC_STALE) and change nothing.
	stale := time.Now()
	oldFlows, err := DefaultCompile(doc, b0.DPID, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	victim.ctrl.SetDesired(controller.Desired{DPID: b0.DPID, Revision: rev, Flows: oldFlows, Master: true, Generation: oldGen})
	testenv.Eventually(t, 30*time.Second, "the old master's stale MASTER request refused by the switch", func() bool {
		return victim.sawEventAfter(controller.EventLostMastership, b0.DPID, stale)
	})
	for _, e := range victim.eventsAfter(controller.EventLostMastership, b0.DPID, stale) {
		if !strings.Contains(fmt.Sprint(e.Err), "STALE") && !strings.Contains(strings.ToLower(fmt.Sprint(e.Err)), "stale") {
			t.Errorf("old master refused, but not as stale: %v", e.Err)
		}
	}
	if victim.sawEventAfter(controller.EventReconciled, b0.DPID, stale) {
		t.Errorf("the switch let the partitioned old master reconcile")
	}
	// Give a wrong reaction time to happen: the guard keeps checking that the
	// new pool is dropped and no flow is removed.
	time.Sleep(2 * ttl)
	if got := flowCount(t, b0); got != expectedFlows(t, doc2, b0.DPID) {
		t.Errorf("bridge 0 has %d op25b flows, the new policy has %d", got, expectedFlows(t, doc2, b0.DPID))
	}

	// Heal. The victim rejoins with a new lease; by rendezvous hashing it is
	// again the assignee of its bridges, so it takes them back, which it may
	// only do with a new lock and so a larger generation.
	healed := time.Now()
	g.healed(victim, oldGen, newGen, b0.DPID)
	proxies[victim.id].SetMode(testenv.ProxyForward)
	testenv.Eventually(t, 60*time.Second, "victim rejoined and ready", func() bool {
		return victim.replica.Ready() == nil
	})
	testenv.Eventually(t, 60*time.Second, "masters as rendezvous hashing says, latest policy applied", func() bool {
		for _, b := range bridges {
			if masterOf(t, nodes, b.DPID) != Assign(b.DPID, ids) {
				return false
			}
		}
		return converged(t, nodes, bridges, doc2, rev2)
	})
	t.Logf("healed: masters back as assigned after %s", time.Since(healed).Round(time.Millisecond))
	if gen, ok := victim.replica.Masters()[b0.DPID]; !ok || gen <= newGen {
		t.Errorf("victim masters bridge 0 after healing with generation %d (held=%v); want above %d", gen, ok, newGen)
	}
	testenv.Eventually(t, 30*time.Second, "OVS: victim master again on bridge 0", func() bool {
		return ovsRoles(t, b0)[strings.TrimPrefix(victim.addr, "tcp:")] == "master"
	})
	for _, e := range victim.eventsAfter(controller.EventReconciled, b0.DPID, healed) {
		if e.Revision < rev2 {
			t.Errorf("after healing the victim reconciled bridge 0 to the old revision %d", e.Revision)
		}
	}
	for _, b := range bridges {
		for _, p := range []string{blocked, newPool} {
			if got := b.Trace(t, p); got != "drop" {
				t.Errorf("%s: %s not dropped after healing: %s", b.Name, p, got)
			}
		}
	}
	g.stop()
	g.report(t)
}

func (n *node) eventsAfter(kind controller.EventKind, dpid topology.DPID, t time.Time) []timedEvent {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []timedEvent
	for _, e := range n.events {
		if e.Kind == kind && e.DPID == dpid && e.at.After(t) {
			out = append(out, e)
		}
	}
	return out
}

func (n *node) sawEventAfter(kind controller.EventKind, dpid topology.DPID, t time.Time) bool {
	_, ok := n.firstEventAfter(kind, dpid, t)
	return ok
}

func controllerStatus(n *node, dpid topology.DPID) controller.BridgeStatus {
	for _, st := range n.ctrl.Status() {
		if st.DPID == dpid {
			return st
		}
	}
	return controller.BridgeStatus{}
}

// ovsRoles is OVS's own view of its controller connections for b: target
// ("127.0.0.1:PORT") → role ("master", "slave", "other"), from the
// Controller table's status columns.
func ovsRoles(t testing.TB, b testenv.Bridge) map[string]string {
	t.Helper()
	out, err := testenv.RunErr("ovs-vsctl", "--timeout=10", "get", "bridge", b.Name, "controller")
	if err != nil {
		t.Fatalf("controllers of %s: %v\n%s", b.Name, err, out)
	}
	roles := map[string]string{}
	for _, uuid := range strings.FieldsFunc(strings.Trim(strings.TrimSpace(out), "[]"), func(r rune) bool { return r == ',' || r == ' ' }) {
		o, err := testenv.RunErr("ovs-vsctl", "--timeout=10", "--if-exists", "get", "controller", uuid, "target", "role")
		if err != nil {
			continue // a row being replaced
		}
		f := strings.Fields(o)
		if len(f) != 2 {
			continue
		}
		target, _ := strconv.Unquote(f[0])
		roles[strings.TrimPrefix(target, "tcp:")] = f[1]
	}
	return roles
}

// guard polls OVS from its own goroutine while the test moves mastership
// around, and records every moment the bridges stopped enforcing: a packet
// that must be dropped was not, an op25b flow disappeared, or a flow's
// duration went back (deleted and re-added). It also checks that, once the
// partition has healed, the old master never claims its old generation.
type guard struct {
	bridges []testenv.Bridge
	cancel  context.CancelFunc
	done    chan struct{}
	once    sync.Once

	mu       sync.Mutex
	drop     []string
	polls    int
	problems []string
	victim   *node
	oldGen   uint64
	newGen   uint64
	dpid     topology.DPID
}

func startGuard(t testing.TB, bridges []testenv.Bridge, mustDrop ...string) *guard {
	ctx, cancel := context.WithCancel(context.Background())
	g := &guard{bridges: bridges, cancel: cancel, done: make(chan struct{}), drop: mustDrop}
	go g.run(ctx)
	t.Cleanup(g.stop)
	return g
}

func (g *guard) mustDrop(packet string) {
	g.mu.Lock()
	g.drop = append(g.drop, packet)
	g.mu.Unlock()
}

func (g *guard) healed(victim *node, oldGen, newGen uint64, dpid topology.DPID) {
	g.mu.Lock()
	g.victim, g.oldGen, g.newGen, g.dpid = victim, oldGen, newGen, dpid
	g.mu.Unlock()
}

func (g *guard) stop() {
	g.once.Do(func() {
		g.cancel()
		<-g.done
	})
}

func (g *guard) problem(format string, args ...any) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.problems) < 20 {
		g.problems = append(g.problems, fmt.Sprintf(format, args...))
	}
}

func (g *guard) report(t testing.TB) {
	t.Helper()
	g.mu.Lock()
	defer g.mu.Unlock()
	t.Logf("guard: %d polls of every bridge", g.polls)
	if g.polls < 5 {
		t.Errorf("guard polled only %d times", g.polls)
	}
	for _, p := range g.problems {
		t.Error(p)
	}
}

func (g *guard) run(ctx context.Context) {
	defer close(g.done)
	// bridge → flow (cookie, table, priority, match) → last duration seen
	seen := map[string]map[string]float64{}
	for ctx.Err() == nil {
		g.mu.Lock()
		drop := append([]string(nil), g.drop...)
		victim, oldGen, newGen, dpid := g.victim, g.oldGen, g.newGen, g.dpid
		g.mu.Unlock()
		for _, b := range g.bridges {
			for _, p := range drop {
				out, err := testenv.RunErr("ovs-appctl", "ofproto/trace", b.Name, p)
				if ctx.Err() != nil {
					return
				}
				if err != nil {
					g.problem("trace %s: %v", b.Name, err)
					continue
				}
				if got := traceActions(out); got != "drop" {
					g.problem("%s at %s: %s not dropped: %s", b.Name, time.Now().Format("15:04:05.000"), p, got)
				}
			}
			flowsNow, err := flowDurations(b)
			if ctx.Err() != nil {
				return
			}
			if err != nil {
				g.problem("dump-flows %s: %v", b.Name, err)
				continue
			}
			prev := seen[b.Name]
			for k, d := range prev {
				now, ok := flowsNow[k]
				switch {
				case !ok:
					g.problem("%s at %s: flow removed: %s", b.Name, time.Now().Format("15:04:05.000"), k)
				case now+0.001 < d:
					g.problem("%s at %s: flow deleted and re-added (duration %.3fs after %.3fs): %s", b.Name, time.Now().Format("15:04:05.000"), now, d, k)
				}
			}
			seen[b.Name] = flowsNow
		}
		if victim != nil {
			if gen, ok := victim.replica.Masters()[dpid]; ok && (gen == oldGen || gen <= newGen) {
				g.problem("after healing the old master holds %s with generation %d (old %d, partition-time %d)", dpid, gen, oldGen, newGen)
			}
		}
		g.mu.Lock()
		g.polls++
		g.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func traceActions(out string) string {
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "Datapath actions:") {
			return strings.TrimSpace(strings.TrimPrefix(line, "Datapath actions:"))
		}
	}
	return "(no datapath actions)"
}

// flowDurations maps every op25b flow of b, by cookie, table, priority and
// match (not actions: a modify keeps the entry), to its duration in seconds.
func flowDurations(b testenv.Bridge) (map[string]float64, error) {
	out, err := testenv.RunErr("ovs-ofctl", "-O", "OpenFlow13", "dump-flows", b.Name, "cookie=0x25b0000000000000/0xffff000000000000")
	if err != nil {
		return nil, fmt.Errorf("%w: %s", err, out)
	}
	m := map[string]float64{}
	for _, l := range strings.Split(out, "\n") {
		l = strings.TrimSpace(l)
		if !strings.HasPrefix(l, "cookie=") {
			continue
		}
		var dur float64
		var key []string
		for _, f := range strings.Split(strings.SplitN(l, " actions=", 2)[0], ", ") {
			f = strings.TrimSpace(f)
			if v, ok := strings.CutPrefix(f, "duration="); ok {
				dur, _ = strconv.ParseFloat(strings.TrimSuffix(v, "s"), 64)
				continue
			}
			if name, _, _ := strings.Cut(f, "="); name == "n_packets" || name == "n_bytes" || name == "idle_age" || name == "hard_age" {
				continue
			}
			key = append(key, f)
		}
		m[strings.Join(key, ", ")] = dur
	}
	return m, nil
}
