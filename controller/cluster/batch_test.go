package cluster

import (
	"context"
	"testing"
	"time"

	"github.com/op25b/op25b/internal/testenv"
	"github.com/op25b/op25b/topology"
)

// Claims and releases go to etcd in batches; a batch whose condition fails
// because one lock was taken since the read (by another replica, between
// our read and our write) still claims every other lock, one at a time,
// and releases skip a lock that changed.
func TestBatchedClaimsAndReleases(t *testing.T) {
	etcd := testenv.EmbeddedEtcd(t)
	cli := newClient(t, etcd.Endpoints)
	r, err := New(Config{NodeID: "r1", Client: cli, Prefix: "/op25b-batch/", Switches: newFakeSwitches("r1", nil),
		Policy: newFakePolicy(smallDoc(), 1), Compile: countingCompile, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st := newLoop()
	if err := r.ensureLease(ctx, st); err != nil {
		t.Fatal(err)
	}
	defer r.dropLease(st)

	var claims []claim
	for i := range 300 { // three batches: 127, 127, 46
		claims = append(claims, claim{dpid: dpidN(i), policyRevision: 1})
	}
	// Another replica takes bridge 5 after our read.
	if _, err := cli.Put(ctx, r.lockKey(dpidN(5)), "r2"); err != nil {
		t.Fatal(err)
	}
	claimed, err := r.claimAll(ctx, st, claims)
	if err != nil {
		t.Fatal(err)
	}
	if len(claimed) != 299 {
		t.Fatalf("claimed %d bridges, want 299 (all but the one taken)", len(claimed))
	}
	v, err := r.readCluster(ctx, st.lease)
	if err != nil {
		t.Fatal(err)
	}
	var rels []release
	for dpid, lk := range v.locks {
		if lk.holder == "r1" {
			if st.bridges[dpid].generation != generation(st.epoch, lk.createRev) {
				t.Fatalf("bridge %s: generation %x, lock created at %d", dpid, st.bridges[dpid].generation, lk.createRev)
			}
			rels = append(rels, release{dpid: dpid, modRev: lk.modRev})
		}
	}
	// One lock changed since the read: the batch falls back and releases
	// every other.
	if _, err := cli.Put(ctx, r.lockKey(rels[0].dpid), "r1"); err != nil {
		t.Fatal(err)
	}
	if err := r.releaseAll(ctx, st, rels); err != nil {
		t.Fatal(err)
	}
	v, err = r.readCluster(ctx, st.lease)
	if err != nil {
		t.Fatal(err)
	}
	if len(v.locks) != 2 || v.locks[dpidN(5)].holder != "r2" || v.locks[rels[0].dpid].holder != "r1" {
		left := map[topology.DPID]string{}
		for d, lk := range v.locks {
			left[d] = lk.holder
		}
		t.Fatalf("locks left %v, want bridge 5 (r2's) and the changed one", left)
	}
}
