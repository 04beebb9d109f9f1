package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/op25b/op25b/flows"
	"github.com/op25b/op25b/topology"
	"github.com/op25b/op25b/topology/store"
)

// Defaults.
const (
	DefaultLeaseTTL = 10 * time.Second
	// epochKey holds the Unix time at which this etcd cluster first saw an
	// op25b replica. It is the high half of every OpenFlow generation id.
	epochKey = "epoch"
	// maxPhaseSleep caps the phase-boundary timer: a boundary years ahead
	// would overflow nothing in time.Timer, but a long sleep hides clock
	// steps and document edits; re-checking hourly is cheap.
	maxPhaseSleep = time.Hour
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
	// EtcdTimeout bounds every etcd request, so a lost quorum is noticed
	// instead of blocking the loop. Default 3s.
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
	events  []switchEvent
	ready   error
	masters map[string]uint64 // dpid → generation, for Masters()
}

type switchEvent struct {
	kind EventKind
	dpid string
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
		masters: map[string]uint64{},
	}, nil
}

// SwitchEvent tells the replica about a switch event of the local controller
// (wired to controller.Config.Events). It never blocks.
func (r *Replica) SwitchEvent(kind EventKind, dpid string) {
	r.mu.Lock()
	r.events = append(r.events, switchEvent{kind, dpid})
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

// Masters returns the bridges this replica currently masters, with the role
// generation it uses for each.
func (r *Replica) Masters() map[string]uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]uint64, len(r.masters))
	for k, v := range r.masters {
		out[k] = v
	}
	return out
}

// NodeID returns the replica id.
func (r *Replica) NodeID() string { return r.cfg.NodeID }

// bridgeState is the loop's knowledge of one bridge.
type bridgeState struct {
	master     bool
	generation uint64

	flows       []flows.Flow
	compiledRev int64
	compiled    bool
	validUntil  time.Time // next phase boundary after the compile; zero = none
	last        *Desired  // what the controller was last told
}

// loop is the state owned by Run's goroutine.
type loop struct {
	lease     clientv3.LeaseID
	lostLease clientv3.LeaseID // previous lease, revoked once etcd answers
	keepalive <-chan *clientv3.LeaseKeepAliveResponse
	stopLease context.CancelFunc
	bridges   map[string]*bridgeState
	dirty     map[string]bool // status records to (re)write
	wrote     map[string]bool // bridges whose current status record we wrote as master
	// connected is the last read of connected/: dpid → replica ids.
	connected  map[string]map[string]bool
	etcdOK     bool
	lastDocRev int64
	epoch      uint64 // from epochKey, read once per process
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
func (st *loop) generation(createRev int64) uint64 {
	return st.epoch<<32 | uint64(createRev)&0xffffffff
}

// Run takes part in the cluster until ctx is done, then releases mastership
// (tells the controller SLAVE, revokes the lease so others take over at
// once). It leaves the controller and the flows alone: flows stay installed.
func (r *Replica) Run(ctx context.Context) error {
	runCtx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()

	for _, sub := range []string{"connected/", "masters/"} {
		wg.Add(1)
		go func(prefix string) {
			defer wg.Done()
			r.watch(runCtx, prefix)
		}(r.cfg.Prefix + sub)
	}

	st := &loop{bridges: map[string]*bridgeState{}, dirty: map[string]bool{}, wrote: map[string]bool{}}
	defer r.release(st)

	resync := time.NewTicker(r.cfg.Resync)
	defer resync.Stop()
	phase := time.NewTimer(maxPhaseSleep)
	defer phase.Stop()

	for {
		// Taken before the pass reads the snapshot, so a change published
		// during the pass still wakes the next select.
		changed := r.cfg.Policy.Changed()
		r.step(runCtx, st)
		phase.Reset(r.phaseSleep(st))
		select {
		case <-runCtx.Done():
			return nil
		case <-r.kick:
		case <-changed:
		case <-resync.C:
		case <-phase.C:
			r.log.Info("phase boundary reached, recompiling")
		case resp, ok := <-st.keepalive:
			if !ok || (resp != nil && resp.TTL <= 0) {
				r.checkLease(runCtx, st)
			}
		}
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
	if sleep < 0 {
		sleep = 0
	}
	return sleep
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
		case <-time.After(500 * time.Millisecond):
			r.Kick()
		}
	}
}

func (r *Replica) takeEvents() []switchEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	ev := r.events
	r.events = nil
	return ev
}

// step is one pass: coordinate through etcd, then enforce locally, then
// publish status.
func (r *Replica) step(ctx context.Context, st *loop) {
	for _, ev := range r.takeEvents() {
		st.dirty[ev.dpid] = true
		if ev.kind == SwitchLostMastership {
			// The switch saw a larger generation: someone else claimed the
			// bridge after us. Our lock must be gone; the re-read below
			// confirms it.
			r.log.Warn("switch refused our mastership (stale generation)", "dpid", ev.dpid)
		}
	}
	doc, rev, loaded := r.cfg.Policy.Snapshot()
	local := map[string]bool{}
	for _, dpid := range r.cfg.Switches.Connected() {
		local[topology.CanonicalDPID(dpid)] = true
	}
	if loaded && rev != st.lastDocRev {
		r.log.Info("policy document changed", "revision", rev)
		st.lastDocRev = rev
	}

	policyRev := int64(0)
	if loaded {
		policyRev = rev
	}
	err := r.coordinate(ctx, st, doc, policyRev, local)
	st.etcdOK = err == nil
	if err != nil && ctx.Err() == nil {
		r.log.Warn("cluster coordination failed; keeping current flows and roles", "err", err)
	}
	// Revision 0 means no document was ever stored in this etcd: a replica
	// started against an empty cluster (a fresh embedded etcd, a lost data
	// dir) must not replace a bridge's existing policy with "block nothing".
	// Once any document is stored, even an empty one, it is enforced.
	if loaded && rev > 0 {
		r.enforce(st, doc, rev, local)
	}
	if err == nil {
		r.writeStatuses(ctx, st, doc)
	}

	switch {
	case err != nil:
		r.setReady(fmt.Errorf("etcd: %w", err), st)
	case !loaded:
		r.setReady(errors.New("policy document not loaded yet"), st)
	default:
		r.setReady(nil, st)
	}
}

func (r *Replica) setReady(err error, st *loop) {
	masters := map[string]uint64{}
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

func (r *Replica) etcdCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(clientv3.WithRequireLeader(ctx), r.cfg.EtcdTimeout)
}

// grant obtains a fresh lease, starts its keepalive and registers the
// replica.
func (r *Replica) grant(ctx context.Context, st *loop) error {
	cctx, cancel := r.etcdCtx(ctx)
	defer cancel()
	if st.epoch == 0 {
		epoch, err := r.readEpoch(cctx)
		if err != nil {
			return err
		}
		st.epoch = epoch
	}
	ttl := int64((r.cfg.LeaseTTL + time.Second - 1) / time.Second)
	lease, err := r.cfg.Client.Grant(cctx, ttl)
	if err != nil {
		return fmt.Errorf("grant lease: %w", err)
	}
	kctx, stop := context.WithCancel(ctx)
	ka, err := r.cfg.Client.KeepAlive(kctx, lease.ID)
	if err != nil {
		stop()
		return fmt.Errorf("keep lease %x alive: %w", lease.ID, err)
	}
	st.lease, st.keepalive, st.stopLease = lease.ID, ka, stop
	r.log.Info("joined cluster", "lease", fmt.Sprintf("%x", lease.ID), "ttl", r.cfg.LeaseTTL)
	if st.lostLease != 0 {
		// etcd may have kept the old lease alive across a leader change;
		// revoking it drops our stale locks and records at once.
		if _, err := r.cfg.Client.Revoke(cctx, st.lostLease); err == nil {
			r.log.Info("revoked previous lease", "lease", fmt.Sprintf("%x", st.lostLease))
		}
		st.lostLease = 0
	}
	if r.cfg.Records != nil {
		if err := r.cfg.Records.RegisterReplica(cctx, lease.ID); err != nil {
			return fmt.Errorf("register replica: %w", err)
		}
	}
	return nil
}

// checkLease runs when the client stopped renewing the lease: the
// keepalive stream broke for longer than the TTL (e.g. an etcd leader
// election after a member died) or etcd said it expired. The client's
// deadline passing does not mean etcd expired it — a new leader extends every
// lease — so ask etcd. While the lease exists nobody else can hold our locks,
// so keeping mastership is safe; if it is gone or etcd cannot say, step down.
func (r *Replica) checkLease(ctx context.Context, st *loop) {
	if st.lease == 0 {
		return
	}
	cctx, cancel := r.etcdCtx(ctx)
	ttl, err := r.cfg.Client.TimeToLive(cctx, st.lease)
	cancel()
	if err == nil && ttl.TTL > 0 {
		st.stopLease()
		kctx, stop := context.WithCancel(ctx)
		ka, err := r.cfg.Client.KeepAlive(kctx, st.lease)
		if err == nil {
			st.keepalive, st.stopLease = ka, stop
			r.log.Warn("lease keepalive interrupted but the lease is alive; resumed", "lease", fmt.Sprintf("%x", st.lease), "ttl_left", ttl.TTL)
			return
		}
		stop()
	}
	r.loseLease(ctx, st)
}

// loseLease is called when the lease could not be renewed within its TTL:
// etcd may already have handed our bridges to another replica, so stop acting
// as master at once. The flows stay; a slave only stops writing.
func (r *Replica) loseLease(ctx context.Context, st *loop) {
	if st.lease == 0 {
		return
	}
	r.log.Warn("lease lost; stepping down to slave on every bridge", "lease", fmt.Sprintf("%x", st.lease))
	for dpid, b := range st.bridges {
		if b.master {
			r.demote(dpid, b)
		}
	}
	st.stopLease()
	st.lostLease = st.lease
	st.lease, st.keepalive, st.stopLease = 0, nil, nil
	r.setReady(errors.New("etcd lease lost"), st)
}

// demote tells the controller SLAVE for a bridge (same flows, same
// generation: a SLAVE request with the current generation is never stale).
func (r *Replica) demote(dpid string, b *bridgeState) {
	b.master = false
	if b.last != nil && b.last.Master {
		d := *b.last
		d.Master = false
		r.cfg.Switches.SetDesired(d)
		b.last = &d
		r.log.Info("mastership released", "dpid", dpid, "generation", d.Generation)
	}
}

type lock struct {
	holder            string
	lease             clientv3.LeaseID
	createRev, modRev int64
}

// coordinate publishes our connected bridges and claims/releases locks.
// policyRev is the revision of the policy snapshot the pass enforces (0 when
// none is loaded).
func (r *Replica) coordinate(ctx context.Context, st *loop, doc *topology.Document, policyRev int64, local map[string]bool) error {
	if st.lease == 0 {
		if err := r.grant(ctx, st); err != nil {
			return err
		}
	}
	me := r.cfg.NodeID
	connPrefix, lockPrefix := r.cfg.Prefix+"connected/", r.cfg.Prefix+"masters/"
	docKey := r.cfg.Prefix + store.DocumentKey
	cctx, cancel := r.etcdCtx(ctx)
	defer cancel()
	resp, err := r.cfg.Client.Txn(cctx).Then(
		clientv3.OpGet(connPrefix, clientv3.WithPrefix()),
		clientv3.OpGet(lockPrefix, clientv3.WithPrefix()),
	).Commit()
	if err != nil {
		return fmt.Errorf("read cluster state: %w", err)
	}
	connected := map[string]map[string]bool{}
	for _, kv := range resp.Responses[0].GetResponseRange().Kvs {
		dpid, replica, ok := strings.Cut(strings.TrimPrefix(string(kv.Key), connPrefix), "/")
		if !ok {
			continue
		}
		if replica == me && clientv3.LeaseID(kv.Lease) != st.lease {
			// Left over from our previous lease (etcd was away): rewrite it
			// under the current one, or it would vanish with the old lease.
			continue
		}
		if connected[dpid] == nil {
			connected[dpid] = map[string]bool{}
		}
		connected[dpid][replica] = true
	}
	locks := map[string]lock{}
	for _, kv := range resp.Responses[1].GetResponseRange().Kvs {
		locks[strings.TrimPrefix(string(kv.Key), lockPrefix)] = lock{
			holder: string(kv.Value), lease: clientv3.LeaseID(kv.Lease),
			createRev: kv.CreateRevision, modRev: kv.ModRevision,
		}
	}

	// Publish which bridges are connected here.
	for dpid := range local {
		if connected[dpid][me] {
			continue
		}
		if _, err := r.cfg.Client.Put(cctx, connPrefix+dpid+"/"+me, "", clientv3.WithLease(st.lease)); err != nil {
			return fmt.Errorf("publish connected %s: %w", dpid, err)
		}
		if connected[dpid] == nil {
			connected[dpid] = map[string]bool{}
		}
		connected[dpid][me] = true
	}
	for dpid, reps := range connected {
		if !reps[me] || local[dpid] {
			continue
		}
		if _, err := r.cfg.Client.Delete(cctx, connPrefix+dpid+"/"+me); err != nil {
			return fmt.Errorf("unpublish connected %s: %w", dpid, err)
		}
		delete(reps, me)
	}
	st.connected = connected

	// Every bridge we may have to decide about.
	all := map[string]bool{}
	if doc != nil {
		for _, b := range doc.Bridges {
			all[topology.CanonicalDPID(b.DPID)] = true
		}
	}
	for dpid := range connected {
		all[dpid] = true
	}
	for dpid, lk := range locks {
		if lk.holder == me {
			all[dpid] = true
		}
	}
	for dpid, b := range st.bridges {
		if b.master {
			all[dpid] = true
		}
	}

	for _, dpid := range sortedKeys(all) {
		b := st.bridge(dpid)
		candidates := make([]string, 0, len(connected[dpid]))
		for id := range connected[dpid] {
			candidates = append(candidates, id)
		}
		assignee := Assign(dpid, candidates)
		lk, held := locks[dpid]
		key := lockPrefix + dpid
		switch {
		case held && lk.holder == me && (lk.lease != st.lease || assignee != me):
			// Release: SLAVE first, then free the lock, so there is no
			// moment with two replicas believing they are master.
			r.demote(dpid, b)
			if _, err := r.cfg.Client.Txn(cctx).
				If(clientv3.Compare(clientv3.ModRevision(key), "=", lk.modRev)).
				Then(clientv3.OpDelete(key)).Commit(); err != nil {
				return fmt.Errorf("release %s: %w", dpid, err)
			}
			r.log.Info("lock released", "dpid", dpid, "assignee", assignee)
		case held && lk.holder == me:
			if !b.master || b.generation != st.generation(lk.createRev) {
				st.dirty[dpid] = true
			}
			b.master, b.generation = true, st.generation(lk.createRev)
		case held:
			delete(st.wrote, dpid) // the holder writes the record now
			if b.master {
				r.log.Warn("lock held by another replica", "dpid", dpid, "holder", lk.holder)
				r.demote(dpid, b)
			}
		case assignee == me:
			cmps := []clientv3.Cmp{clientv3.Compare(clientv3.CreateRevision(key), "=", 0)}
			if !r.cfg.Policy.Rejected() {
				// Claim only with a policy snapshot at least as new as the
				// document in etcd. A replica back from a partition, whose
				// watch has not caught up yet, would otherwise become master
				// with a new (valid) generation and push its old document,
				// undoing changes the previous master applied meanwhile.
				cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(docKey), "<", policyRev+1))
			}
			tr, err := r.cfg.Client.Txn(cctx).If(cmps...).
				Then(clientv3.OpPut(key, me, clientv3.WithLease(st.lease))).
				Else(clientv3.OpGet(docKey, clientv3.WithKeysOnly())).Commit()
			if err != nil {
				return fmt.Errorf("claim %s: %w", dpid, err)
			}
			if !tr.Succeeded {
				if kvs := tr.Responses[0].GetResponseRange().Kvs; len(kvs) == 1 && kvs[0].ModRevision > policyRev {
					r.log.Info("not claiming until the policy snapshot catches up with etcd", "dpid", dpid,
						"revision", policyRev, "etcd_revision", kvs[0].ModRevision)
				}
			}
			if tr.Succeeded {
				// The key was created by this txn, so its CreateRevision is
				// the txn's revision: the generation for ROLE_REQUEST.
				b.master, b.generation = true, st.generation(tr.Header.Revision)
				st.dirty[dpid] = true
				r.log.Info("mastership claimed", "dpid", dpid, "generation", b.generation)
			}
		default:
			if b.master {
				r.demote(dpid, b)
			}
		}
	}
	return nil
}

// readEpoch returns the cluster's epoch, creating it (now, in Unix seconds)
// if this is the first replica ever to use this etcd.
func (r *Replica) readEpoch(ctx context.Context) (uint64, error) {
	key := r.cfg.Prefix + epochKey
	now := strconv.FormatInt(r.cfg.Now().Unix(), 10)
	resp, err := r.cfg.Client.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
		Then(clientv3.OpPut(key, now)).
		Else(clientv3.OpGet(key)).Commit()
	if err != nil {
		return 0, fmt.Errorf("read cluster epoch: %w", err)
	}
	value := now
	if !resp.Succeeded {
		kvs := resp.Responses[0].GetResponseRange().Kvs
		if len(kvs) != 1 {
			return 0, fmt.Errorf("read cluster epoch: %s vanished", key)
		}
		value = string(kvs[0].Value)
	}
	epoch, err := strconv.ParseUint(value, 10, 31)
	if err != nil || epoch == 0 {
		return 0, fmt.Errorf("cluster epoch %s = %q is not a Unix time in seconds", key, value)
	}
	return epoch, nil
}

func (st *loop) bridge(dpid string) *bridgeState {
	b := st.bridges[dpid]
	if b == nil {
		b = &bridgeState{}
		st.bridges[dpid] = b
	}
	return b
}

// enforce compiles the desired flows of every bridge connected here or
// mastered here and hands them to the controller when anything changed.
func (r *Replica) enforce(st *loop, doc *topology.Document, rev int64, local map[string]bool) {
	now := r.cfg.Now()
	for dpid := range local {
		st.bridge(dpid)
	}
	inDoc := map[string]bool{}
	for _, b := range doc.Bridges {
		inDoc[topology.CanonicalDPID(b.DPID)] = true
	}
	for dpid, b := range st.bridges {
		if !local[dpid] && !b.master {
			// Forget only what is certainly gone: not in the document, not
			// connected, and etcd answered (never because etcd is down).
			if st.etcdOK && !inDoc[dpid] {
				if b.last != nil {
					r.cfg.Switches.Forget(dpid)
				}
				delete(st.bridges, dpid)
			}
			continue
		}
		recompiled := false
		if !b.compiled || b.compiledRev != rev || (!b.validUntil.IsZero() && !now.Before(b.validUntil)) {
			fl, err := r.cfg.Compile(doc, dpid, now)
			if err != nil {
				// Keep whatever the controller has; never push a partial set.
				r.log.Error("compile failed; keeping previous desired flows", "dpid", dpid, "revision", rev, "err", err)
				b.validUntil = now.Add(5 * time.Second) // retry later, without spinning
				continue
			}
			b.flows, b.compiledRev, b.compiled, recompiled = fl, rev, true, true
			b.validUntil = time.Time{}
			if next, ok := doc.NextChange(now); ok {
				b.validUntil = next
			}
		}
		if !recompiled && b.last != nil && b.last.Master == b.master && b.last.Generation == b.generation {
			continue
		}
		d := Desired{DPID: dpid, Revision: rev, Flows: b.flows, Master: b.master, Generation: b.generation}
		r.cfg.Switches.SetDesired(d)
		b.last = &d
		r.log.Debug("desired state set", "dpid", dpid, "revision", rev, "flows", len(d.Flows), "master", d.Master, "generation", d.Generation)
	}
}

// writeStatuses writes the status record of every bridge we master that had
// an event since the last write.
func (r *Replica) writeStatuses(ctx context.Context, st *loop, doc *topology.Document) {
	if r.cfg.Records == nil || st.lease == 0 {
		st.dirty = map[string]bool{}
		return
	}
	for dpid := range st.dirty {
		b := st.bridges[dpid]
		master := b != nil && b.master
		// A bridge we reported as master that is now connected to no
		// replica: nobody else will write its record, so we record that it
		// is disconnected (otherwise status would claim it is connected).
		orphan := !master && st.wrote[dpid] && len(st.connected[dpid]) == 0
		if !master && !orphan {
			delete(st.dirty, dpid)
			continue
		}
		rep, _ := r.cfg.Switches.Report(dpid)
		_, registered := doc.BridgePop(dpid)
		status := BridgeStatus{
			DPID: dpid, Connected: rep.Connected, Master: r.cfg.NodeID,
			AppliedRevision: rep.AppliedRevision, Flows: rep.Flows, LastError: rep.LastError,
			LastReconcile: rep.LastReconcile, Registered: registered,
		}
		if orphan {
			status.Connected, status.Master = false, ""
		}
		cctx, cancel := r.etcdCtx(ctx)
		err := r.cfg.Records.PutBridgeStatus(cctx, status, st.lease)
		cancel()
		if err != nil {
			r.log.Warn("write bridge status", "dpid", dpid, "err", err)
			return // retried on the next pass
		}
		delete(st.dirty, dpid)
		if master {
			st.wrote[dpid] = true
		} else {
			delete(st.wrote, dpid)
		}
	}
}

// release steps down everywhere and revokes the lease, which deletes our
// locks, connected records and status records at once so another replica
// takes over without waiting for the TTL.
func (r *Replica) release(st *loop) {
	for dpid, b := range st.bridges {
		if b.master {
			r.demote(dpid, b)
		}
	}
	if st.lease != 0 {
		ctx, cancel := context.WithTimeout(context.Background(), r.cfg.EtcdTimeout)
		if _, err := r.cfg.Client.Revoke(ctx, st.lease); err != nil {
			r.log.Warn("revoke lease on shutdown; others take over after the TTL", "err", err)
		}
		cancel()
		st.stopLease()
	}
	r.setReady(errors.New("cluster: stopped"), st)
	r.log.Info("left cluster")
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
