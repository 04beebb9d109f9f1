// Package offenders turns the counters of the switches' offender tables
// into the abuse desk's answer: which subscriber sources tried to send mail
// directly (and were blocked, or in observe mode would have been), how
// often, to how many destinations, when, per bridge and pool.
//
// Place in the pipeline: policy → flows → switch → **status**. The flows
// package compiles an offender table in which Open vSwitch learns one
// counting flow per (pool, source, destination) pair; package controller
// reads that table on every bridge this replica masters. This package is
// the pure part in between and after:
//
//   - Meter turns successive reads of one bridge's offender table into
//     attempts per pair (deltas, with the first packet of each pair, which
//     the learn flow counts, added back), with no clock and no I/O;
//   - Tracker keeps those attempts per source in bounded memory (at most
//     MaxSources sources, least recently active evicted first, nothing
//     older than Retention) and answers windowed queries, most attempts
//     first.
//
// Neither does I/O nor reads a clock: times are arguments.
package offenders

import (
	"net/netip"
	"time"

	"github.com/op25b/op25b/flows"
)

// Sample is one learned flow as read from the switch: the pair it counts,
// its cookie (which learn bucket learned it), its packet counter and its
// age (OpenFlow's duration).
type Sample struct {
	Flow    flows.LearnedFlow
	Cookie  uint64
	Packets uint64
	Age     time.Duration
}

// Reading is one read of a bridge's offender table.
type Reading struct {
	At time.Time
	// Learned are the flows OVS learned, as they are now.
	Learned []Sample
	// Learner is the packet counter of the learn flows (IPv4 and IPv6
	// summed): the first packet of every new pair, and every packet of a
	// pair that could not be learned because the table was at its limit.
	Learner uint64
	// Limit is each learn bucket's limit (flows with one learned cookie);
	// 0: unknown.
	Limit uint32
}

// PairAttempts are the attempts of one pair since the previous reading.
type PairAttempts struct {
	PoolID   uint32
	Src, Dst netip.Addr
	Count    uint64
	// Since is when the attempts began, as well as the reading shows: the
	// flow's creation for a pair new since the previous reading (its first
	// packet), else the previous reading.
	Since time.Time
}

// Delta is what one reading adds.
type Delta struct {
	At       time.Time
	Attempts []PairAttempts
	// Untracked are attempts the learn flows counted beyond the first
	// packet of each new pair: pairs that could not be learned because the
	// table was at its limit. They are real attempts no source is known for.
	Untracked uint64
	// Saturated: a learn bucket was at its limit at this reading: new
	// pairs whose first packet falls in it are not learned.
	Saturated bool
	// Learned is how many learned flows the table held.
	Learned int
}

// pairKey identifies a learned flow: its match.
type pairKey struct {
	pool     uint32
	src, dst netip.Addr
}

// pairState is what the meter remembers of one learned flow.
type pairState struct {
	packets uint64
	created time.Time // At - Age when first seen: the flow's creation, estimated
}

// Meter turns the successive reads of one bridge's offender table into
// attempts. A learned flow counts every packet of its pair except the first
// (counted by the learn flow: a flow learned while translating a packet is
// visible to later packets only), so a pair's attempts since the previous
// reading are the growth of its counter, plus one for a flow that is new.
//
// A flow absent from a reading expired (idle) or was removed; one that
// reappears later is a new flow. So is one whose creation moved by more
// than Tolerance or whose counter went down: the old flow expired and OVS
// learned the pair again between two readings. Reading several times per
// idle timeout makes this exact: a flow idles out only after an idle
// timeout without packets, so its last count was read before it went.
//
// The first reading of a meter is its baseline: the counters of flows
// created before Start are taken as they are (another replica, or nobody,
// counted what came before), flows created after Start count in full.
// A Meter is not safe for concurrent use.
type Meter struct {
	// Start is when this replica began to read the bridge (its mastership).
	Start time.Time
	// Tolerance bounds the jitter of creation estimates; a flow whose
	// creation moved by more is a new flow. Half the idle timeout is safe:
	// OVS re-learns a pair only after the old flow idled out, an idle
	// timeout after its last packet.
	Tolerance time.Duration

	started     bool
	lastRead    time.Time
	pairs       map[pairKey]pairState
	learner     uint64
	learnerDebt int64 // learner growth minus new pairs: negative while its counter lags
}

// NewMeter returns a meter for a bridge read since start.
func NewMeter(start time.Time, tolerance time.Duration) *Meter {
	return &Meter{Start: start, Tolerance: tolerance, pairs: map[pairKey]pairState{}}
}

// Read accounts for one reading and returns what it adds.
func (m *Meter) Read(r Reading) Delta {
	d := Delta{At: r.At, Learned: len(r.Learned)}
	if r.Limit > 0 {
		perCookie := map[uint64]uint32{}
		for _, s := range r.Learned {
			if perCookie[s.Cookie]++; perCookie[s.Cookie] >= r.Limit {
				d.Saturated = true
			}
		}
	}
	baseline := !m.started
	next := make(map[pairKey]pairState, len(r.Learned))
	var fresh uint64
	for _, s := range r.Learned {
		k := pairKey{pool: s.Flow.PoolID, src: s.Flow.Src, dst: s.Flow.Dst}
		created := r.At.Add(-s.Age)
		old, seen := m.pairs[k]
		if seen && !m.isNew(old, created, s.Packets) {
			next[k] = pairState{packets: s.Packets, created: old.created}
			if s.Packets > old.packets {
				d.Attempts = append(d.Attempts, PairAttempts{PoolID: k.pool, Src: k.src, Dst: k.dst, Count: s.Packets - old.packets, Since: m.lastAt(r.At)})
			}
			continue
		}
		next[k] = pairState{packets: s.Packets, created: created}
		if baseline && !created.After(m.Start) {
			continue // counted before us, by someone else or nobody
		}
		fresh++
		d.Attempts = append(d.Attempts, PairAttempts{PoolID: k.pool, Src: k.src, Dst: k.dst, Count: s.Packets + 1, Since: created})
	}
	// The learn flows' counter grows by one per new pair and by every
	// packet that could not be learned. Its statistics may lag the learned
	// flows' appearance (both are refreshed from the datapath), so new
	// pairs not yet in it are carried over as a debt.
	grew := r.Learner - m.learner
	if r.Learner < m.learner {
		grew = r.Learner // the counter restarted: ovs-vswitchd restarted, or the flow was re-added
	}
	if !baseline {
		m.learnerDebt += int64(grew) - int64(fresh)
		if m.learnerDebt > 0 {
			d.Untracked = uint64(m.learnerDebt)
			m.learnerDebt = 0
		}
	}
	m.started, m.pairs, m.learner, m.lastRead = true, next, r.Learner, r.At
	return d
}

// lastAt is when the previous reading was taken (at for the first).
func (m *Meter) lastAt(at time.Time) time.Time {
	if m.started {
		return m.lastRead
	}
	return at
}

// isNew reports whether a flow seen again is another flow than the one
// remembered: OVS learned the pair again in between.
func (m *Meter) isNew(old pairState, created time.Time, packets uint64) bool {
	if packets < old.packets {
		return true
	}
	return created.Sub(old.created) > m.Tolerance
}
