package controller

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	of "github.com/netrack/openflow"
	"github.com/netrack/openflow/ofp"

	"github.com/op25b/op25b/controller/ofwire"
	"github.com/op25b/op25b/flows"
)

// Incremental drift detection (flow monitoring).
//
// A master subscribes to changes of the flow tables its desired flows use
// (an ONF flow monitor per table, ofwire/monitor.go) before its first
// reconcile, so nothing that happens after the dump can go unseen. From
// then on the switch reports every change to those tables:
//
//   - changes made by this connection (our own bundles) come abbreviated to
//     an xid and are ignored: applying a policy never causes a dump;
//   - changes made by anyone else to an op25b-cookie flow, or to a flow
//     with the key of a desired one, are folded per flow and undone by a
//     targeted bundle (repairPlan) with no dump: the switch held exactly
//     the applied desired set before them;
//   - a PAUSED notice (the switch's queue for us overflowed, so changes went
//     unreported) or our own queue overflowing owes one full audit, done
//     after RESUMED;
//   - a full audit still runs every Config.AuditSweep as a safety net, and
//     after every (re)connect as the first reconcile.
//
// A switch that refuses the subscription is audited every
// Config.AuditInterval, as without monitoring. BridgeStatus.DriftDetection
// says which of the two a bridge gets.

// Drift detection modes reported in BridgeStatus.DriftDetection.
const (
	DriftMonitor = "monitor" // flow monitoring; full audit every AuditSweep
	DriftPoll    = "poll"    // the switch refused monitoring; full audit every AuditInterval
)

// monitorFlags: additions, removals and modifications with their
// instructions; no initial listing (the reconcile's dump is the baseline)
// and our own changes abbreviated (never MonitorOwn).
const monitorFlags = ofwire.MonitorAdd | ofwire.MonitorDelete | ofwire.MonitorModify | ofwire.MonitorActions

// maxQueuedUpdates bounds the relevant updates waiting for the worker.
// Beyond it a full audit is cheaper than a targeted repair and memory
// stays bounded whatever a switch sends: the queue is dropped and a full
// audit is owed instead (an overflow).
const maxQueuedUpdates = 10_000

// monitorTableAll is the monitor id used for "every table" (table ids are
// 0..254; each table's monitor has id table+1, so ids never repeat: Open
// vSwitch answers a duplicate id with an error it encodes as an OpenFlow
// 1.0 message).
const monitorTableAll = uint32(ofp.TableAll) + 1

// monitorQueue hands flow-monitor notifications from the session's reader
// to its worker. Every notification message and pause/resume notice gets
// a sequence number in arrival order; a multipart reply records the number
// reached when its last part arrived (call.monSeq), so the worker can drop
// exactly the updates a dump already reflects (OpenFlow 1.3 §6.2: the
// switch processes and answers in order, and OVS sends notifications
// before replies to later requests).
type monitorQueue struct {
	wake chan struct{} // reader → worker, capacity 1

	// relevant selects the updates worth queueing (set by the worker to the
	// desired set it applied); nil keeps only op25b-cookie updates.
	relevant atomic.Pointer[desiredIndex]

	mu        sync.Mutex
	seq       uint64 // last sequence number given out
	updates   []queuedUpdate
	paused    bool
	resync    bool   // a full audit is owed
	resyncSeq uint64 // when it became owed
	pauses    uint64
	overflows uint64
}

type queuedUpdate struct {
	seq uint64
	u   ofwire.FlowUpdate
}

// monitorBatch is what the worker takes from the queue.
type monitorBatch struct {
	updates []ofwire.FlowUpdate
	resync  bool
	paused  bool
}

func newMonitorQueue() *monitorQueue { return &monitorQueue{wake: make(chan struct{}, 1)} }

func (q *monitorQueue) poke() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// mark is the sequence number of the last notification received. Called
// by the reader only.
func (q *monitorQueue) mark() uint64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.seq
}

// notify queues the relevant updates of one notification (the reader's
// side). A notification it cannot decode owes a full audit: something
// changed and we cannot tell what.
func (q *monitorQueue) notify(body []byte) error {
	updates, err := ofwire.DecodeFlowUpdates(body, nil)
	idx := q.relevant.Load()
	q.mu.Lock()
	defer q.mu.Unlock()
	q.seq++
	if err != nil {
		q.owe()
		q.poke()
		return err
	}
	if q.paused {
		// While paused the switch reports only removals of flows added
		// before the pause; the audit after RESUMED covers everything.
		return nil
	}
	n := len(q.updates)
	for _, u := range updates {
		if idx.relevant(u) {
			q.updates = append(q.updates, queuedUpdate{seq: q.seq, u: u})
		}
	}
	if len(q.updates) > maxQueuedUpdates {
		q.updates = nil
		q.overflows++
		q.owe()
	}
	if len(q.updates) != n || q.resync {
		q.poke()
	}
	return nil
}

// owe records that a full audit is needed; q.mu must be held.
func (q *monitorQueue) owe() {
	q.updates = nil
	q.resync, q.resyncSeq = true, q.seq
}

// pause handles ONFT_FLOW_MONITOR_PAUSED.
func (q *monitorQueue) pause() {
	q.mu.Lock()
	q.seq++
	q.paused = true
	q.pauses++
	q.updates = nil
	q.mu.Unlock()
}

// resume handles ONFT_FLOW_MONITOR_RESUMED: the switch reports changes
// again, and one full audit makes up for what it did not report.
func (q *monitorQueue) resume() {
	q.mu.Lock()
	q.seq++
	q.paused = false
	q.owe()
	q.mu.Unlock()
	q.poke()
}

// take empties the queue.
func (q *monitorQueue) take() monitorBatch {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.paused {
		return monitorBatch{paused: true} // nothing queues while paused; RESUMED owes the audit
	}
	b := monitorBatch{resync: q.resync}
	if len(q.updates) > 0 {
		b.updates = make([]ofwire.FlowUpdate, len(q.updates))
		for i, qu := range q.updates {
			b.updates[i] = qu.u
		}
	}
	q.updates, q.resync = nil, false
	return b
}

// settled drops what a dump completed at sequence number mark already
// reflects: updates received before it, and a full audit owed since before
// it (that dump is the audit).
func (q *monitorQueue) settled(mark uint64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	i := 0
	for i < len(q.updates) && q.updates[i].seq <= mark {
		i++
	}
	q.updates = q.updates[i:]
	if q.resync && q.resyncSeq <= mark {
		q.resync = false
	}
}

// quiet reports that nothing is waiting: no update queued, no full audit
// owed, not paused.
func (q *monitorQueue) quiet() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return !q.paused && !q.resync && len(q.updates) == 0
}

// counts returns the pauses and overflows seen on this connection.
func (q *monitorQueue) counts() (pauses, overflows uint64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.pauses, q.overflows
}

// relevant reports whether an update may concern op25b: a change to a flow
// with op25b's cookie, or to a flow with the key of a desired one (another
// cookie replacing ours). Our own changes (abbreviated) never are. A nil
// index keeps op25b-cookie updates only.
func (idx *desiredIndex) relevant(u ofwire.FlowUpdate) bool {
	if u.Event == ofwire.FlowAbbrev {
		return false
	}
	if flows.Owned(u.Flow.Cookie) {
		return true
	}
	if idx == nil || !u.MatchKnown {
		return false
	}
	_, ok := idx.byKey[u.Flow.Key()]
	return ok
}

// rawKey identifies an entry whose match op25b cannot decode.
type rawKey struct {
	table    uint8
	priority uint16
	match    string
}

// repairPlan is the list of flow-mods that undoes the foreign changes in
// updates (in arrival order), given that the switch held the indexed
// desired set before them. Only the flows the updates name are considered:
// each one's last reported state is compared with what it should be, and
// the differences go through the same rules as a full reconcile
// (foreign-shape entries deleted by raw match, cookie changes as ADD,
// flows.Diff's make-before-break order). Pure: tested without a switch.
func (idx *desiredIndex) repairPlan(updates []ofwire.FlowUpdate) changePlan {
	type last struct {
		present bool
		u       ofwire.FlowUpdate
	}
	var order []*last
	byKey := map[flows.Key]*last{}
	byRaw := map[rawKey]*last{}
	for _, u := range updates {
		if !idx.relevant(u) {
			continue
		}
		var l *last
		if u.MatchKnown {
			k := u.Flow.Key()
			if l = byKey[k]; l == nil {
				l = &last{}
				byKey[k] = l
				order = append(order, l)
			}
		} else {
			k := rawKey{u.Flow.Table, u.Flow.Priority, string(u.RawMatch)}
			if l = byRaw[k]; l == nil {
				l = &last{}
				byRaw[k] = l
				order = append(order, l)
			}
		}
		l.present, l.u = u.Event != ofwire.FlowDeleted, u
	}
	var p changePlan
	var want, installed []flows.Flow
	for _, l := range order {
		u := l.u
		desired, isDesired := flows.Flow{}, false
		if u.MatchKnown {
			desired, isDesired = idx.byKey[u.Flow.Key()]
		}
		switch {
		case !l.present:
			if isDesired {
				want = append(want, desired) // removed: put it back
			}
		case u.Foreign:
			if flows.Owned(u.Flow.Cookie) && u.RawMatch != nil {
				p.Foreign++
				p.Mods = append(p.Mods, ofwire.FlowMod{Command: ofp.FlowDeleteStrict, Table: u.Flow.Table, Priority: u.Flow.Priority,
					Cookie: u.Flow.Cookie, CookieMask: ^uint64(0), RawMatch: u.RawMatch})
			}
			if isDesired {
				want = append(want, desired) // after the delete, in the same ordered bundle
			}
		case isDesired && u.Flow == desired:
			// Changed back to what it should be: nothing to do.
		default:
			if isDesired {
				want = append(want, desired)
			}
			installed = append(installed, u.Flow)
		}
	}
	p.addDiff(want, installed)
	return p
}

// monitorState is the worker's view of its flow monitors (owned by the
// worker goroutine).
type monitorState struct {
	refused bool            // the switch refused a subscription: poll
	tables  map[uint32]bool // subscribed monitor ids
}

// driftMode is what BridgeStatus.DriftDetection reports for a master.
func (s *switchSession) driftMode() string {
	if s.mstate.refused || s.c.cfg.noMonitor || len(s.mstate.tables) == 0 {
		return DriftPoll
	}
	return DriftMonitor
}

// monitorIDs are the monitors idx needs: one per table its flows use, or
// one for every table when it is empty (any op25b-cookie flow is then
// drift). The offender table gets narrower monitors (offenderMonitorIDs):
// under a bot storm the switch adds a flow there for every new (source,
// destination) pair and expires it a minute later, and a monitor of the
// whole table would bring each of those here.
func monitorIDs(idx *desiredIndex) map[uint32]bool {
	ids := map[uint32]bool{}
	for _, f := range idx.canon {
		if idx.offender != nil && f.Table == idx.offender.table {
			continue
		}
		ids[uint32(f.Table)+1] = true
	}
	if idx.offender != nil {
		for _, id := range offenderMonitorIDs(idx.offender.table) {
			ids[id] = true
		}
	}
	if len(ids) == 0 {
		ids[monitorTableAll] = true
	}
	return ids
}

// offenderMonitorBase marks the ids of the offender table's monitors
// (above every table monitor's id): base | table<<8 | k.
const offenderMonitorBase = 1 << 16

// offenderMonitorIDs are the four monitors of an offender table: TCP over
// IPv4 and over IPv6, each with the TCP source port's lowest bit 0 and 1.
// Open vSwitch reports a flow to a monitor whose match is a "loose match"
// of it: the flow matches every field the monitor does, with the same
// values. The learn flows (op25b's, one per source-port bucket) match the
// source port's low bits, so together these monitors see every one of
// them; the flows they learn match no source port, so a storm's churn
// stays on the switch. The table's catch-all matches nothing and is seen
// by no monitor: the full audits restore it, and without it the table
// still drops (OpenFlow 1.3's table miss).
func offenderMonitorIDs(table uint8) []uint32 {
	ids := make([]uint32, 4)
	for k := range ids {
		ids[k] = offenderMonitorBase | uint32(table)<<8 | uint32(k)
	}
	return ids
}

// monitorTarget is the table and match a monitor id watches.
func monitorTarget(id uint32) (uint8, flows.Match) {
	switch {
	case id == monitorTableAll:
		return uint8(ofp.TableAll), flows.Match{}
	case id&offenderMonitorBase != 0:
		k := id & 0xff
		m := flows.Match{EthType: flows.EthTypeIPv4, IPProto: flows.IPProtoTCP, TCPSrc: uint16(k & 1), TCPSrcMask: 1}
		if k >= 2 {
			m.EthType = flows.EthTypeIPv6
		}
		return uint8(id >> 8), m
	}
	return uint8(id - 1), flows.Match{}
}

// syncMonitors subscribes to the tables idx uses that are not watched yet
// and cancels the monitors of tables it no longer uses. It runs before a
// reconcile's dump, so no change after that dump goes unreported. Any
// error reply (a switch without ONF flow monitoring) turns monitoring off
// for the session; other errors (timeouts, a closed session) are returned.
func (s *switchSession) syncMonitors(ctx context.Context, idx *desiredIndex) error {
	s.mon.relevant.Store(idx)
	if s.mstate.refused || s.c.cfg.noMonitor {
		return nil
	}
	want := monitorIDs(idx)
	for id := range s.mstate.tables {
		if !want[id] {
			s.cancelMonitor(id)
		}
	}
	ids := make([]uint32, 0, len(want))
	for id := range want {
		if !s.mstate.tables[id] {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	for _, id := range ids {
		err := s.subscribe(ctx, id)
		var oe *ofwire.Error
		var bad *badMonitorReply
		switch {
		case errors.As(err, &oe) || errors.As(err, &bad):
			s.logger().Warn("switch refuses flow monitoring; drift is found by a full audit every audit interval instead",
				"err", err, "audit_interval", s.c.cfg.AuditInterval)
			s.mstate.refused = true
			for id := range s.mstate.tables {
				s.cancelMonitor(id)
			}
			return nil
		case err != nil:
			return fmt.Errorf("flow monitor: %w", err)
		}
		if s.mstate.tables == nil {
			s.mstate.tables = map[uint32]bool{}
		}
		s.mstate.tables[id] = true
	}
	if len(ids) > 0 {
		s.logger().Info("watching flow tables for drift", "monitors", len(s.mstate.tables), "audit_sweep", s.c.cfg.AuditSweep)
	}
	return nil
}

// badMonitorReply: the switch answered the subscription with something
// other than a flow monitor reply (a switch that does not know the
// experimenter multipart and answers another kind).
type badMonitorReply struct{ what string }

func (e *badMonitorReply) Error() string { return "flow monitor request answered with " + e.what }

// subscribe sends one monitor request and checks its (empty) reply.
func (s *switchSession) subscribe(ctx context.Context, id uint32) error {
	table, match := monitorTarget(id)
	xid := s.nextXID()
	s.monXID.Store(xid)
	defer s.monXID.Store(0)
	reply, err := s.request(ctx, xid, ofwire.AppendFlowMonitorRequest(nil, xid, ofwire.FlowMonitorRequest{
		ID: id, Flags: monitorFlags, OutPort: uint32(ofp.PortAny), Table: table, Match: match}))
	if err != nil {
		return err
	}
	if len(reply.parts) == 0 {
		return &badMonitorReply{"no multipart body"}
	}
	exp, typ, err := ofwire.ExperimenterType(reply.parts[0])
	if err != nil || exp != ofwire.ONFExperimenterID || typ != ofwire.ONFTypeFlowMonitor {
		return &badMonitorReply{fmt.Sprintf("another multipart reply (experimenter %#x type %d, %v)", exp, typ, err)}
	}
	return nil
}

// monitorRefusal handles Open vSwitch's answer to a flow monitor request
// it finds invalid: an OpenFlow 1.4 error in an OpenFlow 1.0 header with
// xid 0 (ofwire/testdata/ovs/error-flow-monitor-bad-flags.hex). op25b never
// sends such a request, but if a switch ever answers one this way, the
// request in flight fails (the switch is polled) instead of the session
// closing on a wrong version and reconnecting into the same answer. It
// runs on the reader and reports whether it consumed the message.
func (s *session) monitorRefusal(h ofwire.Header, body []byte) bool {
	xid := s.monXID.Load()
	if h.Type != of.TypeError || h.XID != 0 || xid == 0 {
		return false
	}
	e, err := ofwire.ParseError(h, body)
	if err != nil {
		return false
	}
	s.ofErrors.Add(1)
	e.XID = xid
	s.protoWarn("flow monitor request refused with an error in another OpenFlow version", "version", h.Version, "type", e.TypeName(), "code", e.CodeName())
	s.routeError(e)
	return true
}

// cancelMonitor sends ONFT_FLOW_MONITOR_CANCEL (no reply exists).
func (s *switchSession) cancelMonitor(id uint32) {
	delete(s.mstate.tables, id)
	if err := s.write(ofwire.AppendFlowMonitorCancel(nil, s.nextXID(), id)); err != nil {
		s.logger().Debug("flow monitor cancel not sent", "err", err)
	}
}

// stopMonitoring cancels every monitor: a slave neither repairs nor needs
// the other replica's writes streamed to it.
func (s *switchSession) stopMonitoring() {
	for id := range s.mstate.tables {
		s.cancelMonitor(id)
	}
	s.applied = nil // changes are no longer reported: a dump comes first
	s.mon.relevant.Store(nil)
	s.mon.take()
	s.setStatus(func(st *BridgeStatus) { st.DriftDetection = "" })
}

// onMonitor handles the reader's hand-off: a full audit when one is owed,
// otherwise a targeted repair of the reported changes.
func (s *switchSession) onMonitor(ctx context.Context) {
	batch := s.mon.take()
	if batch.paused || !s.roleMaster || len(s.mstate.tables) == 0 {
		return // the audit after RESUMED, or none: not watching
	}
	if batch.resync {
		s.setStatus(func(st *BridgeStatus) { st.MonitorResyncs++ })
		s.logger().Info("flow monitor lost track of changes (paused by the switch, or too many at once): full audit")
		s.step(ctx, true)
		return
	}
	if len(batch.updates) == 0 {
		return
	}
	d, idx, ok := s.desired()
	if !ok || idx != s.applied {
		// A reconcile of a new desired set is pending (and dumps anyway),
		// or the last one failed and the next audit retries it.
		return
	}
	s.repair(ctx, d, idx, batch.updates)
}

// repair undoes the reported changes with one bundle, without a dump.
func (s *switchSession) repair(ctx context.Context, d Desired, idx *desiredIndex, updates []ofwire.FlowUpdate) {
	start := time.Now()
	plan := idx.repairPlan(updates)
	if len(plan.Mods) == 0 {
		return
	}
	err := s.apply(ctx, plan.Mods)
	elapsed := time.Since(start)
	log := s.logger().With("revision", d.Revision)
	if err != nil {
		s.applied = nil // the next audit (AuditInterval) reconciles in full
		s.applyFailed(log, err, d, elapsed, false, len(plan.Mods))
		return
	}
	n := len(plan.Mods)
	s.setStatus(func(st *BridgeStatus) {
		st.DriftRepairs += uint64(n)
		st.FlowMods += uint64(n)
		st.LastError = ""
	})
	log.Warn("flow monitor: repaired drift", "changes", n, "foreign_shape", plan.Foreign, "updates", len(updates), "took", elapsed.Round(time.Microsecond))
	s.c.emit(Event{Kind: EventReconciled, DPID: s.dpid, Revision: d.Revision, Duration: elapsed, Changes: n, Audit: true, Monitor: true})
}
