package controller

import (
	"context"
	"fmt"
	"time"

	"github.com/op25b/op25b/controller/ofwire"
	"github.com/op25b/op25b/flows"
	"github.com/op25b/op25b/offenders"
)

// DefaultOffenderInterval is Config.OffenderInterval's default: six reads
// per default idle timeout of the offender table (60 s), so every learned
// flow's last count is read before it can expire.
const DefaultOffenderInterval = 10 * time.Second

// OffenderRead is one read of a bridge's offender table, as attempts.
type OffenderRead struct {
	offenders.Delta
	// Observing says, per pool id, whether the pool only observes (its
	// attempts were forwarded, not dropped), from the desired flows at
	// the time of the read.
	Observing map[uint32]bool
}

// offenderPlan is what the controller needs to read a desired set's
// offender table; nil when the set has none.
type offenderPlan struct {
	table     uint8
	limit     uint32 // each learn bucket's
	tolerance time.Duration
	observing map[uint32]bool
}

func newOffenderPlan(desired []flows.Flow) *offenderPlan {
	table, ok := flows.OffenderTableOf(desired)
	if !ok {
		return nil
	}
	p := &offenderPlan{table: table, observing: flows.OffenderPools(desired), tolerance: flows.DefaultOffenderIdleTimeout / 2}
	for _, f := range desired {
		if l := f.Actions.Learn; !l.IsZero() && flows.Owned(f.Cookie) {
			p.limit = l.Limit
			if l.IdleTimeout > 0 {
				p.tolerance = time.Duration(l.IdleTimeout) * time.Second / 2
			}
		}
	}
	return p
}

// offenderMeter is a bridge's meter and the mastership it belongs to:
// reconnects within one mastership keep counting where they left off, a
// new mastership (a new generation) starts from a baseline.
type offenderMeter struct {
	generation uint64
	since      time.Time
	meter      *offenders.Meter
}

// mastered records that this replica holds MASTER with generation gen on
// the bridge. Controller.mu must be held.
func (b *bridgeState) mastered(gen uint64, now time.Time) {
	if b.offender == nil || b.offender.generation != gen {
		b.offender = &offenderMeter{generation: gen, since: now}
	}
}

// readOffenders reads the offender table once and hands the attempts to
// Config.Offenders. Only a master reads (a slave could, but two replicas
// would count the same packets).
func (s *switchSession) readOffenders(ctx context.Context, plan *offenderPlan) {
	start := time.Now()
	xid := s.nextXID()
	reply, err := s.request(ctx, xid, ofwire.AppendTableFlowStatsRequest(nil, xid, plan.table, 0, 0))
	if err != nil {
		s.protoWarn("reading the offender table failed", "table", plan.table, "err", err)
		return
	}
	entries := make([]ofwire.FlowStatsEntry, 0, reply.size/104)
	for _, part := range reply.parts {
		if entries, err = ofwire.DecodeFlowStats(part, entries); err != nil {
			s.protoWarn("decoding the offender table failed", "table", plan.table, "err", fmt.Errorf("offender table: %w", err))
			return
		}
	}
	at := time.Now()
	r := offenders.Reading{At: at, Limit: plan.limit}
	for _, e := range entries {
		switch {
		case e.Foreign || e.Flow.Table != plan.table:
		case flows.Learned(e.Flow.Cookie):
			if l, ok := flows.ParseLearned(e.Flow); ok {
				r.Learned = append(r.Learned, offenders.Sample{Flow: l, Cookie: e.Flow.Cookie, Packets: e.Packets, Age: e.Age()})
			}
		case flows.Owned(e.Flow.Cookie) && !e.Flow.Actions.Learn.IsZero():
			r.Learner += e.Packets
		}
	}
	c := s.c
	c.mu.Lock()
	b := c.bridges[s.dpid]
	if b == nil || b.sess != s || b.offender == nil {
		c.mu.Unlock()
		return // mastership ended while reading
	}
	m := b.offender
	if m.meter == nil {
		m.meter = offenders.NewMeter(m.since, plan.tolerance)
	}
	m.meter.Tolerance = plan.tolerance
	d := m.meter.Read(r)
	b.status.OffenderReads++
	b.status.OffenderFlows = d.Learned
	c.mu.Unlock()
	s.logger().Debug("offender table read", "learned", d.Learned, "pairs", len(d.Attempts), "untracked", d.Untracked,
		"took", time.Since(start).Round(time.Microsecond))
	if d.Saturated {
		s.protoWarn("offender table at its learn limit: further pairs are counted only in total", "bucket_limit", plan.limit)
	}
	c.cfg.Offenders(s.dpid, OffenderRead{Delta: d, Observing: plan.observing})
}
