package cluster

import (
	"fmt"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/op25b/op25b/topology"
)

const scaleBridges = 10_000

var scaleReplicas = []string{"op25b-1", "op25b-2", "op25b-3"}

// scaleView is op25b-1's view of 10k bridges, each connected to all three
// replicas. With steady, every lock is held by its assignee and our memory
// agrees (a quiet pass); without, no lock exists yet (a cold start).
func scaleView(steady bool) view {
	v := view{
		me: scaleReplicas[0], lease: 1, epoch: 1_700_000_000,
		policy: policyView{loaded: true, revision: 7, bridges: map[topology.DPID]bool{}},
		local:  map[topology.DPID]bool{},
		etcd: &etcdView{connected: map[topology.DPID]map[string]clientv3.LeaseID{}, locks: map[topology.DPID]lock{},
			documentRevision: 7},
		masters: map[topology.DPID]uint64{}, dirty: map[topology.DPID]bool{}, wrote: map[topology.DPID]bool{}, known: map[topology.DPID]bool{},
	}
	for i := range scaleBridges {
		dpid := topology.DPIDFromUint64(uint64(i + 1))
		v.policy.bridges[dpid], v.local[dpid], v.known[dpid] = true, true, true
		v.etcd.connected[dpid] = map[string]clientv3.LeaseID{}
		for j, id := range scaleReplicas {
			v.etcd.connected[dpid][id] = clientv3.LeaseID(j + 1)
		}
		if !steady {
			continue
		}
		winner := Assign(dpid, scaleReplicas)
		lk := lock{holder: winner, lease: v.etcd.connected[dpid][winner], createRev: int64(100 + i), modRev: int64(100 + i)}
		v.etcd.locks[dpid] = lk
		if winner == v.me {
			v.masters[dpid] = generation(v.epoch, lk.createRev)
			v.wrote[dpid] = true
		}
	}
	return v
}

// TestDecideTenThousandBridges: a cold start claims exactly the bridges
// rendezvous hashing gives us, about a third; a quiet pass holds them and
// does nothing else. (The time it takes is BenchmarkDecide10k's business.)
func TestDecideTenThousandBridges(t *testing.T) {
	cold := decide(scaleView(false))
	mine := 0
	for i := range scaleBridges {
		if Assign(topology.DPIDFromUint64(uint64(i+1)), scaleReplicas) == scaleReplicas[0] {
			mine++
		}
	}
	if len(cold.claims) != mine || mine < scaleBridges/3*8/10 || mine > scaleBridges/3*12/10 {
		t.Fatalf("cold start: %d claims, rendezvous hashing gives us %d of %d", len(cold.claims), mine, scaleBridges)
	}
	for _, c := range cold.claims {
		if Assign(c.dpid, scaleReplicas) != scaleReplicas[0] || !c.checkDocument || c.policyRevision != 7 {
			t.Fatalf("cold start: unexpected claim %+v", c)
		}
	}
	if len(cold.publish)+len(cold.unpublish)+len(cold.releases)+len(cold.demotions)+len(cold.forget) != 0 || !cold.enforce {
		t.Errorf("cold start: more than claims: %d publish, %d unpublish, %d releases, %d demotions, %d forget, enforce %v",
			len(cold.publish), len(cold.unpublish), len(cold.releases), len(cold.demotions), len(cold.forget), cold.enforce)
	}

	quiet := decide(scaleView(true))
	if len(quiet.holds) != mine {
		t.Fatalf("quiet pass: %d holds, want %d", len(quiet.holds), mine)
	}
	if n := len(quiet.claims) + len(quiet.releases) + len(quiet.demotions) + len(quiet.statuses) + len(quiet.publish) + len(quiet.forget); n != 0 {
		t.Errorf("quiet pass: %d actions besides holds: %s", n, renderActions(quiet)[:min(500, len(renderActions(quiet)))])
	}
}

// BenchmarkDecide10k: one pass's decisions over 10k bridges and three
// replicas, cold and quiet, against a reference measured in the same run:
// rendezvous hashing of the same bridges alone (the least any pass does).
//
//	go test -run '^$' -bench Decide10k ./controller/cluster/
func BenchmarkDecide10k(b *testing.B) {
	perOp := map[string]time.Duration{}
	views := map[string]view{"cold": scaleView(false), "quiet": scaleView(true)}
	for _, name := range []string{"cold", "quiet"} {
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				decide(views[name])
			}
			perOp[name] = b.Elapsed() / time.Duration(b.N)
		})
	}
	dpids := make([]topology.DPID, scaleBridges)
	for i := range dpids {
		dpids[i] = topology.DPIDFromUint64(uint64(i + 1))
	}
	b.Run("assign-only", func(b *testing.B) {
		for b.Loop() {
			for _, d := range dpids {
				Assign(d, scaleReplicas)
			}
		}
		perOp["assign"] = b.Elapsed() / time.Duration(b.N)
	})
	if perOp["assign"] > 0 {
		fmt.Printf("ratio decide 10k bridges / 3 replicas: cold %s, quiet %s, rendezvous hashing alone %s; decide/hashing = %.1fx cold, %.1fx quiet\n",
			perOp["cold"].Round(time.Microsecond), perOp["quiet"].Round(time.Microsecond), perOp["assign"].Round(time.Microsecond),
			float64(perOp["cold"])/float64(perOp["assign"]), float64(perOp["quiet"])/float64(perOp["assign"]))
	}
}
