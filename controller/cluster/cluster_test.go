package cluster

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/op25b/op25b/controller"
	"github.com/op25b/op25b/flows"
	"github.com/op25b/op25b/internal/testenv"
	"github.com/op25b/op25b/topology"
)

func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("OP25B_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// running is one replica started by a test, with its own etcd client.
type running struct {
	replica *Replica
	sw      *fakeSwitches
	client  *clientv3.Client
	cancel  context.CancelFunc
	done    chan struct{}
}

func (r *running) stop() {
	r.cancel()
	<-r.done
}

func startReplica(t *testing.T, id string, endpoints []string, policy Policy, sw *fakeSwitches, ttl time.Duration) *running {
	t.Helper()
	return startReplicaWith(t, id, endpoints, policy, sw, ttl, nil)
}

func startReplicaWith(t *testing.T, id string, endpoints []string, policy Policy, sw *fakeSwitches, ttl time.Duration, records Records) *running {
	t.Helper()
	cli := newClient(t, endpoints)
	rep, err := New(Config{
		NodeID: id, Client: cli, Prefix: "/op25b-test/", Switches: sw, Policy: policy, Records: records,
		Compile: countingCompile, LeaseTTL: ttl, EtcdTimeout: time.Second, Resync: 500 * time.Millisecond,
		Logger: testLogger(t).With("replica", id),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{replica: rep, sw: sw, client: cli, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		_ = rep.Run(ctx)
	}()
	t.Cleanup(r.stop)
	return r
}

func smallDoc(dpids ...topology.DPID) *topology.Document {
	doc := &topology.Document{
		Pools:    []topology.Pool{{Name: "dyn", Prefix: "10.1.0.0/16", Kind: topology.KindDynamic, Service: "ftth"}},
		Services: []topology.Service{{Name: "ftth", Phases: []topology.Phase{{Block: topology.Block{All: true}}}}},
	}
	for i, d := range dpids {
		doc.Bridges = append(doc.Bridges, topology.Bridge{DPID: d, Name: "br" + string(rune('a'+i)), Pop: "tokyo-1"})
	}
	return doc
}

// mastersOf returns, per replica, the bridges it masters (from the fakes'
// last desired state, i.e. what each controller was told).
func mastersOf(reps []*running, dpids []topology.DPID) map[string][]topology.DPID {
	out := map[string][]topology.DPID{}
	for _, d := range dpids {
		for _, r := range reps {
			if des, ok := r.sw.get(d); ok && des.Master {
				out[r.replica.NodeID()] = append(out[r.replica.NodeID()], d)
			}
		}
	}
	return out
}

func oneMasterEach(reps []*running, dpids []topology.DPID) bool {
	for _, d := range dpids {
		n := 0
		for _, r := range reps {
			if des, ok := r.sw.get(d); ok && des.Master {
				n++
			}
		}
		if n != 1 {
			return false
		}
	}
	return true
}

func TestReplicasShareAndFailOver(t *testing.T) {
	etcd := startDebianEtcd(t)
	var dpids []topology.DPID
	for i := 1; i <= 12; i++ {
		dpids = append(dpids, dpidN(i))
	}
	policy := newFakePolicy(smallDoc(dpids...), 7)
	b := newBeliefs(t)
	var reps []*running
	for _, id := range []string{"r1", "r2", "r3"} {
		reps = append(reps, startReplica(t, id, etcd.Endpoints, policy, newFakeSwitches(id, b, dpids...), 2*time.Second))
	}
	testenv.Eventually(t, 30*time.Second, "every bridge has exactly one master and every replica masters some", func() bool {
		return oneMasterEach(reps, dpids) && len(mastersOf(reps, dpids)) == 3
	})
	for id, ms := range mastersOf(reps, dpids) {
		t.Logf("%s masters %d bridges", id, len(ms))
	}
	// Slaves were told the same flows, with Master=false.
	for _, r := range reps {
		for _, d := range dpids {
			des, ok := r.sw.get(d)
			if !ok || des.Revision != 7 || len(des.Flows) != 2 {
				t.Errorf("%s %s: desired %+v, want revision 7 with 2 flows", r.replica.NodeID(), d, des)
			}
		}
	}

	// Cancel r1: its bridges move to r2/r3 with a larger generation.
	victim := reps[0]
	oldGen := map[topology.DPID]uint64{}
	for d, g := range victim.replica.Masters() {
		oldGen[d] = g
	}
	victim.stop()
	rest := reps[1:]
	testenv.Eventually(t, 30*time.Second, "survivors master every bridge", func() bool { return oneMasterEach(rest, dpids) })
	for d, g := range oldGen {
		for _, r := range rest {
			if des, _ := r.sw.get(d); des.Master && des.Generation <= g {
				t.Errorf("%s: new generation %d not above old %d", d, des.Generation, g)
			}
		}
		if des, _ := victim.sw.get(d); des.Master {
			t.Errorf("%s: stopped replica still believes it is master", d)
		}
	}

	// A replica joining takes its share back.
	reps = append(rest, startReplica(t, "r4", etcd.Endpoints, policy, newFakeSwitches("r4", b, dpids...), 2*time.Second))
	testenv.Eventually(t, 30*time.Second, "r4 takes a share", func() bool {
		return oneMasterEach(reps, dpids) && len(mastersOf(reps, dpids)["r4"]) > 0
	})
}

// A document change reaches every replica's controller; a bridge that is
// connected but not in the document is enforced too (unregistered).
func TestDocumentChangeAndUnregisteredBridge(t *testing.T) {
	etcd := startDebianEtcd(t)
	registered, stray := dpidN(1), dpidN(0x77)
	policy := newFakePolicy(smallDoc(registered), 1)
	b := newBeliefs(t)
	records := newFakeRecords()
	r := startReplicaWith(t, "solo", etcd.Endpoints, policy, newFakeSwitches("solo", b, registered, stray), 2*time.Second, records)
	testenv.Eventually(t, 20*time.Second, "both bridges mastered", func() bool {
		return oneMasterEach([]*running{r}, []topology.DPID{registered, stray})
	})
	testenv.Eventually(t, 20*time.Second, "status records written by the master", func() bool {
		reg, ok1 := records.get(registered)
		str, ok2 := records.get(stray)
		return ok1 && ok2 && reg.Master == "solo" && reg.Registered && reg.Connected && str.Master == "solo" && !str.Registered
	})
	doc := smallDoc(registered)
	doc.Pools = append(doc.Pools, topology.Pool{Name: "dyn2", Prefix: "10.2.0.0/16", Kind: topology.KindDynamic, Service: "ftth"})
	policy.set(doc, 2)
	testenv.Eventually(t, 20*time.Second, "revision 2 with 3 flows on both", func() bool {
		for _, d := range []topology.DPID{registered, stray} {
			des, _ := r.sw.get(d)
			if des.Revision != 2 || len(des.Flows) != 3 || !des.Master {
				return false
			}
		}
		return true
	})
	// The stray bridge disconnects: it is forgotten (not in the document).
	r.sw.mu.Lock()
	r.sw.conn[stray] = false
	r.sw.mu.Unlock()
	r.replica.ControllerEvent(controller.Event{Kind: controller.EventDisconnected, DPID: stray})
	testenv.Eventually(t, 20*time.Second, "stray bridge forgotten", func() bool {
		_, ok := r.sw.get(stray)
		return !ok
	})
	testenv.Eventually(t, 20*time.Second, "status of the stray bridge says disconnected, no master", func() bool {
		st, _ := records.get(stray)
		return !st.Connected && st.Master == ""
	})
}

// A phase boundary a few seconds ahead takes effect without any document
// change.
func TestPhaseBoundaryWithoutChange(t *testing.T) {
	etcd := startDebianEtcd(t)
	d := dpidN(1)
	doc := smallDoc(d)
	from := time.Now().Add(2 * time.Second).UTC().Format(time.RFC3339)
	doc.Services[0].Phases = append(doc.Services[0].Phases, topology.Phase{From: from, Block: topology.Block{All: true}})
	// and one in the far future, which must not break the timer
	doc.Services[0].Phases = append(doc.Services[0].Phases, topology.Phase{From: "9999-12-31T23:59:59Z", Block: topology.Block{All: true}})
	policy := newFakePolicy(doc, 3)
	r := startReplica(t, "solo", etcd.Endpoints, policy, newFakeSwitches("solo", newBeliefs(t), d), 2*time.Second)
	testenv.Eventually(t, 20*time.Second, "initial desired state (2 flows)", func() bool {
		des, ok := r.sw.get(d)
		return ok && des.Master && (len(des.Flows) == 2 || len(des.Flows) == 3)
	})
	testenv.Eventually(t, 20*time.Second, "phase started: 3 flows, same revision", func() bool {
		des, _ := r.sw.get(d)
		return len(des.Flows) == 3 && des.Revision == 3
	})
}

// etcd goes away: nothing is removed (no SetDesired with fewer flows, no
// Forget), readiness reports it, the lease loss demotes to slave with the
// same flows; when etcd returns the replica is master again.
func TestEtcdLossKeepsDesiredState(t *testing.T) {
	etcd := startDebianEtcd(t)
	dpids := []topology.DPID{dpidN(1), dpidN(2)}
	policy := newFakePolicy(smallDoc(dpids...), 5)
	r := startReplica(t, "solo", etcd.Endpoints, policy, newFakeSwitches("solo", newBeliefs(t), dpids...), 2*time.Second)
	testenv.Eventually(t, 20*time.Second, "mastered and ready", func() bool {
		return oneMasterEach([]*running{r}, dpids) && r.replica.Ready() == nil
	})
	if h := r.replica.Health(); h.EtcdErr != nil || !h.LeaseHeld || time.Until(h.LeaseExpires) <= 0 || time.Until(h.LeaseExpires) > 2*time.Second {
		t.Errorf("health while mastering: %+v, want etcd reached, lease held, expiring within its 2s TTL", h)
	}
	r.sw.mu.Lock()
	mark := len(r.sw.history)
	r.sw.mu.Unlock()

	etcd.StopMember(0)
	testenv.Eventually(t, 20*time.Second, "not ready", func() bool { return r.replica.Ready() != nil })
	testenv.Eventually(t, 20*time.Second, "health says etcd unreachable and no lease", func() bool {
		h := r.replica.Health()
		return h.EtcdErr != nil && !h.LeaseHeld && h.LeaseExpires.IsZero()
	})
	testenv.Eventually(t, 20*time.Second, "lease lost: slave everywhere", func() bool {
		for _, d := range dpids {
			if des, _ := r.sw.get(d); des.Master {
				return false
			}
		}
		return true
	})
	etcd.StartMember(0)
	testenv.Eventually(t, 30*time.Second, "master again and ready", func() bool {
		return oneMasterEach([]*running{r}, dpids) && r.replica.Ready() == nil
	})
	r.sw.mu.Lock()
	defer r.sw.mu.Unlock()
	for _, d := range r.sw.history[mark:] {
		if len(d.Flows) != 2 || d.Revision != 5 {
			t.Errorf("desired state changed while etcd was away: %+v", d)
		}
	}
	if len(r.sw.forgot) != 0 {
		t.Errorf("bridges forgotten while etcd was away: %v", r.sw.forgot)
	}
}

// A document that cannot be compiled for a bridge leaves the controller with
// the previous desired flows (never an empty or partial set).
func TestCompileFailureKeepsPreviousFlows(t *testing.T) {
	etcd := startDebianEtcd(t)
	d := dpidN(1)
	policy := newFakePolicy(smallDoc(d), 1)
	sw := newFakeSwitches("solo", newBeliefs(t), d)
	cli := newClient(t, etcd.Endpoints)
	compile := func(doc *topology.Document, dpid topology.DPID, at time.Time) ([]flows.Flow, error) {
		for _, p := range doc.Pools {
			if p.Name == "poison" {
				return nil, errors.New("cannot compile")
			}
		}
		return countingCompile(doc, dpid, at)
	}
	rep, err := New(Config{NodeID: "solo", Client: cli, Prefix: "/op25b-test/", Switches: sw, Policy: policy,
		Compile: compile, LeaseTTL: 2 * time.Second, Resync: 200 * time.Millisecond, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = rep.Run(ctx) }()
	defer func() { cancel(); <-done }()
	testenv.Eventually(t, 20*time.Second, "initial flows", func() bool {
		des, ok := sw.get(d)
		return ok && des.Master && len(des.Flows) == 2
	})
	bad := smallDoc(d)
	bad.Pools = append(bad.Pools, topology.Pool{Name: "poison", Prefix: "10.9.0.0/16", Kind: topology.KindDynamic, Service: "ftth"})
	policy.set(bad, 2)
	time.Sleep(time.Second) // several passes
	if des, _ := sw.get(d); des.Revision != 1 || len(des.Flows) != 2 {
		t.Errorf("after a failed compile the controller was told %+v", des)
	}
	policy.set(smallDoc(d), 3)
	testenv.Eventually(t, 20*time.Second, "next good document applied", func() bool {
		des, _ := sw.get(d)
		return des.Revision == 3
	})
}

// A cluster that never stored a document (revision 0: a fresh embedded
// etcd, a lost data dir) must not touch a connected bridge, which may still
// hold the policy of an earlier life; the first stored document, even an
// empty one, is enforced.
func TestNeverConfiguredClusterLeavesSwitchesAlone(t *testing.T) {
	etcd := startDebianEtcd(t)
	d := dpidN(1)
	policy := newFakePolicy(&topology.Document{}, 0)
	r := startReplica(t, "solo", etcd.Endpoints, policy, newFakeSwitches("solo", newBeliefs(t), d), 2*time.Second)
	testenv.Eventually(t, 20*time.Second, "replica coordinated (bridge known, lock claimed)", func() bool {
		_, mastered := r.replica.Masters()[d]
		return mastered
	})
	time.Sleep(500 * time.Millisecond) // a few loop iterations: still nothing may be sent
	if des, ok := r.sw.get(d); ok {
		t.Fatalf("revision 0 reached the switch: %+v", des)
	}
	policy.set(&topology.Document{}, 5)
	testenv.Eventually(t, 20*time.Second, "the first stored document is enforced", func() bool {
		des, ok := r.sw.get(d)
		return ok && des.Revision == 5 && des.Master
	})
}
