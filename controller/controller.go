// Package controller is the switch side of op25b (policy → flows → switch →
// status): it accepts OpenFlow 1.3 connections from Open vSwitch bridges,
// claims the MASTER or SLAVE role it is told to, and makes each bridge's
// op25b-owned flows equal to the desired set handed in by SetDesired.
//
// It never decides policy: the caller (etcd and mastership, package
// controller/cluster) says, per datapath, which flows it should have, at
// which revision, and whether this replica is master with which generation.
// The controller reports back through Status and Events.
//
// Safety rules it keeps, because subscribers' mail depends on them:
//   - only flows whose cookie carries flows.CookieMarker are dumped, modified
//     or deleted; deletes are strict and exact on the cookie; never a
//     delete-all;
//   - changes go in one ONF bundle (ATOMIC|ORDERED), discarded if the switch
//     rejected any part of it, so the switch moves from one complete policy
//     to the next;
//   - closing a session (shutdown, lost etcd, lost mastership) leaves flows
//     in place: bridges run fail-mode=secure and keep enforcing;
//   - a switch that connects is reconciled from what it has, so a restart
//     changes nothing that is already right (hitless).
package controller

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"slices"
	"sort"
	"sync"
	"time"

	of "github.com/netrack/openflow"
	"github.com/netrack/openflow/ofp"

	"github.com/op25b/op25b/controller/ofwire"
	"github.com/op25b/op25b/flows"
	"github.com/op25b/op25b/topology"
)

// Config tunes the controller. Zero durations take the defaults.
type Config struct {
	// AuditInterval is how often a master does a full audit (dump, diff,
	// repair) of a bridge whose switch refuses flow monitoring, and how
	// soon a failed reconcile is retried; default 30s.
	AuditInterval time.Duration
	// AuditSweep is how often a master does a full audit of a bridge whose
	// flow tables it watches through flow monitoring (drift is repaired as
	// it is reported; the sweep is a safety net); default 10m.
	AuditSweep     time.Duration
	EchoInterval   time.Duration // our keepalive, default 5s
	DeadTimeout    time.Duration // no traffic from switch for this long → disconnect, default 15s
	RequestTimeout time.Duration // barrier/reply wait, default 30s
	// HandshakeTimeout bounds a new connection's TLS handshake (when the
	// listener is a tls.NewListener) plus the OpenFlow HELLO and FEATURES
	// exchange, default 10s: a peer that connects and stays silent holds a
	// slot for at most this long.
	HandshakeTimeout time.Duration
	// MaxConnections caps the connections being served at once (handshaking
	// or established), default DefaultMaxConnections. When it is reached
	// Serve stops accepting (new peers wait in the kernel's backlog) until
	// one ends, so a flood of idle connections costs bounded memory and, with
	// HandshakeTimeout, delays a real switch by at most that timeout.
	MaxConnections int
	// AuthorizeDatapath, when set, decides whether a TLS connection may
	// become the session of the datapath id it claims (its FEATURES_REPLY),
	// given the switch's verified certificate. It runs before the
	// connection can replace an existing session of that dpid; an error
	// closes the new connection, is logged, and leaves the old session
	// alone. Plain-TCP connections authenticate nothing and are not asked.
	AuthorizeDatapath func(dpid topology.DPID, cert *x509.Certificate) error
	Logger            *slog.Logger // every switch line carries dpid=…
	Events            func(Event)  // optional; called from session goroutines, must not block long
	// Offenders, when set, receives every read of the offender table of
	// each bridge this replica masters (flows.RoleOffender), as attempts
	// per (pool, source, destination); called from the session's worker
	// goroutine, it must not block long. nil: offender tables are not read.
	Offenders func(dpid topology.DPID, r OffenderRead)
	// OffenderInterval is how often a master reads each bridge's offender
	// table, default DefaultOffenderInterval. Keep it well inside the
	// table's idle timeout: a flow's last count must be read before the
	// flow expires.
	OffenderInterval time.Duration

	// noMonitor never subscribes to flow monitoring, as if every switch
	// refused it (benchmarks compare the two).
	noMonitor bool
}

func (c Config) withDefaults() Config {
	if c.AuditInterval <= 0 {
		c.AuditInterval = 30 * time.Second
	}
	if c.AuditSweep <= 0 {
		c.AuditSweep = DefaultAuditSweep
	}
	if c.EchoInterval <= 0 {
		c.EchoInterval = 5 * time.Second
	}
	if c.DeadTimeout <= 0 {
		c.DeadTimeout = 15 * time.Second
	}
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = 30 * time.Second
	}
	if c.HandshakeTimeout <= 0 {
		c.HandshakeTimeout = 10 * time.Second
	}
	if c.MaxConnections <= 0 {
		c.MaxConnections = DefaultMaxConnections
	}
	if c.OffenderInterval <= 0 {
		c.OffenderInterval = DefaultOffenderInterval
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// DefaultAuditSweep is Config.AuditSweep's default: minutes, not seconds.
// A full audit of a 200k-flow bridge costs the controller and the switch
// a few hundred milliseconds of CPU each (BENCHMARKS.md), and with flow
// monitoring it finds nothing in steady state.
const DefaultAuditSweep = 10 * time.Minute

// DefaultMaxConnections is Config.MaxConnections' default: far above the
// bridges one replica masters in a PoP, far below what exhausts it.
const DefaultMaxConnections = 1024

// EventKind says what happened to a bridge.
type EventKind int

// Event kinds.
const (
	EventConnected EventKind = iota + 1
	EventDisconnected
	// EventLostMastership: the switch answered our MASTER request with
	// OFPRRFC_STALE, or rejected a write with OFPBRC_IS_SLAVE: another
	// replica holds a newer generation. The session stops writing.
	EventLostMastership
	// EventReconciled: the bridge's op25b flows equal the desired set of
	// Revision (acknowledged by a barrier / bundle commit).
	EventReconciled
	// EventReconcileFailed: a reconcile did not complete; Err says why.
	// Nothing was half-applied when bundles are supported.
	EventReconcileFailed
)

func (k EventKind) String() string {
	switch k {
	case EventConnected:
		return "connected"
	case EventDisconnected:
		return "disconnected"
	case EventLostMastership:
		return "lost-mastership"
	case EventReconciled:
		return "reconciled"
	case EventReconcileFailed:
		return "reconcile-failed"
	}
	return fmt.Sprintf("EventKind(%d)", int(k))
}

// Event reports one change of a bridge's state.
type Event struct {
	Kind     EventKind
	DPID     topology.DPID
	Err      error
	Revision int64
	Duration time.Duration // EventReconciled/Failed: wall time of the reconcile
	Changes  int           // EventReconciled: flow-mods sent
	Audit    bool          // the reconcile was a periodic audit, or a repair of drift
	// Monitor: the flow-mods repaired drift reported by flow monitoring,
	// without a dump (Audit is set too).
	Monitor bool
}

// Desired is what one bridge should have. Master=false → request SLAVE
// role and never write flows.
type Desired struct {
	DPID     topology.DPID
	Revision int64 // etcd revision of the policy these flows came from
	// Flows is the complete desired set (from flows.Compile). The
	// controller keeps it: the caller must not modify it afterwards (one
	// slice handed to many bridges is indexed once).
	Flows      []flows.Flow
	Master     bool
	Generation uint64 // OpenFlow role generation_id (from an etcd revision)
}

// BridgeStatus is the controller's view of one bridge.
type BridgeStatus struct {
	DPID            topology.DPID
	Connected       bool
	Role            string // "master", "slave", "none"
	AppliedRevision int64
	Flows           int
	LastError       string
	LastReconcile   time.Time
	RemoteAddr      string
	DriftRepairs    uint64 // flow-mods sent to undo changes made behind op25b's back
	OpenFlowErrors  uint64
	FlowMods        uint64 // flow-mods sent since the controller started
	Reconciles      uint64 // successful reconciles (including no-op audits)
	// DriftDetection is how this master finds drift: DriftMonitor (the
	// switch reports flow-table changes; full audit every AuditSweep) or
	// DriftPoll (full audit every AuditInterval); "" when not master.
	DriftDetection string
	FlowDumps      uint64 // full dumps of the bridge's op25b flows (reconciles, audits, Installed)
	MonitorResyncs uint64 // full audits owed to a flow monitor pause or overflow
	// DesiredRevision is the document revision of the last SetDesired:
	// what AppliedRevision catches up with on a master.
	DesiredRevision int64
	// ReconcileFailures counts reconciles that did not complete.
	ReconcileFailures uint64
	// MastershipChanges counts this controller's role on the bridge
	// turning MASTER or ceasing to be (granted, demoted, refused as stale,
	// or the session lost while master).
	MastershipChanges uint64
	OffenderReads     uint64 // reads of the offender table (Config.Offenders)
	OffenderFlows     int    // flows learned in the offender table at the last read
}

// setRole changes the role, counting a change into or out of MASTER.
func (st *BridgeStatus) setRole(role string) {
	if (st.Role == "master") != (role == "master") {
		st.MastershipChanges++
	}
	st.Role = role
}

// FlowCounter is the packet/byte count of one op25b flow.
type FlowCounter struct {
	Key     flows.Key
	Cookie  uint64
	Packets uint64
	Bytes   uint64
	// Observed marks a flow of the drop-count table that forwards what it
	// counts (a pool whose active phase observes): packets the policy
	// would drop, not dropped ones.
	Observed bool
}

// Controller serves OpenFlow switches. All methods are safe for concurrent use.
type Controller struct {
	cfg Config
	log *slog.Logger

	mu      sync.Mutex
	bridges map[topology.DPID]*bridgeState

	// Recently indexed desired sets, by the identity of the caller's slice
	// (indexed).
	imu       sync.Mutex
	indexes   [16]indexEntry
	nextIndex int
}

type indexEntry struct {
	key   *flows.Flow
	n     int
	owned []flows.Flow
	idx   *desiredIndex
}

// bridgeState is guarded by Controller.mu.
type bridgeState struct {
	status  BridgeStatus
	desired *Desired
	index   *desiredIndex  // desired.Flows canonicalised and indexed once
	sess    *switchSession // current session, nil when disconnected
	drops   []FlowCounter
	// offender is the meter of the current mastership, nil when this
	// replica does not master the bridge.
	offender *offenderMeter
}

// New returns a controller; nothing runs until Serve.
func New(cfg Config) *Controller {
	cfg = cfg.withDefaults()
	return &Controller{cfg: cfg, log: cfg.Logger, bridges: make(map[topology.DPID]*bridgeState)}
}

func (c *Controller) emit(e Event) {
	if c.cfg.Events != nil {
		c.cfg.Events(e)
	}
}

// bridge returns the state for dpid, creating it. c.mu must be held.
func (c *Controller) bridge(dpid topology.DPID) *bridgeState {
	b := c.bridges[dpid]
	if b == nil {
		b = &bridgeState{status: BridgeStatus{DPID: dpid, Role: "none"}}
		c.bridges[dpid] = b
	}
	return b
}

// SetDesired records what dpid should have; latest wins. A connected
// session is woken to apply it (role request first, then reconcile).
func (c *Controller) SetDesired(d Desired) {
	owned, idx := c.indexed(d)
	d.Flows = owned
	c.mu.Lock()
	b := c.bridge(d.DPID)
	b.desired, b.index = &d, idx
	b.status.DesiredRevision = d.Revision
	s := b.sess
	c.mu.Unlock()
	if s != nil {
		s.poke()
	}
}

// indexed returns d's flows without any that lack op25b's cookie, and
// their index. Callers hand many bridges the same slice (the cluster
// compiles once per pop), so the last few are remembered by identity: a
// 200k-flow set is canonicalised and indexed once, not once per bridge.
func (c *Controller) indexed(d Desired) ([]flows.Flow, *desiredIndex) {
	var key *flows.Flow
	if len(d.Flows) > 0 {
		key = &d.Flows[0]
		c.imu.Lock()
		for _, e := range c.indexes {
			if e.key == key && e.n == len(d.Flows) {
				c.imu.Unlock()
				return e.owned, e.idx
			}
		}
		c.imu.Unlock()
	}
	owned := make([]flows.Flow, 0, len(d.Flows))
	for _, f := range d.Flows {
		// A flow without op25b's cookie would be invisible to our dump and
		// re-added at every audit; it is a caller bug, never installed.
		if flows.Owned(f.Cookie) {
			owned = append(owned, f)
		}
	}
	if n := len(d.Flows) - len(owned); n > 0 {
		c.log.Error("desired flows without op25b's cookie ignored", "dpid", d.DPID, "revision", d.Revision, "count", n)
	}
	idx := newDesiredIndex(owned)
	if key != nil {
		c.imu.Lock()
		c.indexes[c.nextIndex%len(c.indexes)] = indexEntry{key: key, n: len(d.Flows), owned: owned, idx: idx}
		c.nextIndex++
		c.imu.Unlock()
	}
	return owned, idx
}

// Forget drops the desired state of dpid: its session, if any, stops
// writing (flows stay as they are).
func (c *Controller) Forget(dpid topology.DPID) {
	c.mu.Lock()
	if b := c.bridges[dpid]; b != nil {
		b.desired, b.index, b.offender = nil, nil, nil
	}
	c.mu.Unlock()
}

// Status returns all bridges ever seen or desired, sorted by dpid.
func (c *Controller) Status() []BridgeStatus {
	c.mu.Lock()
	out := make([]BridgeStatus, 0, len(c.bridges))
	for _, b := range c.bridges {
		out = append(out, b.report())
	}
	c.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].DPID < out[j].DPID })
	return out
}

// StatusOf returns the status of one bridge, false if it was never seen or
// desired. Unlike Status it costs the same with 10 bridges or 10,000, so a
// caller can ask about the few that changed.
func (c *Controller) StatusOf(dpid topology.DPID) (BridgeStatus, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	b := c.bridges[dpid]
	if b == nil {
		return BridgeStatus{}, false
	}
	return b.report(), true
}

// report is the bridge's status with the live session's error count.
// Controller.mu must be held.
func (b *bridgeState) report() BridgeStatus {
	st := b.status
	if b.sess != nil {
		st.OpenFlowErrors += b.sess.ofErrors.Load()
		st.FlowDumps += b.sess.dumps.Load()
	}
	return st
}

// Connected returns the dpids of connected switches, sorted.
func (c *Controller) Connected() []topology.DPID {
	c.mu.Lock()
	var out []topology.DPID
	for dpid, b := range c.bridges {
		if b.sess != nil {
			out = append(out, dpid)
		}
	}
	c.mu.Unlock()
	slices.Sort(out)
	return out
}

// ErrNotConnected is returned for a dpid with no live session.
var ErrNotConnected = errors.New("switch not connected")

// Installed dumps the op25b-owned flows of dpid now, with their counters.
// Entries op25b cannot represent (altered by hand) are left out of the
// flows but keep their counters' cookie.
func (c *Controller) Installed(ctx context.Context, dpid topology.DPID) ([]flows.Flow, []FlowCounter, error) {
	c.mu.Lock()
	var s *switchSession
	if b := c.bridges[dpid]; b != nil {
		s = b.sess
	}
	c.mu.Unlock()
	if s == nil {
		return nil, nil, fmt.Errorf("installed %s: %w", dpid, ErrNotConnected)
	}
	entries, err := s.dump(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("installed %s: %w", dpid, err)
	}
	var fs []flows.Flow
	var counters []FlowCounter
	for _, e := range entries {
		if !e.Foreign {
			fs = append(fs, e.Flow)
		}
		counters = append(counters, FlowCounter{Key: e.Flow.Key(), Cookie: e.Flow.Cookie, Packets: e.Packets, Bytes: e.Bytes})
	}
	return fs, counters, nil
}

// DropCounters returns the counters of dpid's drop flows, and of the
// drop-count table's flows that forward because their pool observes
// (FlowCounter.Observed), collected by the last reconcile or audit.
func (c *Controller) DropCounters(dpid topology.DPID) []FlowCounter {
	c.mu.Lock()
	defer c.mu.Unlock()
	if b := c.bridges[dpid]; b != nil {
		return append([]FlowCounter(nil), b.drops...)
	}
	return nil
}

// Serve accepts switch connections on ln until ctx is done, then closes
// the listener and every session and waits for their goroutines. Closing a
// session does not touch the switch's flows. When Accept fails for another
// reason, Serve ends every session the same way before it returns the
// error: every goroutine it started has ended by the time it returns.
func (c *Controller) Serve(ctx context.Context, ln net.Listener) error {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		cancel() // before the wait: sessions and the closer below end on it
		wg.Wait()
	}()
	wg.Go(func() {
		<-ctx.Done()
		_ = ln.Close()
	})
	slots := make(chan struct{}, c.cfg.MaxConnections)
	atLimit := false // log once per episode, not once per waiting peer
	for {
		select {
		case slots <- struct{}{}:
			atLimit = false
		default:
			if !atLimit {
				c.log.Warn("openflow connection limit reached; accepting again when a connection ends",
					"max_connections", c.cfg.MaxConnections)
				atLimit = true
			}
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
				return nil
			}
		}
		conn, err := ln.Accept()
		if err != nil {
			<-slots
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return fmt.Errorf("accept: %w", err)
		}
		wg.Go(func() {
			defer func() { <-slots }()
			c.serveConn(ctx, conn)
		})
	}
}

// switchSession is a session bound to a datapath, plus the worker's state.
type switchSession struct {
	*session
	dpid  topology.DPID
	wake  chan struct{}
	c     *Controller
	noBun bool // switch refused bundles: use ordered flow-mods + barrier

	// Role bookkeeping, owned by the worker goroutine.
	roleSet    bool
	roleMaster bool
	roleGen    uint64
	staleFor   *roleKey
	bundleID   uint32

	// Drift detection, owned by the worker goroutine (monitor.go).
	mstate  monitorState
	applied *desiredIndex // the desired set the last reconcile made the switch hold; nil if it failed
}

type roleKey struct {
	master bool
	gen    uint64
}

func (s *switchSession) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// serveConn runs one switch connection: handshake, then the reader,
// keepalive and worker goroutines, all ended together.
func (c *Controller) serveConn(ctx context.Context, conn net.Conn) {
	remote := conn.RemoteAddr().String()
	log := c.log.With("remote", remote)
	base := newSession(conn, log, c.cfg.RequestTimeout)
	defer base.close(nil)
	defer base.contain("session")
	r := bufio.NewReaderSize(conn, sessionBufferBytes)

	sctx, cancel := context.WithCancel(ctx)
	// Every goroutine of the connection is in wg; at return the session is
	// closed and sctx cancelled first (the defers below run in reverse).
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	wg.Go(func() { // ctx cancel must unblock a handshake read
		select {
		case <-sctx.Done():
			base.close(sctx.Err())
		case <-base.done:
		}
	})

	// Everything before the session is established must finish within
	// HandshakeTimeout; the TLS handshake runs here, in the connection's
	// own goroutine, never in Accept, so a silent peer cannot stall others.
	handshakeEnd := time.Now().Add(c.cfg.HandshakeTimeout)
	var peerCert *x509.Certificate
	isTLS := false
	if tc, ok := conn.(*tls.Conn); ok {
		hctx, hcancel := context.WithDeadline(sctx, handshakeEnd)
		err := tc.HandshakeContext(hctx)
		hcancel()
		if err != nil {
			// A wrong certificate or a plain-TCP switch is the operator's
			// business (Warn); a peer that sends nothing or hangs up is a
			// scanner or a flood, logged at Debug so it cannot flood logs.
			level := slog.LevelWarn
			if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				level = slog.LevelDebug
			}
			log.Log(sctx, level, "openflow TLS handshake failed", "err", err)
			return
		}
		if peer := tc.ConnectionState().PeerCertificates; len(peer) > 0 {
			peerCert = peer[0]
			log = log.With("peer_cn", peer[0].Subject.CommonName)
			base.setLogger(log)
		}
		isTLS = true
	}
	if err := c.hello(base, r, handshakeEnd); err != nil {
		log.Warn("openflow handshake failed", "err", err)
		return
	}
	defer base.close(nil) // ends the read loop before wg.Wait
	wg.Go(func() { defer base.contain("read loop"); base.readLoop(r) })
	wg.Go(func() {
		defer base.contain("keepalive")
		base.keepalive(sctx, c.cfg.EchoInterval, c.cfg.DeadTimeout)
	})

	xid := base.nextXID()
	fctx, fcancel := context.WithDeadline(sctx, handshakeEnd)
	reply, err := base.request(fctx, xid, ofwire.AppendFeaturesRequest(nil, xid))
	fcancel()
	if err != nil {
		log.Warn("features request failed", "err", err)
		return
	}
	features, err := ofwire.ParseFeaturesReply(reply.body)
	if err != nil {
		log.Warn("bad features reply", "err", err)
		return
	}
	dpid := topology.DPIDFromUint64(features.DatapathID)
	log = log.With("dpid", dpid)
	base.setLogger(log)
	if features.AuxiliaryID != 0 {
		log.Warn("auxiliary connections are not used, closing", "auxiliary_id", features.AuxiliaryID)
		return
	}
	if isTLS && c.cfg.AuthorizeDatapath != nil {
		// Before the claim can displace a connected bridge's session: a
		// certificate from the right CA is not enough to speak for any dpid.
		if err := c.cfg.AuthorizeDatapath(dpid, peerCert); err != nil {
			log.Warn("datapath claim refused, closing the connection; an existing session of this dpid is kept", "err", err)
			return
		}
	}
	s := &switchSession{session: base, dpid: dpid, wake: make(chan struct{}, 1), c: c}

	c.mu.Lock()
	b := c.bridge(dpid)
	old := b.sess
	b.sess = s
	b.status.Connected, b.status.RemoteAddr = true, remote
	b.status.setRole("none")
	c.mu.Unlock()
	if old != nil {
		// The switch reconnected before we noticed the old connection die.
		old.close(errors.New("replaced by a new connection from the same datapath"))
	}
	// Deferred so that the bridge is marked disconnected even when the
	// session ends in a contained panic.
	defer func() {
		c.mu.Lock()
		if b.sess == s {
			b.sess = nil
			b.status.Connected, b.status.DriftDetection = false, ""
			b.status.setRole("none")
			b.status.OpenFlowErrors += s.ofErrors.Load()
			b.status.FlowDumps += s.dumps.Load()
		}
		c.mu.Unlock()
		s.close(nil)
		log.Info("switch disconnected", "reason", s.closeErr)
		c.emit(Event{Kind: EventDisconnected, DPID: dpid, Err: s.err()})
	}()
	log.Info("switch connected")
	c.emit(Event{Kind: EventConnected, DPID: dpid})

	s.run(sctx)
}

// hello exchanges HELLO messages (OpenFlow 1.3 §6.3.1) before the reader
// goroutine starts. A peer without 1.3 gets HELLO_FAILED/INCOMPATIBLE.
func (c *Controller) hello(s *session, r *bufio.Reader, deadline time.Time) error {
	if err := s.write(ofwire.AppendHello(nil, s.nextXID())); err != nil {
		return err
	}
	_ = s.conn.SetReadDeadline(deadline)
	h, body, err := ofwire.ReadMessage(r)
	_ = s.conn.SetReadDeadline(time.Time{})
	if err != nil {
		return fmt.Errorf("read hello: %w", err)
	}
	if h.Type != of.TypeHello {
		return fmt.Errorf("first message is type %d, want HELLO", h.Type)
	}
	if !ofwire.HelloOffersVersion13(h, body) {
		_ = s.write(ofwire.AppendError(nil, h.XID, ofp.ErrTypeHelloFailed, ofp.ErrCodeHelloFailedIncompatible, []byte("op25b speaks OpenFlow 1.3 only")))
		return fmt.Errorf("switch offers OpenFlow version %#x without 1.3", h.Version)
	}
	s.lastSeen.Store(time.Now().UnixNano())
	return nil
}

// run is the session's worker: it applies the desired state when woken,
// repairs drift the switch reports (monitor.go), and audits every
// AuditSweep when the switch reports its changes, else every
// AuditInterval, until the session or ctx ends.
func (s *switchSession) run(ctx context.Context) {
	period := s.c.cfg.AuditInterval
	audit := time.NewTicker(period)
	defer audit.Stop()
	// Drop counters are read every AuditInterval whatever the drift
	// detection: a monitored bridge's full audit (which reads them too)
	// only comes every AuditSweep.
	counters := time.NewTicker(s.c.cfg.AuditInterval)
	defer counters.Stop()
	var offenderTick <-chan time.Time
	if s.c.cfg.Offenders != nil {
		t := time.NewTicker(s.c.cfg.OffenderInterval)
		defer t.Stop()
		offenderTick = t.C
	}
	s.step(ctx, false)
	for {
		if p := s.auditPeriod(); p != period {
			period = p
			audit.Reset(period)
		}
		select {
		case <-ctx.Done():
			return
		case <-s.done:
			return
		case <-s.wake:
			s.step(ctx, false)
		case <-s.mon.wake:
			s.onMonitor(ctx)
		case <-audit.C:
			s.step(ctx, true)
		case <-counters.C:
			if period != s.c.cfg.AuditInterval {
				s.refreshDropCounters(ctx)
			}
		case <-offenderTick:
			if plan := s.offenderPlan(); plan != nil && s.roleMaster {
				s.readOffenders(ctx, plan)
			}
		}
	}
}

// offenderPlan is the offender table of the desired state, nil without
// one (or without desired state).
func (s *switchSession) offenderPlan() *offenderPlan {
	s.c.mu.Lock()
	defer s.c.mu.Unlock()
	if b := s.c.bridges[s.dpid]; b != nil && b.sess == s && b.index != nil {
		return b.index.offender
	}
	return nil
}

// auditPeriod: the slow sweep while the switch reports changes and the
// last reconcile succeeded, otherwise the audit interval.
func (s *switchSession) auditPeriod() time.Duration {
	if s.roleMaster && s.applied != nil && s.driftMode() == DriftMonitor {
		return s.c.cfg.AuditSweep
	}
	return s.c.cfg.AuditInterval
}

// desired returns the bridge's desired state while this session is the
// bridge's current one.
func (s *switchSession) desired() (Desired, *desiredIndex, bool) {
	c := s.c
	c.mu.Lock()
	defer c.mu.Unlock()
	b := c.bridges[s.dpid]
	if b == nil || b.desired == nil || b.sess != s {
		return Desired{}, nil, false
	}
	return *b.desired, b.index, true
}

// step brings the role and then the flows in line with the desired state.
func (s *switchSession) step(ctx context.Context, isAudit bool) {
	d, idx, have := s.desired()
	if !have {
		return // no desired state yet: do not even claim a role
	}
	want := roleKey{master: d.Master, gen: d.Generation}
	if !s.roleSet || s.roleMaster != want.master || s.roleGen != want.gen {
		if s.staleFor != nil && *s.staleFor == want {
			return // already refused; wait for a new generation
		}
		if err := s.requestRole(ctx, want); err != nil {
			return
		}
	}
	if !s.roleMaster {
		if len(s.mstate.tables) > 0 {
			s.stopMonitoring()
		}
		return
	}
	// Subscribe before the dump, so that no change after it goes unseen.
	watched := maps.Clone(s.mstate.tables)
	if err := s.syncMonitors(ctx, idx); err != nil {
		s.logger().Warn("flow monitor subscription failed", "err", err)
	}
	mode := s.driftMode()
	s.setStatus(func(st *BridgeStatus) { st.DriftDetection = mode })
	s.reconcile(ctx, d, idx, isAudit, !isAudit && s.knowsInstalled(idx, watched))
}

func (s *switchSession) requestRole(ctx context.Context, want roleKey) error {
	req, name := ofwire.RoleMessage{Role: ofp.ControllerRoleSlave, GenerationID: want.gen}, "slave"
	if want.master {
		req.Role, name = ofp.ControllerRoleMaster, "master"
	}
	// Whatever the answer, what the switch holds is no longer known: another
	// master may have written since our last reconcile.
	s.applied = nil
	xid := s.nextXID()
	reply, err := s.request(ctx, xid, ofwire.AppendRoleRequest(nil, xid, req))
	if err == nil {
		// A reply that grants another role or generation is a failure:
		// writing as master on its strength could undo another replica's.
		err = ofwire.CheckRoleReply(reply.body, req)
	}
	var oe *ofwire.Error
	switch {
	case errors.As(err, &oe) && oe.IsStale():
		s.staleFor = &want
		s.roleSet, s.roleMaster = true, false
		s.stopMonitoring()
		s.c.mu.Lock()
		if b := s.c.bridges[s.dpid]; b != nil && b.sess == s {
			b.offender = nil
		}
		s.c.mu.Unlock()
		s.logger().Warn("role request rejected as stale: another replica is master", "role", name, "generation", want.gen,
			"type", oe.TypeName(), "code", oe.CodeName())
		s.setStatus(func(st *BridgeStatus) { st.setRole("slave"); st.LastError = oe.Error() })
		s.c.emit(Event{Kind: EventLostMastership, DPID: s.dpid, Err: oe})
		return err
	case err != nil:
		s.logger().Warn("role request failed", "role", name, "generation", want.gen, "err", err)
		s.setStatus(func(st *BridgeStatus) { st.LastError = fmt.Sprintf("role request: %v", err) })
		return err
	}
	s.roleSet, s.roleMaster, s.roleGen, s.staleFor = true, want.master, want.gen, nil
	s.logger().Info("role granted", "role", name, "generation", want.gen)
	s.setStatus(func(st *BridgeStatus) { st.setRole(name) })
	now := time.Now()
	s.c.mu.Lock()
	if b := s.c.bridges[s.dpid]; b != nil && b.sess == s {
		if want.master {
			b.mastered(want.gen, now)
		} else {
			b.offender = nil
		}
	}
	s.c.mu.Unlock()
	return nil
}

// lostMastership handles OFPBRC_IS_SLAVE on a write: someone else took the
// master role (OVS demotes the old master without telling it in 1.3).
func (s *switchSession) lostMastership(err error) {
	s.roleMaster, s.applied = false, nil
	s.stopMonitoring()
	s.c.mu.Lock()
	if b := s.c.bridges[s.dpid]; b != nil && b.sess == s {
		b.offender = nil
	}
	s.c.mu.Unlock()
	k := roleKey{master: true, gen: s.roleGen}
	s.staleFor = &k
	s.setStatus(func(st *BridgeStatus) { st.setRole("slave") })
	s.c.emit(Event{Kind: EventLostMastership, DPID: s.dpid, Err: err})
}

func (s *switchSession) setStatus(f func(*BridgeStatus)) {
	s.c.mu.Lock()
	if b := s.c.bridges[s.dpid]; b != nil && b.sess == s {
		f(&b.status)
	}
	s.c.mu.Unlock()
}
