package cluster

import (
	"math/rand/v2"
	"slices"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/op25b/op25b/topology"
)

// randomCluster is one etcd state seen by three replicas: random sessions,
// connected records, locks, and per-replica memory. When settled, every
// replica's connected records match its sessions under its current lease
// (all replicas see the same candidates); otherwise records are random and
// some are left over from older leases.
func randomCluster(rng *rand.Rand, settled bool) map[string]view {
	ids := []string{"r1", "r2", "r3"}
	leases := map[string]clientv3.LeaseID{"r1": 1, "r2": 2, "r3": 3}
	ev := &etcdView{connected: map[topology.DPID]map[string]clientv3.LeaseID{}, locks: map[topology.DPID]lock{}, documentRevision: int64(rng.IntN(3))}
	views := map[string]view{}
	for _, id := range ids {
		views[id] = view{me: id, lease: leases[id], epoch: 1, etcd: ev,
			policy: policyView{loaded: true, revision: int64(rng.IntN(3)), bridges: map[topology.DPID]bool{}},
			local:  map[topology.DPID]bool{}, masters: map[topology.DPID]uint64{}, dirty: map[topology.DPID]bool{}, wrote: map[topology.DPID]bool{}, known: map[topology.DPID]bool{}}
	}
	for i := range 40 {
		dpid := topology.DPIDFromUint64(uint64(i))
		for _, id := range ids {
			v := views[id]
			if rng.IntN(3) > 0 {
				v.local[dpid] = true
			}
			record, lease := v.local[dpid], leases[id]
			if !settled {
				record, lease = rng.IntN(2) == 0, lease+clientv3.LeaseID(rng.IntN(2)*10) // sometimes a stale lease
			}
			if record {
				if ev.connected[dpid] == nil {
					ev.connected[dpid] = map[string]clientv3.LeaseID{}
				}
				ev.connected[dpid][id] = lease
			}
			for _, set := range []map[topology.DPID]bool{v.policy.bridges, v.dirty, v.wrote, v.known} {
				if rng.IntN(4) == 0 {
					set[dpid] = true
				}
			}
			if rng.IntN(4) == 0 {
				v.masters[dpid] = generation(1, int64(i))
			}
		}
		if rng.IntN(2) == 0 {
			holder := ids[rng.IntN(3)]
			ev.locks[dpid] = lock{holder: holder, lease: leases[holder] + clientv3.LeaseID(rng.IntN(2)*10), createRev: int64(i), modRev: int64(i)}
		}
	}
	return views
}

// Over random clusters: nobody claims a held lock; at most one replica
// holds a bridge (the lock names one holder) and nobody claims what another
// holds; a master that releases is told SLAVE first; forEachBridge visits
// the union of its sources exactly once. Once every replica's records
// match its sessions, at most one replica claims each bridge (the lock's
// conditional txn settles the races of the moments before).
func TestDecideProperties(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	claims, holds, releases := 0, 0, 0
	for round := range 1000 {
		settled := round%2 == 0
		views := randomCluster(rng, settled)
		claimed, holding := map[topology.DPID]string{}, map[topology.DPID]string{}
		for id, v := range views {
			a := decide(v)
			demoted := map[topology.DPID]bool{}
			for _, d := range a.demotions {
				demoted[d.dpid] = true
			}
			for _, c := range a.claims {
				if other, dup := claimed[c.dpid]; dup && settled {
					t.Fatalf("round %d: %s and %s both claim %s", round, other, id, c.dpid)
				}
				if _, held := v.etcd.locks[c.dpid]; held {
					t.Fatalf("round %d: %s claims %s whose lock is held", round, id, c.dpid)
				}
				claimed[c.dpid] = id
			}
			for _, h := range a.holds {
				if other, dup := holding[h.dpid]; dup {
					t.Fatalf("round %d: %s and %s both hold %s", round, other, id, h.dpid)
				}
				holding[h.dpid] = id
			}
			for _, r := range a.releases {
				if _, master := v.masters[r.dpid]; master && !demoted[r.dpid] {
					t.Fatalf("round %d: %s releases %s without telling its controller SLAVE", round, id, r.dpid)
				}
			}
			checkVisitsUnionOnce(t, v)
			claims, holds, releases = claims+len(a.claims), holds+len(a.holds), releases+len(a.releases)
		}
		for dpid, id := range claimed {
			if holder, ok := holding[dpid]; ok {
				t.Fatalf("round %d: %s claims %s while %s holds it", round, id, dpid, holder)
			}
		}
	}
	if claims == 0 || holds == 0 || releases == 0 {
		t.Fatalf("the random clusters exercised too little: %d claims, %d holds, %d releases", claims, holds, releases)
	}
	t.Logf("%d claims, %d holds, %d releases checked", claims, holds, releases)
}

func checkVisitsUnionOnce(t *testing.T, v view) {
	t.Helper()
	want := map[topology.DPID]bool{}
	for _, set := range []map[topology.DPID]bool{v.policy.bridges, v.local, v.dirty} {
		for d := range set {
			want[d] = true
		}
	}
	for d := range v.etcd.connected {
		want[d] = true
	}
	for d, lk := range v.etcd.locks {
		if lk.holder == v.me {
			want[d] = true
		}
	}
	for d := range v.masters {
		want[d] = true
	}
	var got []topology.DPID
	forEachBridge(v, func(dpid topology.DPID) { got = append(got, dpid) })
	slices.Sort(got)
	if !slices.Equal(got, sortedKeys(want)) {
		t.Fatalf("forEachBridge visited %v, want each of %v once", got, sortedKeys(want))
	}
}
