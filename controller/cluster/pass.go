package cluster

import (
	"context"
	"errors"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/op25b/op25b/controller"
	"github.com/op25b/op25b/topology"
)

// loop is the state owned by Run's goroutine, carried from pass to pass.
type loop struct {
	lease      clientv3.LeaseID
	registered bool             // our replicas/ record is written under lease
	lostLease  clientv3.LeaseID // previous lease, revoked once etcd answers
	keepalive  <-chan *clientv3.LeaseKeepAliveResponse
	stopLease  context.CancelFunc
	epoch      uint64 // from epochKey, read once per process

	// Lease health (lease.go): the TTL etcd granted, when etcd last
	// confirmed the lease alive, whether the keepalive stream stopped
	// answering (TimeToLive is then asked on every pass), and whether etcd
	// said the lease is gone.
	leaseTTL      time.Duration
	confirmed     time.Time
	keepaliveLost bool
	leaseGone     bool

	bridges    map[topology.DPID]*bridgeState
	dirty      map[topology.DPID]bool // status records to (re)write
	wrote      map[topology.DPID]bool // bridges whose current status record we wrote as master
	lastDocRev int64
}

func newLoop() *loop {
	return &loop{bridges: map[topology.DPID]*bridgeState{}, dirty: map[topology.DPID]bool{}, wrote: map[topology.DPID]bool{}}
}

func (st *loop) bridge(dpid topology.DPID) *bridgeState {
	b := st.bridges[dpid]
	if b == nil {
		b = &bridgeState{}
		st.bridges[dpid] = b
	}
	return b
}

// step is one pass: gather the view (reading etcd once), decide, then carry
// out the actions: local ones first, then etcd's, then enforcement and
// status records.
func (r *Replica) step(ctx context.Context, st *loop) {
	r.noteEvents(st)
	if st.keepaliveLost {
		r.checkLease(ctx, st)
	}
	doc, v := r.localView(st)
	var err error
	if st.keepaliveLost {
		// decide keeps our roles, or drops the lease once etcd has left it
		// unconfirmed for too long; nothing is read or written meanwhile.
		err = errLeaseUnconfirmed
	} else if err = r.ensureLease(ctx, st); err == nil {
		v.lease, v.epoch, v.health = st.lease, st.epoch, st.health()
		v.etcd, err = r.readCluster(ctx, st.lease)
	}
	a := decide(v)
	r.applyLocal(st, a)
	if a.dropLease != "" {
		r.loseLease(st, a.dropLease)
		err = fmt.Errorf("lease lost (%s)", a.dropLease)
	}
	if err == nil {
		err = r.applyEtcd(ctx, st, &a)
	}
	if err != nil && ctx.Err() == nil && !errors.Is(err, errLeaseUnconfirmed) && a.dropLease == "" {
		r.log.Warn("cluster coordination failed; keeping current flows and roles", "err", err)
	}
	if a.enforce {
		if err != nil {
			a.forget = nil // forget only what etcd confirmed gone
		}
		r.enforce(st, doc, v, a.forget)
	}
	if err == nil {
		r.writeStatuses(ctx, st, v, a.statuses)
	}
	r.setHealth(err, st)
	switch {
	case err != nil:
		r.setReady(fmt.Errorf("etcd: %w", err), st)
	case !v.policy.loaded:
		r.setReady(errors.New("policy document not loaded yet"), st)
	default:
		r.setReady(nil, st)
	}
}

// noteEvents marks the bridges of the controller's events for a status
// write.
func (r *Replica) noteEvents(st *loop) {
	for _, e := range r.takeEvents() {
		dpid := e.DPID
		st.dirty[dpid] = true
		if e.Kind == controller.EventLostMastership {
			// The switch saw a larger generation: someone else claimed the
			// bridge after us. Our lock must be gone; this pass's read
			// confirms it.
			r.log.Warn("switch refused our mastership (stale generation)", "dpid", dpid)
		}
	}
}

// localView is the part of the view that needs no etcd: memory, sessions
// and the policy snapshot (returned too, for enforcement).
func (r *Replica) localView(st *loop) (*topology.Document, view) {
	doc, rev, loaded := r.cfg.Policy.Snapshot()
	if loaded && rev != st.lastDocRev {
		r.log.Info("policy document changed", "revision", rev)
		st.lastDocRev = rev
	}
	v := view{
		me: r.cfg.NodeID, lease: st.lease, epoch: st.epoch, health: st.health(),
		policy: policyView{loaded: loaded, revision: rev, rejected: r.cfg.Policy.Rejected(), bridges: map[topology.DPID]bool{}},
		local:  map[topology.DPID]bool{},
		dirty:  st.dirty, wrote: st.wrote,
		masters: map[topology.DPID]uint64{}, known: make(map[topology.DPID]bool, len(st.bridges)),
	}
	if loaded && doc != nil {
		for _, b := range doc.Bridges {
			v.policy.bridges[b.DPID] = true
		}
	}
	for _, dpid := range r.cfg.Switches.Connected() {
		v.local[dpid] = true
	}
	for dpid, b := range st.bridges {
		v.known[dpid] = true
		if b.master {
			v.masters[dpid] = b.generation
		}
	}
	return doc, v
}

// applyLocal carries out what needs no etcd: demotions first (before any
// lock is released), the locks we keep, and records handed to new holders.
func (r *Replica) applyLocal(st *loop, a actions) {
	for _, d := range a.demotions {
		r.demote(st, d.dpid, d.reason)
	}
	for _, h := range a.holds {
		b := st.bridge(h.dpid)
		b.master, b.generation = true, h.generation
	}
	for _, dpid := range a.handovers {
		delete(st.wrote, dpid)
	}
}

// demote tells the controller SLAVE for a bridge (same flows, same
// generation: a SLAVE request with the current generation is never stale).
// It does nothing for a bridge we do not act as master of.
func (r *Replica) demote(st *loop, dpid topology.DPID, reason string) {
	b := st.bridges[dpid]
	if b == nil {
		return
	}
	b.master = false
	if b.last != nil && b.last.Master {
		d := *b.last
		d.Master = false
		r.cfg.Switches.SetDesired(d)
		b.last = &d
		r.log.Info("mastership released", "dpid", dpid, "generation", d.Generation, "reason", reason)
	}
}
