// Package cluster turns several op25bd replicas into one controller: it
// decides, through etcd, which replica is the OpenFlow master of each bridge,
// and feeds the local controller the desired flows of every bridge connected
// to this replica (policy → flows → switch → status).
//
// Mastership protocol (all keys under the store prefix, e.g. /op25b/):
//
//   - Each replica holds one etcd lease (TTL 10s by default). Everything it
//     writes below is bound to that lease, so a replica that dies or loses
//     etcd for longer than the TTL disappears from the cluster by itself.
//   - connected/<dpid>/<replica> exists while that bridge has an OpenFlow
//     session with that replica. The candidates for a bridge are the live
//     replicas connected to it: a replica the switch cannot reach is useless
//     as a master.
//   - The assignee of a bridge is chosen by rendezvous hashing of the dpid
//     over its candidates (Assign), which spreads bridges evenly and moves
//     only about 1/n of them when a replica joins or leaves.
//   - masters/<dpid> is the lock. It is created only if absent (a txn on
//     CreateRevision == 0) and bound to the holder's lease; only the holder
//     of the key acts as master. A holder that is no longer the assignee
//     first tells its controller SLAVE, then deletes the key; the assignee
//     claims it once it is free. So no two replicas ever both believe they
//     are master of one bridge. The claim also requires that the
//     claimant's policy snapshot be at least as new as the document in etcd
//     (config/current's ModRevision, compared in the same txn): a replica
//     back from a partition must not become master with a new generation and
//     push the old document its watch has not caught up from.
//   - The OpenFlow role generation_id (OpenFlow 1.3 §6.3.6) is the cluster
//     epoch (epoch: the Unix second this etcd was first used, high 32 bits)
//     followed by the lock key's CreateRevision (low 32 bits): etcd
//     revisions only grow, so a new master always has a larger generation
//     than any previous one, and a partitioned old master that has not
//     noticed yet is refused by the switch (Stale). The epoch keeps that true
//     across an etcd rebuilt from scratch, whose revisions restart near 1
//     while the switches still remember the old cluster's generations.
//
// Loss of etcd never removes a flow: the controller keeps the last desired
// state and its sessions. When the lease is lost (the client could not renew
// it within its TTL) the replica stops acting as master — it tells its
// controller SLAVE, which stops writing but leaves the flows in place — and
// it re-registers with a new lease once etcd answers again.
//
// # A pure core, the I/O around it
//
// The protocol above is one pure function, decide (decide.go): it takes a
// view of one pass (view.go: this replica and its lease, the bridges with
// a session here, the policy snapshot, what it believes it masters, and
// one consistent read of connected/, masters/ and the commit record) and
// returns actions: demotions, locks held, connected/ records to write,
// releases, claims, bridges to forget, status records to write. It reads
// no clock and does no I/O, so every rule is tested from scripts in
// testdata/decide without etcd. The rest carries actions out: run.go is
// the loop (one goroutine decides; two watch goroutines only wake it),
// pass.go gathers the view and does the local actions, etcd.go reads and
// writes etcd with a timeout per request (connected/ records in
// transactions of at most 128 operations, one conditional txn per claim or
// release), lease.go keeps the lease, enforce.go compiles and hands
// desired flows to the controller, records.go writes status records in
// batches.
//
// The package owns the mastership protocol and its keys (epoch,
// connected/, masters/), the replica's lease, and the choice of what the
// local controller is told. It imports controller (what it drives), flows
// and topology (what it compiles) and topology/store (the document's
// commit record key and the record types). It must not import api or cmd,
// and it never speaks OpenFlow or edits a flow itself: the controller does.
package cluster
