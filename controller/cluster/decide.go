package cluster

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	"github.com/op25b/op25b/topology"
)

// actions is what one pass must do, in the order the loop does it:
//
//  1. demotions, and the SLAVE half of every release: the controller is
//     told SLAVE before any lock is given up, so no two replicas ever
//     believe they are master of one bridge at once;
//  2. holds: locks we hold stay ours (memory only);
//  3. publish/unpublish our connected/ records (batched);
//  4. releases: delete the lock, if it is still the one we read;
//  5. claims: create the lock, if it is still free and the document in etcd
//     is not newer than our snapshot (one conditional txn each);
//  6. enforce: compile and hand desired flows to the controller; forget;
//  7. statuses: the records we write as master, and orphans (batched).
//
// The lists are sorted by dpid, so equal views give equal actions.
type actions struct {
	// dropLease, when set, says why the lease can no longer be trusted:
	// every bridge is demoted and the loop forgets the lease (a new one
	// is granted on the next pass; the old one is revoked once etcd
	// answers).
	dropLease string
	demotions []demotion
	holds     []hold
	publish   []topology.DPID // connected/<dpid>/<me>, under our lease
	unpublish []topology.DPID
	releases  []release
	claims    []claim
	deferred  []deferral      // would claim, but the snapshot is older than etcd's document
	handovers []topology.DPID // the status record is now another holder's to write
	// enforce: the snapshot may reach the switches. A cluster that never
	// stored a document (revision 0: a fresh embedded etcd, a lost data
	// dir) must not replace a bridge's existing policy with "block
	// nothing"; once any document is stored, even an empty one, it is.
	enforce  bool
	forget   []topology.DPID
	statuses []statusWrite // a successful claim adds its own at run time
}

// demotion: tell the controller SLAVE (same flows, same generation: a SLAVE
// request with the current generation is never stale).
type demotion struct {
	dpid   topology.DPID
	reason string
}

// hold: the lock is ours under our lease and we are its assignee; act as
// master with this generation.
type hold struct {
	dpid       topology.DPID
	generation uint64
}

// release: delete masters/<dpid> if its ModRevision is still modRev, after
// telling the controller SLAVE (a demotion, when we act as master).
type release struct {
	dpid     topology.DPID
	modRev   int64
	assignee string
}

// claim: create masters/<dpid> under our lease if it is absent and, when
// checkDocument, if the commit record's ModRevision is at most
// policyRevision (in the same txn: the document may change after the read).
type claim struct {
	dpid           topology.DPID
	policyRevision int64
	checkDocument  bool
}

// deferral: we are the assignee of a free lock but our snapshot is older
// than the document in etcd. A replica back from a partition, whose watch
// has not caught up yet, would otherwise become master with a new (valid)
// generation and push its old document, undoing changes the previous
// master applied meanwhile. It claims once its snapshot catches up.
type deferral struct {
	dpid                             topology.DPID
	policyRevision, documentRevision int64
}

// statusWrite: write the status record of dpid. An orphan is a bridge we
// reported as master that is now connected to no replica: nobody else will
// write its record, so we record it as disconnected with no master
// (otherwise status would claim it is connected).
type statusWrite struct {
	dpid   topology.DPID
	orphan bool
}

// decide is the mastership protocol (doc.go) as a pure function of one
// pass's view.
func decide(v view) actions {
	var a actions
	a.enforce = v.policy.loaded && v.policy.revision > 0
	if reason := leaseDoubt(v); reason != "" {
		// Without a lease etcd may already have handed our bridges to
		// another replica: master of nothing, and nothing else to decide.
		for _, dpid := range sortedKeys(v.masters) {
			a.demotions = append(a.demotions, demotion{dpid, reason})
		}
		if v.lease != 0 {
			a.dropLease = reason
		}
		return a
	}
	if v.etcd == nil || v.health.unconfirmed > 0 {
		// Keep roles: the lease keeps others off our locks for as long as
		// it lives, and etcd has not said it died. Nothing is written
		// under a lease etcd may have dropped.
		return a
	}
	a.publishConnected(v)
	var candidates []string // reused: one slice for every bridge
	forEachBridge(v, func(dpid topology.DPID) {
		candidates = connectedTo(v, dpid, candidates[:0])
		a.decideBridge(v, dpid, candidates)
	})
	a.sort()
	if a.enforce {
		a.forgetGone(v)
	}
	return a
}

// leaseDoubt says why the lease cannot be trusted, or "" when it can: no
// lease, etcd said it is gone, or etcd has not confirmed it for longer
// than its TTL plus leaseGrace.
func leaseDoubt(v view) string {
	switch h := v.health; {
	case v.lease == 0:
		return "no lease"
	case h.gone:
		return "lease expired"
	case h.unconfirmed > h.ttl+leaseGrace(h.ttl):
		return fmt.Sprintf("lease unconfirmed for %s", h.unconfirmed.Round(time.Millisecond))
	}
	return ""
}

// publishConnected makes our connected/ records match our sessions. A
// record of ours under another lease is a leftover of a previous lease
// (etcd was away): it counts as absent and is written again under the
// current lease, or it would vanish with the old one.
func (a *actions) publishConnected(v view) {
	for dpid, replicas := range v.etcd.connected {
		if lease, ok := replicas[v.me]; ok && lease == v.lease && !v.local[dpid] {
			a.unpublish = append(a.unpublish, dpid)
		}
	}
	for dpid := range v.local {
		if lease, ok := v.etcd.connected[dpid][v.me]; !ok || lease != v.lease {
			a.publish = append(a.publish, dpid)
		}
	}
	slices.Sort(a.publish)
	slices.Sort(a.unpublish)
}

// connectedTo appends to buf the replicas connected to dpid once our
// records match our sessions: the bridge's candidates.
func connectedTo(v view, dpid topology.DPID, buf []string) []string {
	for id := range v.etcd.connected[dpid] {
		if id != v.me {
			buf = append(buf, id)
		}
	}
	if v.local[dpid] {
		buf = append(buf, v.me)
	}
	return buf
}

// forEachBridge calls decide once for every bridge that may need a
// decision: in the document, connected anywhere, locked by us, mastered by
// us, or with a status to write. (A union without building one: this is
// most of a quiet pass's cost at 10k bridges.)
func forEachBridge(v view, decide func(dpid topology.DPID)) {
	for dpid := range v.policy.bridges {
		decide(dpid)
	}
	for dpid := range v.local {
		if !v.policy.bridges[dpid] {
			decide(dpid)
		}
	}
	seen := func(dpid topology.DPID) bool { return v.policy.bridges[dpid] || v.local[dpid] }
	for dpid := range v.etcd.connected {
		if !seen(dpid) {
			decide(dpid)
		}
	}
	seen = func(dpid topology.DPID) bool {
		_, conn := v.etcd.connected[dpid]
		return conn || v.policy.bridges[dpid] || v.local[dpid]
	}
	for dpid, lk := range v.etcd.locks {
		if lk.holder == v.me && !seen(dpid) {
			decide(dpid)
		}
	}
	mine := func(dpid topology.DPID) bool { lk, ok := v.etcd.locks[dpid]; return ok && lk.holder == v.me }
	for dpid := range v.masters {
		if !seen(dpid) && !mine(dpid) {
			decide(dpid)
		}
	}
	for dpid := range v.dirty {
		if _, master := v.masters[dpid]; !master && !seen(dpid) && !mine(dpid) {
			decide(dpid)
		}
	}
}

// sort puts every list in dpid order, so equal views give equal actions.
func (a *actions) sort() {
	slices.SortFunc(a.demotions, func(x, y demotion) int { return cmp.Compare(x.dpid, y.dpid) })
	slices.SortFunc(a.holds, func(x, y hold) int { return cmp.Compare(x.dpid, y.dpid) })
	slices.SortFunc(a.releases, func(x, y release) int { return cmp.Compare(x.dpid, y.dpid) })
	slices.SortFunc(a.claims, func(x, y claim) int { return cmp.Compare(x.dpid, y.dpid) })
	slices.SortFunc(a.deferred, func(x, y deferral) int { return cmp.Compare(x.dpid, y.dpid) })
	slices.Sort(a.handovers)
	slices.SortFunc(a.statuses, func(x, y statusWrite) int { return cmp.Compare(x.dpid, y.dpid) })
}

// decideBridge applies the protocol to one bridge, given the replicas
// connected to it: its candidates.
func (a *actions) decideBridge(v view, dpid topology.DPID, candidates []string) {
	assignee := Assign(dpid, candidates)
	lk, held := v.etcd.locks[dpid]
	current, master := v.masters[dpid]
	switch {
	case held && lk.holder == v.me && (lk.lease != v.lease || assignee != v.me):
		reason := "assignee is " + assignee
		if assignee == "" {
			reason = "connected to no replica"
		}
		if lk.lease != v.lease {
			reason = "lock from a previous lease"
		}
		if master {
			a.demotions = append(a.demotions, demotion{dpid, "release: " + reason})
		}
		a.releases = append(a.releases, release{dpid, lk.modRev, assignee})
	case held && lk.holder == v.me:
		g := generation(v.epoch, lk.createRev)
		a.holds = append(a.holds, hold{dpid, g})
		if v.dirty[dpid] || !master || current != g {
			a.statuses = append(a.statuses, statusWrite{dpid: dpid})
		}
		return
	case held:
		if master {
			a.demotions = append(a.demotions, demotion{dpid, "lock held by " + lk.holder})
		}
		if v.wrote[dpid] {
			a.handovers = append(a.handovers, dpid)
		}
		return // the holder writes the record now
	case assignee == v.me:
		if master {
			// Only the holder of the lock acts as master.
			a.demotions = append(a.demotions, demotion{dpid, "lock gone"})
		}
		a.claimOrDefer(v, dpid)
		return // a successful claim writes the record
	case master:
		a.demotions = append(a.demotions, demotion{dpid, "no lock, assignee is " + assignee})
	}
	if v.dirty[dpid] && v.wrote[dpid] && len(candidates) == 0 {
		a.statuses = append(a.statuses, statusWrite{dpid: dpid, orphan: true})
	}
}

// claimOrDefer claims a free lock, unless our snapshot is older than the
// document in etcd (see deferral). A rejected document does not hold the
// claim back: our snapshot is then the newest anyone can enforce.
func (a *actions) claimOrDefer(v view, dpid topology.DPID) {
	rev := int64(0)
	if v.policy.loaded {
		rev = v.policy.revision
	}
	if !v.policy.rejected && v.etcd.documentRevision > rev {
		a.deferred = append(a.deferred, deferral{dpid, rev, v.etcd.documentRevision})
		return
	}
	a.claims = append(a.claims, claim{dpid, rev, !v.policy.rejected})
}

// forgetGone lists the bridges to forget: certainly gone, that is not in
// the document, not connected here and not ours. Only with etcd's answer
// (decide returns earlier without it), never because etcd is down.
func (a *actions) forgetGone(v view) {
	for dpid := range v.known {
		if !v.local[dpid] && !v.policy.bridges[dpid] {
			a.forget = append(a.forget, dpid)
		}
	}
	if len(a.forget) == 0 {
		return
	}
	// A lock we hold implies a session here; checked all the same.
	held := make(map[topology.DPID]bool, len(a.holds))
	for _, h := range a.holds {
		held[h.dpid] = true
	}
	a.forget = slices.DeleteFunc(a.forget, func(dpid topology.DPID) bool { return held[dpid] })
	slices.Sort(a.forget)
}
