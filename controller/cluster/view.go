package cluster

import (
	"cmp"
	"slices"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/op25b/op25b/topology"
)

// view is everything one pass knows, gathered before anything is decided:
// the replica's own memory, the local controller's sessions, the policy
// snapshot and, when etcd answered, one consistent read of the cluster's
// keys. decide turns it into actions without any I/O or clock.
//
// New inputs (for instance, when another replica saw its session to a
// bridge drop, or the time of the pass for rules that wait) are new fields
// here and new rules in decide; the code that gathers the view and the code
// that executes actions only grow by the field they fill or the action they
// run.
type view struct {
	me    string
	lease clientv3.LeaseID // 0: none (never granted, or lost): master of nothing
	epoch uint64           // the high half of every generation (generation)
	// health: what etcd last said about the lease (leaseHealth).
	health leaseHealth

	policy policyView
	local  map[topology.DPID]bool // bridges with an OpenFlow session here

	// etcd is nil when this pass could not read etcd: mastership then
	// stays as it is (the lease keeps others off our locks until it is
	// lost), and nothing is forgotten.
	etcd *etcdView

	// The replica's memory, carried from pass to pass.
	masters map[topology.DPID]uint64 // bridges we act as master of → generation
	dirty   map[topology.DPID]bool   // bridges whose status changed since their record was written
	wrote   map[topology.DPID]bool   // bridges whose current status record we wrote as master
	known   map[topology.DPID]bool   // bridges we keep state for (and may have told the controller about)
}

// leaseHealth is what the loop knows about its lease between passes. The
// client renews it every TTL/3; when that stream stops answering for a
// whole TTL the loop asks etcd directly (TimeToLive) on every pass until
// etcd says alive (the stream is restarted and the lease is healthy again)
// or gone.
type leaseHealth struct {
	ttl time.Duration // as granted by etcd (it may raise what we asked for)
	// unconfirmed is how long ago etcd last confirmed the lease alive,
	// counted only once the keepalive stream stopped answering; 0 while
	// it answers.
	unconfirmed time.Duration
	// gone: etcd answered that the lease no longer exists (it expired,
	// or was revoked).
	gone bool
}

// leaseGrace is how long past its TTL a lease that etcd has not
// confirmed is still trusted. A leader election never expires a lease:
// the new leader extends every lease by its election timeout (1 s by
// default) before it starts counting, and a client renews as soon as it
// reaches any member again. Without this grace a replica whose keepalive
// happened to be delayed by an election would step down and claim its
// bridges again with a new lock: a role change on every bridge for
// nothing (TestNoTakeoverDuringEtcdLeaderChange). A replica that really
// lost etcd keeps believing it is master for at most TTL + grace; the
// switches stop obeying it as soon as another replica claims the bridge
// with a larger generation.
func leaseGrace(ttl time.Duration) time.Duration { return max(ttl, 2*time.Second) }

// policyView is the replica's policy snapshot, as the loop sees it.
type policyView struct {
	loaded   bool
	revision int64 // document revision of the snapshot; 0: nothing was ever stored
	// rejected: etcd holds a newer document the policy refuses, so the
	// snapshot is the newest anyone can enforce (Policy.Rejected).
	rejected bool
	bridges  map[topology.DPID]bool // bridges listed in the document
}

// etcdView is one consistent read (one etcd revision) of the cluster keys.
type etcdView struct {
	// connected: dpid → replica → lease of its connected/<dpid>/<replica>
	// record.
	connected map[topology.DPID]map[string]clientv3.LeaseID
	locks     map[topology.DPID]lock // dpid → masters/<dpid>
	// documentRevision is the ModRevision of the store's commit record
	// (store.DocumentKey); 0 when no document was ever stored.
	documentRevision int64
}

// lock is one masters/<dpid> key.
type lock struct {
	holder            string
	lease             clientv3.LeaseID
	createRev, modRev int64
}

// generation is the OpenFlow role generation_id (OpenFlow 1.3 §6.3.6) for a
// master lock created at etcd revision createRev. A switch remembers the
// largest generation it has seen for as long as ovs-vswitchd runs and
// refuses smaller ones as Stale. Revisions alone only grow within one etcd
// cluster: after etcd is rebuilt from scratch (lost data, a new cluster),
// they start again near 1 and every claim would be Stale on every bridge
// until ovs-vswitchd restarts. The epoch, set once when a cluster is first
// used, puts each new etcd cluster above every earlier one; within one
// cluster the order is the revisions' order, so a partitioned old master is
// still refused. (OVS compares generations as a signed 64-bit difference;
// an epoch in seconds keeps the top bit clear.)
func generation(epoch uint64, createRev int64) uint64 {
	return epoch<<32 | uint64(createRev)&0xffffffff
}

func sortedKeys[K cmp.Ordered, V any](m map[K]V) []K {
	out := make([]K, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
