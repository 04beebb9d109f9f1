package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/op25b/op25b/controller"
	"github.com/op25b/op25b/topology"
)

// Defaults.
const (
	DefaultLeaseTTL = 2 * time.Second
	// epochKey holds the Unix time at which this etcd cluster first saw an
	// op25b replica. It is the high half of every OpenFlow generation id.
	epochKey = "epoch"
	// maxPhaseSleep caps the phase-boundary timer: a boundary years ahead
	// would overflow nothing in time.Timer, but a long sleep hides clock
	// steps and document edits; re-checking hourly is cheap.
	maxPhaseSleep = time.Hour
	// watchRetry is the pause before a broken watch is opened again.
	watchRetry = 500 * time.Millisecond
)

// Config configures a Replica.
type Config struct {
	NodeID   string           // this replica's id (unique in the cluster)
	Client   *clientv3.Client // etcd
	Prefix   string           // key prefix, e.g. store.DefaultPrefix
	Switches Switches
	Policy   Policy
	Compile  CompileFunc
	Records  Records // optional: replica registration and bridge status records
	LeaseTTL time.Duration
	// EtcdTimeout bounds each etcd request (one read, one batch, one
	// claim), so a lost quorum is noticed instead of blocking the loop.
	// Default 3s.
	EtcdTimeout time.Duration
	// Resync re-reads the cluster state even without watch events (a missed
	// event or a failed request is retried). Default 2s.
	Resync time.Duration
	// Logger should already carry replica=<NodeID>, as the daemon's logger
	// (shared with the controller) does.
	Logger *slog.Logger
	Now    func() time.Time
}

// Replica is one op25bd replica's view of the cluster: it holds the lease,
// publishes which bridges are connected here, claims and releases the
// mastership of bridges, and feeds the local controller their desired flows.
// All decisions are taken in the single goroutine of Run.
type Replica struct {
	cfg  Config
	log  *slog.Logger
	kick chan struct{}

	mu      sync.Mutex
	events  []controller.Event
	ready   error
	masters map[topology.DPID]uint64 // dpid → generation, for Masters()
	health  Health
}

// Health is what monitoring needs from the loop: whether its last pass
// reached etcd and whether it holds its lease, with the lease's expiry as
// of etcd's last keepalive answer.
type Health struct {
	// EtcdErr is the last pass's etcd failure; nil when it reached etcd.
	// Before the first pass it says so.
	EtcdErr error
	// LeaseHeld: the replica holds a lease (and so may hold mastership).
	LeaseHeld bool
	// LeaseExpires is when etcd would expire the lease without further
	// keepalives: the TTL etcd reported at its last renewal, from then.
	// Zero when no lease is held.
	LeaseExpires time.Time
}

// New checks cfg and returns a Replica; nothing runs until Run.
func New(cfg Config) (*Replica, error) {
	switch {
	case cfg.NodeID == "":
		return nil, errors.New("cluster: empty node id")
	case strings.Contains(cfg.NodeID, "/"):
		return nil, fmt.Errorf("cluster: node id %q contains '/'", cfg.NodeID)
	case cfg.Client == nil, cfg.Switches == nil, cfg.Policy == nil, cfg.Compile == nil:
		return nil, errors.New("cluster: Client, Switches, Policy and Compile are required")
	}
	if cfg.LeaseTTL <= 0 {
		cfg.LeaseTTL = DefaultLeaseTTL
	}
	if cfg.LeaseTTL < time.Second {
		return nil, fmt.Errorf("cluster: lease TTL %s is below etcd's 1s granularity", cfg.LeaseTTL)
	}
	if cfg.EtcdTimeout <= 0 {
		cfg.EtcdTimeout = 3 * time.Second
	}
	if cfg.Resync <= 0 {
		cfg.Resync = 2 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if !strings.HasSuffix(cfg.Prefix, "/") {
		cfg.Prefix += "/"
	}
	return &Replica{
		cfg:     cfg,
		log:     cfg.Logger,
		kick:    make(chan struct{}, 1),
		ready:   errors.New("cluster: not started"),
		masters: map[topology.DPID]uint64{},
		health:  Health{EtcdErr: errors.New("cluster: not started")},
	}, nil
}

// ControllerEvent tells the replica about an event of the local controller
// (wire it into controller.Config.Events). Every kind rewrites the bridge's
// status record; a lost mastership is also logged. It never blocks.
func (r *Replica) ControllerEvent(e controller.Event) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
	r.Kick()
}

// Kick asks the loop for an immediate pass.
func (r *Replica) Kick() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// Ready returns nil when this replica holds a lease, reached etcd on its last
// pass and has a policy document loaded.
func (r *Replica) Ready() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ready
}

// Health returns the loop's view of etcd and of its lease.
func (r *Replica) Health() Health {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.health
}

// setHealth records the etcd outcome of a pass and the lease state.
func (r *Replica) setHealth(etcdErr error, st *loop) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.health.EtcdErr = etcdErr
	r.health.LeaseHeld = st.lease != 0
	if st.lease == 0 {
		r.health.LeaseExpires = time.Time{}
	}
}

// leaseGone records that no lease is held (lost, or left).
func (r *Replica) leaseGone() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.health.LeaseHeld, r.health.LeaseExpires = false, time.Time{}
}

// leaseRenewed records the TTL etcd granted or renewed the lease with.
func (r *Replica) leaseRenewed(ttlSeconds int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.health.LeaseHeld = true
	r.health.LeaseExpires = r.cfg.Now().Add(time.Duration(ttlSeconds) * time.Second)
}

// Masters returns the bridges this replica currently masters, with the role
// generation it uses for each.
func (r *Replica) Masters() map[topology.DPID]uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[topology.DPID]uint64, len(r.masters))
	for k, v := range r.masters {
		out[k] = v
	}
	return out
}

// NodeID returns the replica id.
func (r *Replica) NodeID() string { return r.cfg.NodeID }

// Run takes part in the cluster until ctx is done, then releases mastership
// (tells the controller SLAVE, revokes the lease so others take over at
// once) and returns once every goroutine it started has stopped. It leaves
// the controller and the flows alone: flows stay installed.
//
// Run owns two watch goroutines and the lease's keepalive stream; the loop
// itself runs in the caller's goroutine.
func (r *Replica) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	var watches sync.WaitGroup
	for _, sub := range []string{"connected/", "masters/"} {
		prefix := r.cfg.Prefix + sub
		watches.Go(func() { r.watch(ctx, prefix) })
	}
	st := newLoop()
	r.loop(ctx, st)
	cancel()
	watches.Wait()
	r.leave(ctx, st)
	return nil
}

// loop runs passes until ctx is done: after a kick (a switch event, a
// watch event), a policy change, a phase boundary or a lease problem, and
// every Resync otherwise. Passes are at least minPassInterval apart, so a
// burst of events (a replica restart: a thousand switches reconnecting)
// is handled by a few passes and a few batched etcd writes, not one pass
// per event.
func (r *Replica) loop(ctx context.Context, st *loop) {
	resync := time.NewTicker(r.cfg.Resync)
	defer resync.Stop()
	phase := time.NewTimer(maxPhaseSleep)
	defer phase.Stop()
	for {
		// Taken before the pass reads the snapshot, so a change published
		// during the pass still wakes the next select.
		changed := r.cfg.Policy.Changed()
		passed := time.Now()
		r.step(ctx, st)
		phase.Reset(r.phaseSleep(st))
		if !r.wait(ctx, st, changed, resync.C, phase.C) {
			return
		}
		if pause := minPassInterval - time.Since(passed); pause > 0 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(pause):
			}
		}
	}
}

// minPassInterval spaces passes: a burst of events within it is one pass.
// Small against every reaction time that matters (a takeover is bounded by
// the lease TTL, a policy change by the switches' own work).
const minPassInterval = 20 * time.Millisecond

// leaseRetry is how often a pass asks etcd about a lease whose keepalive
// stream stopped answering.
const leaseRetry = 250 * time.Millisecond

// wait blocks until the next pass is due, and reports false when ctx is
// done. Keepalive renewals are recorded without a pass.
func (r *Replica) wait(ctx context.Context, st *loop, changed <-chan struct{}, resync <-chan time.Time, phase <-chan time.Time) bool {
	var retry <-chan time.Time
	if st.keepaliveLost {
		retry = time.After(leaseRetry)
	}
	for {
		select {
		case <-ctx.Done():
			return false
		case <-r.kick:
		case <-changed:
		case <-resync:
		case <-retry:
		case <-phase:
			r.log.Info("phase boundary reached, recompiling")
		case resp, ok := <-st.keepalive:
			r.noteKeepalive(st, resp, ok)
			if !st.keepaliveLost {
				continue // a renewal: nothing to decide
			}
		}
		return true
	}
}

// phaseSleep is the time until the earliest phase boundary of any enforced
// bridge, capped so far-future boundaries are re-checked.
func (r *Replica) phaseSleep(st *loop) time.Duration {
	now := r.cfg.Now()
	sleep := maxPhaseSleep
	for _, b := range st.bridges {
		if b.validUntil.IsZero() {
			continue
		}
		// Sub saturates at ~292 years for far boundaries; compare before
		// adding the margin so the sum cannot overflow.
		d := b.validUntil.Sub(now)
		if d >= sleep {
			continue
		}
		// A few ms late so that the compile sees from <= now.
		if d += 5 * time.Millisecond; d < sleep {
			sleep = d
		}
	}
	return max(sleep, 0)
}

// watch kicks the loop on every change under prefix. The loop re-reads the
// whole state, so a lost event only delays a pass until the next resync.
func (r *Replica) watch(ctx context.Context, prefix string) {
	for ctx.Err() == nil {
		// WithRequireLeader: without it a watch on a member that lost quorum
		// stays silently open forever.
		wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
		for resp := range r.cfg.Client.Watch(wctx, prefix, clientv3.WithPrefix()) {
			if resp.Err() != nil {
				break
			}
			r.Kick()
		}
		cancel()
		select {
		case <-ctx.Done():
		case <-time.After(watchRetry):
			r.Kick()
		}
	}
}

func (r *Replica) takeEvents() []controller.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	ev := r.events
	r.events = nil
	return ev
}

func (r *Replica) setReady(err error, st *loop) {
	masters := map[topology.DPID]uint64{}
	for dpid, b := range st.bridges {
		if b.master {
			masters[dpid] = b.generation
		}
	}
	r.mu.Lock()
	r.ready = err
	r.masters = masters
	r.mu.Unlock()
}

// etcdCtx bounds one etcd request.
func (r *Replica) etcdCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(clientv3.WithRequireLeader(ctx), r.cfg.EtcdTimeout)
}
