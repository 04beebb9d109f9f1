package controller

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/netrack/openflow/ofp"

	"github.com/op25b/op25b/controller/ofwire"
	"github.com/op25b/op25b/flows"
)

// dump reads op25b's flows (cookie/mask = our marker, all tables) and
// decodes them entry by entry.
func (s *session) dump(ctx context.Context) ([]ofwire.FlowStatsEntry, error) {
	entries, _, err := s.dumpMarked(ctx)
	return entries, err
}

// dumpMarked is dump plus the flow-monitor sequence number its reply
// completed at: the notifications up to it are reflected in the entries.
func (s *session) dumpMarked(ctx context.Context) ([]ofwire.FlowStatsEntry, uint64, error) {
	s.dumps.Add(1)
	xid := s.nextXID()
	reply, err := s.request(ctx, xid, ofwire.AppendFlowStatsRequest(nil, xid, flows.CookieMarker, flows.CookieMask))
	if err != nil {
		return nil, 0, fmt.Errorf("dump flows: %w", err)
	}
	entries := make([]ofwire.FlowStatsEntry, 0, reply.size/88) // op25b entries are ≥ 88 bytes
	for _, part := range reply.parts {
		if entries, err = ofwire.DecodeFlowStats(part, entries); err != nil {
			return nil, 0, fmt.Errorf("dump flows: %w", err)
		}
	}
	return entries, reply.monSeq, nil
}

// changePlan is the list of flow-mods that turns a dump into the desired set.
// It is pure: computed from values, tested without a switch.
type changePlan struct {
	Mods []ofwire.FlowMod
	// Foreign counts op25b-cookie entries of a shape op25b never writes;
	// each becomes a strict delete (and, if the key is desired, a re-add).
	Foreign int
}

// planChanges diffs desired against the decoded dump. Entries with op25b's
// cookie but a foreign shape (altered by hand with actions op25b never
// writes) are strictly deleted first by their raw match, then flows.Diff's
// add restores the desired flow inside the same ordered bundle.
func planChanges(desired []flows.Flow, entries []ofwire.FlowStatsEntry) changePlan {
	return newDesiredIndex(desired).plan(entries)
}

// desiredIndex is a desired set in the form OVS reports it, indexed by
// key, built once per SetDesired so that audits (which almost always find
// nothing to do) cost one lookup per installed flow.
type desiredIndex struct {
	canon    []flows.Flow
	byKey    map[flows.Key]flows.Flow
	offender *offenderPlan // nil: no offender table
}

// dropTables lists the tables that hold the set's drop flows (the
// drop-count table of a compiled set; the offender table's flows count
// but are not drops of their own, see dropCounters).
func (idx *desiredIndex) dropTables() []uint8 {
	var tables []uint8
	for _, f := range idx.canon {
		if f.Actions.IsDrop() && !idx.inOffenderTable(f.Table) && !slices.Contains(tables, f.Table) {
			tables = append(tables, f.Table)
		}
	}
	return tables
}

// inOffenderTable reports whether table is the set's offender table.
func (idx *desiredIndex) inOffenderTable(table uint8) bool {
	return idx.offender != nil && table == idx.offender.table
}

func newDesiredIndex(desired []flows.Flow) *desiredIndex {
	idx := &desiredIndex{canon: make([]flows.Flow, len(desired)), byKey: make(map[flows.Key]flows.Flow, len(desired)),
		offender: newOffenderPlan(desired)}
	for i, f := range desired {
		f = ofwire.Canonical(f)
		idx.canon[i] = f
		idx.byKey[f.Key()] = f
	}
	return idx
}

// plan diffs the dump against the desired set. Only the flows that differ
// go through flows.Diff (which orders changes make-before-break and is
// per-key, so unchanged flows cannot affect its result): a one-pool change
// on a 100k-flow bridge costs one lookup per installed flow plus a tiny diff.
func (idx *desiredIndex) plan(entries []ofwire.FlowStatsEntry) changePlan {
	var p changePlan
	var want, installed []flows.Flow
	matched := 0
	for i := range entries {
		e := &entries[i]
		if e.Foreign {
			if e.RawMatch == nil || !flows.Owned(e.Flow.Cookie) {
				continue // unaddressable, or not ours: never touch
			}
			p.Foreign++
			p.Mods = append(p.Mods, ofwire.FlowMod{Command: ofp.FlowDeleteStrict, Table: e.Flow.Table, Priority: e.Flow.Priority,
				Cookie: e.Flow.Cookie, CookieMask: ^uint64(0), RawMatch: e.RawMatch})
			continue
		}
		f, ok := idx.byKey[e.Flow.Key()]
		if !ok {
			installed = append(installed, e.Flow)
			continue
		}
		matched++
		if f != e.Flow {
			want = append(want, f)
			installed = append(installed, e.Flow)
		}
	}
	if matched < len(idx.byKey) {
		// Some desired keys are missing from the switch.
		present := make(map[flows.Key]struct{}, len(entries))
		for i := range entries {
			if !entries[i].Foreign {
				present[entries[i].Flow.Key()] = struct{}{}
			}
		}
		dups := len(idx.canon) != len(idx.byKey) // Compile never repeats a key; be safe if a caller does
		want = slices.Grow(want, len(idx.byKey)-matched)
		for _, f := range idx.canon {
			k := f.Key()
			if _, ok := present[k]; !ok {
				if dups {
					present[k] = struct{}{}
				}
				want = append(want, f)
			}
		}
	}
	p.addDiff(want, installed)
	return p
}

// addDiff appends the flow-mods that turn installed into want (both only
// the flows that differ), in flows.Diff's make-before-break order.
func (p *changePlan) addDiff(want, installed []flows.Flow) {
	if len(want) == 0 && len(installed) == 0 {
		return
	}
	cookieOf := make(map[flows.Key]uint64, len(installed))
	for _, f := range installed {
		cookieOf[f.Key()] = f.Cookie
	}
	changes := flows.Diff(want, installed)
	p.Mods = slices.Grow(p.Mods, len(changes))
	for _, ch := range changes {
		f := ch.Flow
		switch ch.Op {
		case flows.OpAdd:
			p.Mods = append(p.Mods, ofwire.FlowMod{Command: ofp.FlowAdd, Table: f.Table, Priority: f.Priority, Cookie: f.Cookie, Match: f.Match, Actions: f.Actions})
		case flows.OpModify:
			// OpenFlow 1.3 MODIFY cannot change a cookie (§6.4): when it
			// differs, ADD replaces the entry in place instead.
			if old, ok := cookieOf[f.Key()]; ok && old != f.Cookie {
				p.Mods = append(p.Mods, ofwire.FlowMod{Command: ofp.FlowAdd, Table: f.Table, Priority: f.Priority, Cookie: f.Cookie, Match: f.Match, Actions: f.Actions})
			} else {
				p.Mods = append(p.Mods, ofwire.FlowMod{Command: ofp.FlowModifyStrict, Table: f.Table, Priority: f.Priority,
					Cookie: f.Cookie, CookieMask: ^uint64(0), Match: f.Match, Actions: f.Actions})
			}
		case flows.OpDelete:
			cookie := f.Cookie
			if !flows.Owned(cookie) {
				continue // defensive: the dump only returns ours
			}
			p.Mods = append(p.Mods, ofwire.FlowMod{Command: ofp.FlowDeleteStrict, Table: f.Table, Priority: f.Priority,
				Cookie: cookie, CookieMask: ^uint64(0), Match: f.Match})
		}
	}
}

// errRejected wraps the switch's rejection of part of a change set.
type errRejected struct {
	first *ofwire.Error
	count int
	mode  string
}

func (e *errRejected) Error() string {
	return fmt.Sprintf("%s: switch rejected %d flow-mod(s), first: %v", e.mode, e.count, e.first)
}

func (e *errRejected) Unwrap() error { return e.first }

// planFrom is plan for a switch known to hold exactly prev, without a
// dump: the flows of prev and idx that differ go through flows.Diff, as in
// plan. Pure; equal to plan over a dump of prev (TestPlanFromKnownEqualsDump).
func (idx *desiredIndex) planFrom(prev *desiredIndex) changePlan {
	var p changePlan
	var want, installed []flows.Flow
	for _, f := range prev.canon {
		d, ok := idx.byKey[f.Key()]
		switch {
		case !ok:
			installed = append(installed, f)
		case d != f:
			want = append(want, d)
			installed = append(installed, f)
		}
	}
	// At least this many are new: grown once, not doubled 18 times for a
	// 200k-flow set (planFrom of a whole replace was mostly copying).
	want = slices.Grow(want, max(0, len(idx.canon)-len(prev.byKey)))
	for _, f := range idx.canon {
		if _, ok := prev.byKey[f.Key()]; !ok {
			want = append(want, f)
		}
	}
	p.addDiff(want, installed)
	return p
}

// carryCounters lists the counters of idx's drop flows (and observing
// drop-count flows, as dropCounters picks them from a dump) as of the last
// dump: a flow that was there keeps its counter (a MODIFY keeps it on the
// switch too), a new one starts at zero.
func carryCounters(prev []FlowCounter, idx *desiredIndex) []FlowCounter {
	byKey := make(map[flows.Key]FlowCounter, len(prev))
	for _, c := range prev {
		byKey[c.Key] = c
	}
	var out []FlowCounter
	for _, f := range idx.canon {
		if idx.inOffenderTable(f.Table) {
			continue
		}
		drop := f.Actions.IsDrop()
		if !drop && flows.CookieRole(f.Cookie) != flows.RoleDropCount {
			continue
		}
		c := FlowCounter{Key: f.Key(), Cookie: f.Cookie, Observed: !drop}
		if old, ok := byKey[c.Key]; ok && old.Cookie == f.Cookie {
			c.Packets, c.Bytes = old.Packets, old.Bytes
		}
		out = append(out, c)
	}
	return out
}

// knowsInstalled reports whether the switch is known to hold exactly the
// desired set of the last successful reconcile, so that a new desired set
// can be planned from it without a dump: this session has been master and
// watched every table of both sets since (watched: the monitors before
// this step subscribed new ones), and the switch reported no change, no
// pause and no overflow that has not been handled. A foreign change
// reported while the bundle is on its way is repaired after it, against
// the new set (repairPlan compares each reported flow with what it should
// be, not with what it was).
func (s *switchSession) knowsInstalled(idx *desiredIndex, watched map[uint32]bool) bool {
	if s.applied == nil || s.driftMode() != DriftMonitor || !s.mon.quiet() {
		return false
	}
	for _, set := range []*desiredIndex{s.applied, idx} {
		for id := range monitorIDs(set) {
			if !watched[id] {
				return false
			}
		}
	}
	return true
}

// reconcile makes the switch hold idx: from a dump (known false: a
// (re)connect, an audit, a new role, or monitoring not trusted), or from
// the set the last reconcile installed (knowsInstalled). It updates status
// and emits an event.
func (s *switchSession) reconcile(ctx context.Context, d Desired, idx *desiredIndex, isAudit, known bool) {
	start := time.Now()
	prev := s.applied
	s.applied = nil
	var (
		entries []ofwire.FlowStatsEntry
		plan    changePlan
		err     error
	)
	// planned: when the flow-mods were ready (after the dump, if any):
	// what comes after is the switch's share.
	var planned time.Time
	if known {
		plan = idx.planFrom(prev)
		planned = time.Now()
		err = s.apply(ctx, plan.Mods)
	} else {
		var mark uint64
		entries, mark, err = s.dumpMarked(ctx)
		s.logger().Debug("dumped", "entries", len(entries), "took", time.Since(start))
		if err == nil {
			// Changes reported before the dump's reply are in the dump.
			s.mon.settled(mark)
			plan = idx.plan(entries)
			planned = time.Now()
			err = s.apply(ctx, plan.Mods)
		}
	}
	elapsed := time.Since(start)
	var install time.Duration
	if !planned.IsZero() {
		install = time.Since(planned)
	}
	log := s.logger().With("revision", d.Revision, "audit", isAudit)
	if err != nil {
		s.applyFailed(log, err, d, elapsed, isAudit, len(plan.Mods))
		return
	}
	s.applied = idx
	var drops []FlowCounter
	if !known {
		drops = idx.dropCounters(entries)
	}
	n := len(plan.Mods)
	s.c.mu.Lock()
	if b := s.c.bridges[s.dpid]; b != nil && b.sess == s {
		st := &b.status
		// Changes made while the revision was already applied undo drift.
		if st.AppliedRevision == d.Revision && st.Reconciles > 0 {
			st.DriftRepairs += uint64(n)
		}
		st.AppliedRevision, st.Flows, st.LastError, st.LastReconcile = d.Revision, len(d.Flows), "", time.Now()
		st.FlowMods += uint64(n)
		st.Reconciles++
		if known {
			// Counters come with a dump; without one, the drop flows kept
			// their counters and the new ones start at zero (the next
			// audit reads them again).
			drops = carryCounters(b.drops, idx)
		}
		b.drops = drops
	}
	s.c.mu.Unlock()
	if n > 0 || !isAudit {
		log.Info("reconciled", "changes", n, "foreign_shape", plan.Foreign, "flows", len(d.Flows), "dumped", !known,
			"took", elapsed.Round(time.Microsecond), "install", install.Round(time.Microsecond))
	}
	if n > 0 && isAudit {
		log.Warn("audit repaired drift", "changes", n)
	}
	s.c.emit(Event{Kind: EventReconciled, DPID: s.dpid, Revision: d.Revision, Duration: elapsed, Changes: n, Audit: isAudit})
}

// dropCounters picks the counters of op25b's drop flows out of a dump, and
// those of the drop-count table's flows that forward because their pool's
// phase observes (FlowCounter.Observed): what would have been dropped.
// The offender table only counts what the drop-count table already counted:
// its flows are neither drops nor observations of their own.
func (idx *desiredIndex) dropCounters(entries []ofwire.FlowStatsEntry) []FlowCounter {
	var drops []FlowCounter
	for _, e := range entries {
		if e.Foreign || idx.inOffenderTable(e.Flow.Table) {
			continue
		}
		drop := e.Flow.Actions.IsDrop()
		if drop || flows.CookieRole(e.Flow.Cookie) == flows.RoleDropCount {
			drops = append(drops, FlowCounter{Key: e.Flow.Key(), Cookie: e.Flow.Cookie, Packets: e.Packets, Bytes: e.Bytes, Observed: !drop})
		}
	}
	return drops
}

// refreshDropCounters reads only the drop-count table(s) of the applied
// flow set: with flow monitoring there is no periodic full dump any more,
// and the per-pool blocked counters (metrics, flows endpoint) must not go
// stale for an --audit-sweep. It is not an audit: nothing is compared or
// repaired, and the monitor's sequence is left alone.
func (s *switchSession) refreshDropCounters(ctx context.Context) {
	if s.applied == nil {
		return
	}
	var drops []FlowCounter
	for _, table := range s.applied.dropTables() {
		xid := s.nextXID()
		reply, err := s.request(ctx, xid, ofwire.AppendTableFlowStatsRequest(nil, xid, table, flows.CookieMarker, flows.CookieMask))
		if err != nil {
			s.logger().Debug("reading drop counters failed", "table", table, "err", err)
			return
		}
		var entries []ofwire.FlowStatsEntry
		for _, part := range reply.parts {
			if entries, err = ofwire.DecodeFlowStats(part, entries); err != nil {
				s.logger().Debug("reading drop counters failed", "table", table, "err", err)
				return
			}
		}
		drops = append(drops, s.applied.dropCounters(entries)...)
	}
	s.c.mu.Lock()
	if b := s.c.bridges[s.dpid]; b != nil && b.sess == s {
		b.drops = drops
	}
	s.c.mu.Unlock()
}

// applyFailed handles a failed reconcile or repair: a switch that says we
// are slave lost us mastership, an unanswered request closes the session,
// and the error goes to status and an event.
func (s *switchSession) applyFailed(log *slog.Logger, err error, d Desired, elapsed time.Duration, isAudit bool, changes int) {
	var oe *ofwire.Error
	if errors.As(err, &oe) && oe.IsSlave() {
		log.Warn("switch says we are slave: lost mastership", "type", oe.TypeName(), "code", oe.CodeName())
		s.lostMastership(err)
	}
	if errors.Is(err, ErrRequestTimeout) {
		// An unanswered barrier leaves the bundle's fate unknown; a new
		// connection starts from a clean slate (OVS discards open bundles
		// of a closed connection) and reconciles again.
		s.close(err)
	}
	log.Warn("reconcile failed", "err", err, "changes", changes)
	s.setStatus(func(st *BridgeStatus) { st.LastError = err.Error(); st.ReconcileFailures++ })
	s.c.emit(Event{Kind: EventReconcileFailed, DPID: s.dpid, Revision: d.Revision, Err: fmt.Errorf("reconcile %s: %w", s.dpid, err), Duration: elapsed, Audit: isAudit})
}

// apply sends mods in one ONF bundle (ATOMIC|ORDERED), or as ordered
// flow-mods + barrier when the switch refuses bundles.
func (s *switchSession) apply(ctx context.Context, mods []ofwire.FlowMod) error {
	if len(mods) == 0 {
		return nil
	}
	if !s.noBun {
		err := s.applyBundle(ctx, mods)
		var oe *ofwire.Error
		if errors.As(err, &oe) && oe.IsBundleUnsupported() {
			s.logger().Warn("switch refuses ONF bundles, falling back to ordered flow-mods", "type", oe.TypeName(), "code", oe.CodeName())
			s.noBun = true
		} else {
			return err
		}
	}
	return s.applyOrdered(ctx, mods)
}

// applyBundle: OPEN, ADD×n, BARRIER, then COMMIT, or DISCARD when any add
// was rejected: OVS validates each add on arrival, leaves a bad one out and
// would still COMMIT the rest (measured on OVS 3.1).
func (s *switchSession) applyBundle(ctx context.Context, mods []ofwire.FlowMod) error {
	s.bundleID++
	id := s.bundleID
	flags := ofwire.BundleAtomic | ofwire.BundleOrdered
	t0 := time.Now()
	// OPEN is pipelined with the adds: its reply (or error) arrives before
	// the barrier's, so waiting for it separately would only add a round trip.
	// It takes the first of the reserved xids, the adds the rest.
	ox := s.reserveXIDs(len(mods) + 1)
	open := s.expect(ox)
	defer s.forget(ox)
	b := s.addBatch(ox+1, len(mods))
	err := s.writeMany(ox, len(mods)+1, func(buf []byte, xid uint32, i int) []byte {
		if i == 0 {
			return ofwire.AppendBundleControl(buf, xid, ofwire.BundleControl{BundleID: id, Type: ofwire.BundleOpenRequest, Flags: flags})
		}
		return ofwire.AppendBundleAdd(buf, xid, id, flags, mods[i-1])
	})
	t1 := time.Now()
	if err == nil {
		err = s.barrier(ctx)
	}
	t2 := time.Now()
	errs := s.endBatch(b)
	if err != nil {
		return fmt.Errorf("bundle add: %w", err)
	}
	select {
	case <-open.done:
	default:
		return fmt.Errorf("bundle open: no reply before the barrier")
	}
	if open.err != nil {
		return fmt.Errorf("bundle open: %w", open.err)
	}
	if c, err := ofwire.ParseBundleControl(open.body); err != nil || c.Type != ofwire.BundleOpenReply {
		return fmt.Errorf("bundle open: unexpected reply type %d: %v", c.Type, err)
	}
	if len(errs) > 0 {
		for _, e := range errs[:min(len(errs), 5)] {
			s.logger().Warn("switch rejected a bundled flow-mod", "xid", e.XID, "type", e.TypeName(), "code", e.CodeName())
		}
		dx := s.nextXID()
		if _, derr := s.request(ctx, dx, ofwire.AppendBundleControl(nil, dx, ofwire.BundleControl{BundleID: id, Type: ofwire.BundleDiscardRequest, Flags: flags})); derr != nil {
			s.logger().Warn("bundle discard failed", "err", derr)
		}
		return &errRejected{first: errs[0], count: len(errs), mode: "bundle discarded"}
	}
	cx := s.nextXID()
	reply, err := s.request(ctx, cx, ofwire.AppendBundleControl(nil, cx, ofwire.BundleControl{BundleID: id, Type: ofwire.BundleCommitRequest, Flags: flags}))
	if err != nil {
		return fmt.Errorf("bundle commit: %w", err)
	}
	if c, err := ofwire.ParseBundleControl(reply.body); err != nil || c.Type != ofwire.BundleCommitReply {
		return fmt.Errorf("bundle commit: unexpected reply type %d: %v", c.Type, err)
	}
	s.logger().Debug("bundle committed", "flow_mods", len(mods), "open_and_send", t1.Sub(t0), "barrier", t2.Sub(t1), "commit", time.Since(t2))
	return nil
}

// applyOrdered is the fallback: flow-mods in flows.Diff's make-before-break
// order, then one barrier to collect errors (OVS sends them before the
// barrier reply).
func (s *switchSession) applyOrdered(ctx context.Context, mods []ofwire.FlowMod) error {
	lo := s.reserveXIDs(len(mods))
	b := s.addBatch(lo, len(mods))
	err := s.writeMany(lo, len(mods), func(buf []byte, xid uint32, i int) []byte {
		return ofwire.AppendFlowMod(buf, xid, mods[i])
	})
	if err == nil {
		err = s.barrier(ctx)
	}
	errs := s.endBatch(b)
	if err != nil {
		return fmt.Errorf("flow-mods: %w", err)
	}
	if len(errs) > 0 {
		return &errRejected{first: errs[0], count: len(errs), mode: "flow-mods (no bundle support)"}
	}
	return nil
}
