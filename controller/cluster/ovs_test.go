package cluster

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/op25b/op25b/controller"
	"github.com/op25b/op25b/internal/testenv"
	"github.com/op25b/op25b/topology"
	"github.com/op25b/op25b/topology/store"
)

// node is one replica as op25bd assembles it (store + cache + controller +
// cluster), without the API, on a real etcd and real OVS bridges.
type node struct {
	id      string
	addr    string // OpenFlow listener, "tcp:127.0.0.1:PORT" form for OVS
	client  *clientv3.Client
	store   *store.Store
	ctrl    *controller.Controller
	replica *Replica

	mu     sync.Mutex
	events []timedEvent

	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once
}

func startNode(t testing.TB, id string, endpoints []string, ttl time.Duration) *node {
	t.Helper()
	return startNodeWith(t, id, endpoints, func(c *Config) { c.LeaseTTL, c.EtcdTimeout, c.Resync = ttl, time.Second, time.Second })
}

// startNodeWith starts a node whose cluster configuration tune adjusts
// (nothing: op25bd's defaults).
func startNodeWith(t testing.TB, id string, endpoints []string, tune func(*Config)) *node {
	t.Helper()
	cli, err := testenv.NewEtcdClient(endpoints)
	if err != nil {
		t.Fatal(err)
	}
	log := testLogger(t).With("replica", id)
	n := &node{id: id, client: cli, store: store.New(cli, store.DefaultPrefix, log)}
	cache := store.NewCache(n.store, log)
	n.ctrl = controller.New(controller.Config{
		Logger:        log,
		AuditInterval: time.Hour, // audits are the controller's business; keep them out of the way
		Events: func(e controller.Event) {
			n.mu.Lock()
			n.events = append(n.events, timedEvent{e, time.Now()})
			n.mu.Unlock()
			if n.replica != nil {
				n.replica.ControllerEvent(e)
			}
		},
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	n.addr = "tcp:" + ln.Addr().String()
	cfg := Config{
		NodeID: id, Client: cli, Prefix: store.DefaultPrefix,
		Switches: ControllerSwitches(n.ctrl), Policy: CachePolicy(cache), Compile: DefaultCompile,
		Records: StoreRecords(n.store, store.ReplicaInfo{ID: id, OpenFlowAddr: ln.Addr().String(), Started: time.Now()}),
		Logger:  log,
	}
	if tune != nil {
		tune(&cfg)
	}
	n.replica, err = New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	n.cancel = cancel
	n.wg.Add(3)
	go func() { defer n.wg.Done(); _ = cache.Run(ctx) }()
	go func() { defer n.wg.Done(); _ = n.ctrl.Serve(ctx, ln) }()
	go func() { defer n.wg.Done(); _ = n.replica.Run(ctx) }()
	t.Cleanup(n.stop)
	return n
}

// stop is a graceful shutdown (mastership released at once).
func (n *node) stop() {
	n.once.Do(func() {
		n.cancel()
		n.wg.Wait()
		_ = n.client.Close()
	})
}

type timedEvent struct {
	controller.Event
	at time.Time
}

// firstEventAfter returns when the first event of kind for dpid happened
// after t.
func (n *node) firstEventAfter(kind controller.EventKind, dpid topology.DPID, t time.Time) (time.Time, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, e := range n.events {
		if e.Kind == kind && e.DPID == dpid && e.at.After(t) {
			return e.at, true
		}
	}
	return time.Time{}, false
}

// crash loses the node without any goodbye: its etcd client dies first, so
// its lease lingers until the TTL, as with kill -9.
func (n *node) crash() {
	n.once.Do(func() {
		_ = n.client.Close()
		n.cancel()
		n.wg.Wait()
	})
}

func (n *node) sawEvent(kind controller.EventKind, dpid topology.DPID) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, e := range n.events {
		if e.Kind == kind && e.DPID == dpid {
			return true
		}
	}
	return false
}

// policyDoc blocks SMTP from 10.1.0.0/16 to the "mobile" set; from `at`
// on (if set) to everything.
func policyDoc(at time.Time, bridges ...testenv.Bridge) *topology.Document {
	phases := []topology.Phase{{Block: topology.Block{Sets: []string{"mobile"}}}}
	if !at.IsZero() {
		phases = append(phases, topology.Phase{From: at.UTC().Format(time.RFC3339), Block: topology.Block{All: true}})
	}
	doc := &topology.Document{
		Pools:        []topology.Pool{{Name: "tokyo-dyn", Prefix: "10.1.0.0/16", Kind: topology.KindDynamic, Service: "ftth"}},
		Relays:       []topology.Relay{{Name: "msa", Prefix: "192.0.2.25/32"}},
		Destinations: []topology.DestinationSet{{Name: "mobile", Prefixes: []string{"198.51.100.0/24"}}},
		Services:     []topology.Service{{Name: "ftth", Phases: phases}},
	}
	for i, b := range bridges {
		doc.Bridges = append(doc.Bridges, topology.Bridge{DPID: b.DPID, Name: fmt.Sprintf("sub-%d", i), Pop: "tokyo-1"})
	}
	return doc
}

func putDoc(t testing.TB, s *store.Store, doc *topology.Document) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rev, err := s.Replace(ctx, doc, store.WriteOptions{Who: "test"})
	if err != nil {
		t.Fatalf("store document: %v", err)
	}
	return rev
}

func newBridges(t testing.TB, n int, nodes []*node) []testenv.Bridge {
	var out []testenv.Bridge
	var targets []string
	for _, nd := range nodes {
		targets = append(targets, nd.addr)
	}
	for i := 0; i < n; i++ {
		b := testenv.NewBridge(t, topology.DPID(fmt.Sprintf("00000000c1a5%04x", i+1)))
		b.AddPort(t, 1)
		b.AddPort(t, 2)
		b.SetController(t, targets...)
		out = append(out, b)
	}
	return out
}

func flowCount(t testing.TB, b testenv.Bridge) int {
	s := b.OwnedFlows(t)
	if s == "" {
		return 0
	}
	return strings.Count(s, "\n") + 1
}

func expectedFlows(t testing.TB, doc *topology.Document, dpid topology.DPID) int {
	fl, err := DefaultCompile(doc, dpid, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return len(fl)
}

// masterOf returns which node's replica masters dpid, "" if none, and fails
// on two.
func masterOf(t testing.TB, nodes []*node, dpid topology.DPID) string {
	who := ""
	for _, n := range nodes {
		if _, ok := n.replica.Masters()[dpid]; ok {
			if who != "" {
				t.Fatalf("bridge %s mastered by %s and %s", dpid, who, n.id)
			}
			who = n.id
		}
	}
	return who
}

// converged: every bridge has one master, which applied rev with the
// expected number of flows on the switch.
func converged(t testing.TB, nodes []*node, bridges []testenv.Bridge, doc *topology.Document, rev int64) bool {
	for _, b := range bridges {
		m := masterOf(t, nodes, b.DPID)
		if m == "" {
			return false
		}
		for _, n := range nodes {
			if n.id != m {
				continue
			}
			rep, ok := ControllerSwitches(n.ctrl).Report(b.DPID)
			if !ok || rep.AppliedRevision < rev {
				return false
			}
		}
		if flowCount(t, b) != expectedFlows(t, doc, b.DPID) {
			return false
		}
	}
	return true
}

func smtpFrom(src, dst string) string {
	return fmt.Sprintf("tcp,in_port=1,nw_src=%s,nw_dst=%s,tp_dst=25", src, dst)
}

// Three replicas on embedded etcd, six bridges each connected to all three:
// masters as rendezvous hashing predicts, flows enforced, status records in
// etcd; a crashed master's bridges are taken over and reconciled within the
// TTL plus a margin; the crashed... and a partitioned old master is refused.
func TestClusterOnOVS(t *testing.T) {
	testenv.RequireOVS(t)
	etcd := testenv.EmbeddedEtcd(t)
	const ttl = 3 * time.Second
	var nodes []*node
	for i := 1; i <= 3; i++ {
		nodes = append(nodes, startNode(t, fmt.Sprintf("op25b-%d", i), etcd.Endpoints, ttl))
	}
	bridges := newBridges(t, 6, nodes)
	doc := policyDoc(time.Time{}, bridges...)
	rev := putDoc(t, nodes[0].store, doc)

	testenv.Eventually(t, 60*time.Second, "all bridges enforced by one master each", func() bool {
		return converged(t, nodes, bridges, doc, rev)
	})
	ids := []string{"op25b-1", "op25b-2", "op25b-3"}
	per := map[string]int{}
	for _, b := range bridges {
		m := masterOf(t, nodes, b.DPID)
		per[m]++
		if want := Assign(b.DPID, ids); m != want {
			t.Errorf("bridge %s mastered by %s, rendezvous hashing says %s", b.DPID, m, want)
		}
		if got := b.Trace(t, smtpFrom("10.1.2.3", "198.51.100.7")); got != "drop" {
			t.Errorf("%s: SMTP to a mobile carrier not dropped: %s", b.Name, got)
		}
		if got := b.Trace(t, smtpFrom("10.1.2.3", "203.0.113.9")); got == "drop" {
			t.Errorf("%s: SMTP to another destination dropped", b.Name)
		}
	}
	t.Logf("masters per replica: %v", per)
	if len(per) < 2 {
		t.Errorf("all bridges on one replica: %v", per)
	}
	testenv.Eventually(t, 30*time.Second, "status records for every bridge", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		sts, err := nodes[2].store.BridgeStatuses(ctx)
		if err != nil || len(sts) != len(bridges) {
			return false
		}
		for _, s := range sts {
			if !s.Connected || s.AppliedRevision < rev || s.Master == "" || !s.Registered {
				return false
			}
		}
		return true
	})

	// Crash the master of bridge 0.
	victimID := masterOf(t, nodes, bridges[0].DPID)
	var victim *node
	var rest []*node
	for _, n := range nodes {
		if n.id == victimID {
			victim = n
		} else {
			rest = append(rest, n)
		}
	}
	oldGen := victim.replica.Masters()[bridges[0].DPID]
	before := bridges[0].OwnedFlows(t)
	crashed := time.Now()
	victim.crash()
	testenv.Eventually(t, ttl+30*time.Second, "survivors master and enforce every bridge", func() bool {
		return converged(t, rest, bridges, doc, rev)
	})
	t.Logf("failover after a crash converged in %s (TTL %s)", time.Since(crashed).Round(time.Millisecond), ttl)
	if after := bridges[0].OwnedFlows(t); after != before {
		t.Errorf("flows changed across failover:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	newMaster := masterOf(t, rest, bridges[0].DPID)
	var nm *node
	for _, n := range rest {
		if n.id == newMaster {
			nm = n
		}
	}
	if g := nm.replica.Masters()[bridges[0].DPID]; g <= oldGen {
		t.Errorf("new generation %d not above the old %d", g, oldGen)
	}

	// A partitioned old master that has not noticed: the other survivor
	// asks the switch for MASTER with the crashed master's (older)
	// generation, as the old master would. The switch refuses it.
	var other *node
	for _, n := range rest {
		if n.id != newMaster {
			other = n
		}
	}
	fl, _ := DefaultCompile(doc, bridges[0].DPID, time.Now())
	other.ctrl.SetDesired(controller.Desired{DPID: bridges[0].DPID, Revision: rev, Flows: fl[:1], Master: true, Generation: oldGen})
	testenv.Eventually(t, 30*time.Second, "stale generation refused by the switch", func() bool {
		return other.sawEvent(controller.EventLostMastership, bridges[0].DPID)
	})
	if after := bridges[0].OwnedFlows(t); after != before {
		t.Errorf("a stale master changed flows:\n%s", after)
	}
}

// A phase boundary a few seconds ahead takes effect on the switch with no
// API call or document write.
func TestPhaseBoundaryOnOVS(t *testing.T) {
	testenv.RequireOVS(t)
	etcd := testenv.EmbeddedEtcd(t)
	n := startNode(t, "op25b-1", etcd.Endpoints, 3*time.Second)
	bridges := newBridges(t, 1, []*node{n})
	b := bridges[0]
	boundary := time.Now().Add(4 * time.Second).Truncate(time.Second).Add(time.Second)
	doc := policyDoc(boundary, b)
	rev := putDoc(t, n.store, doc)
	testenv.Eventually(t, 30*time.Second, "initial flows", func() bool {
		rep, ok := ControllerSwitches(n.ctrl).Report(b.DPID)
		return ok && rep.AppliedRevision >= rev
	})
	if time.Now().Before(boundary) {
		if got := b.Trace(t, smtpFrom("10.1.2.3", "203.0.113.9")); got == "drop" {
			t.Errorf("before the boundary SMTP to a non-mobile destination is dropped")
		}
	}
	testenv.Eventually(t, 30*time.Second, "block-all phase enforced after the boundary", func() bool {
		return time.Now().After(boundary) && b.Trace(t, smtpFrom("10.1.2.3", "203.0.113.9")) == "drop"
	})
	if got := b.Trace(t, smtpFrom("10.1.2.3", "192.0.2.25")); got == "drop" {
		t.Errorf("SMTP to the relay dropped after the boundary")
	}
}

// An exemption and a quarantine lapse by themselves at their until, like a
// phase boundary: no API call, no document write, and the switch changes.
func TestOverridesLapseOnOVS(t *testing.T) {
	testenv.RequireOVS(t)
	etcd := testenv.EmbeddedEtcd(t)
	n := startNode(t, "op25b-1", etcd.Endpoints, 3*time.Second)
	b := newBridges(t, 1, []*node{n})[0]
	until := time.Now().Add(4 * time.Second).Truncate(time.Second).Add(time.Second)
	doc := policyDoc(time.Now().Add(-time.Hour), b) // block all, relays permitted
	doc.Pools = append(doc.Pools, topology.Pool{Name: "tokyo-fixed", Prefix: "10.1.200.0/29", Kind: topology.KindStatic})
	u := until.UTC().Format(time.RFC3339)
	doc.Exemptions = []topology.Exemption{{Name: "mail-server", Prefix: "10.1.2.3/32", Until: u, Reason: "fixed-IP move", Ticket: "4711"}}
	doc.Quarantines = []topology.Quarantine{{Name: "bot", Prefix: "10.1.200.3/32", Until: u, Reason: "abuse report", Ticket: "AB-88"}}
	rev := putDoc(t, n.store, doc)
	testenv.Eventually(t, 30*time.Second, "initial flows", func() bool {
		rep, ok := ControllerSwitches(n.ctrl).Report(b.DPID)
		return ok && rep.AppliedRevision >= rev
	})
	if time.Now().Before(until) {
		exempted, quarantined := b.Trace(t, smtpFrom("10.1.2.3", "203.0.113.9")), b.Trace(t, smtpFrom("10.1.200.3", "192.0.2.25"))
		if time.Now().Before(until) && (exempted == "drop" || quarantined != "drop") { // the traces may straddle until
			t.Errorf("before until: exempted host %q, quarantined static host to the relay %q", exempted, quarantined)
		}
	}
	testenv.Eventually(t, 30*time.Second, "both lapsed on the switch", func() bool {
		return time.Now().After(until) && b.Trace(t, smtpFrom("10.1.2.3", "203.0.113.9")) == "drop" &&
			b.Trace(t, smtpFrom("10.1.200.3", "192.0.2.25")) != "drop"
	})
	if got := b.Trace(t, smtpFrom("10.1.200.3", "203.0.113.9")); got == "drop" {
		t.Errorf("after the quarantine lapsed, the static host is still dropped")
	}
	if _, cur, err := n.store.Load(context.Background()); err != nil || cur != rev {
		t.Errorf("revision moved from %d to %d (%v): something wrote the document", rev, cur, err)
	}
}

// Debian's etcd as a 3-member cluster: losing one member changes nothing;
// losing quorum leaves every flow in place (replicas report not ready and
// step down to slave when their lease cannot be renewed); when quorum
// returns the cluster resumes and applies new writes.
func TestEtcdMemberAndQuorumLossOnOVS(t *testing.T) {
	testenv.RequireOVS(t)
	ec := testenv.NewEtcdCluster(t, 3)
	const ttl = 3 * time.Second
	var nodes []*node
	for i := 1; i <= 2; i++ {
		nodes = append(nodes, startNode(t, fmt.Sprintf("op25b-%d", i), ec.Endpoints, ttl))
	}
	bridges := newBridges(t, 3, nodes)
	doc := policyDoc(time.Time{}, bridges...)
	rev := putDoc(t, nodes[0].store, doc)
	testenv.Eventually(t, 60*time.Second, "converged", func() bool { return converged(t, nodes, bridges, doc, rev) })

	snapshot := func() map[string]string {
		m := map[string]string{}
		for _, b := range bridges {
			m[b.Name] = b.OwnedFlows(t)
		}
		return m
	}
	masters := func() map[topology.DPID]uint64 {
		m := map[topology.DPID]uint64{}
		for _, n := range nodes {
			for d, g := range n.replica.Masters() {
				m[d] = g
			}
		}
		return m
	}
	flowsBefore, mastersBefore := snapshot(), masters()

	// One member down: no effect.
	ec.StopMember(0)
	time.Sleep(ttl + time.Second) // give a wrong reaction the time to happen
	testenv.Eventually(t, 30*time.Second, "ready with one member down", func() bool {
		for _, n := range nodes {
			if n.replica.Ready() != nil {
				return false
			}
		}
		return true
	})
	if got := masters(); fmt.Sprint(got) != fmt.Sprint(mastersBefore) {
		t.Errorf("mastership changed when one etcd member died: %v → %v", mastersBefore, got)
	}
	if got := snapshot(); fmt.Sprint(got) != fmt.Sprint(flowsBefore) {
		t.Errorf("flows changed when one etcd member died")
	}

	// Quorum lost: flows stay, readiness degrades.
	ec.StopMember(1)
	testenv.Eventually(t, 30*time.Second, "every replica not ready", func() bool {
		for _, n := range nodes {
			if n.replica.Ready() == nil {
				return false
			}
		}
		return true
	})
	time.Sleep(ttl + 2*time.Second) // past the lease TTL: replicas step down to slave
	for name, want := range flowsBefore {
		for _, b := range bridges {
			if b.Name == name {
				if got := b.OwnedFlows(t); got != want {
					t.Errorf("%s: flows changed while etcd had no quorum:\n%s", name, got)
				}
			}
		}
	}

	// Recovery.
	ec.StartMember(0)
	ec.StartMember(1)
	ec.WaitServing(60 * time.Second)
	testenv.Eventually(t, 60*time.Second, "masters again after recovery", func() bool { return converged(t, nodes, bridges, doc, rev) })
	doc2 := doc.Clone()
	doc2.Pools = append(doc2.Pools, topology.Pool{Name: "osaka-dyn", Prefix: "10.2.0.0/16", Kind: topology.KindDynamic, Service: "ftth"})
	rev2 := putDoc(t, nodes[1].store, doc2)
	testenv.Eventually(t, 60*time.Second, "new document applied after recovery", func() bool {
		return converged(t, nodes, bridges, doc2, rev2)
	})
	if got := bridges[0].Trace(t, smtpFrom("10.2.0.9", "198.51.100.7")); got != "drop" {
		t.Errorf("new pool not enforced after recovery: %s", got)
	}
}
