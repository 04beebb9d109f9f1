package offenders

import (
	"cmp"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"time"
)

// Defaults and bounds of a Tracker.
const (
	// DefaultMaxSources bounds the sources one replica remembers.
	DefaultMaxSources = 100_000
	// DefaultRetention is how long a source is remembered after its last
	// attempt.
	DefaultRetention = 24 * time.Hour
	// MaxRetention bounds Retention: each source keeps one counter per hour
	// of retention.
	MaxRetention = 7 * 24 * time.Hour
	// MaxDestinations is how many distinct destinations are remembered per
	// source; a source that tried more shows this many.
	MaxDestinations = 32
	// maxTotals bounds the (bridge, pool, mode) attempt totals kept for
	// the metrics; beyond it attempts are totalled under pool "".
	maxTotals = 200_000
)

// Attempt is what a Tracker is told about one pair: Count attempts of Src
// towards Dst, a source of pool Pool, counted in observe mode or not.
type Attempt struct {
	Src, Dst netip.Addr
	Pool     string
	Observed bool
	Count    uint64
	// Since is when these attempts began (a pair's first packet, or the
	// previous reading); the source's first_seen when it is new.
	Since time.Time
}

// Batch is one reading of one bridge's offender table.
type Batch struct {
	Bridge   string
	At       time.Time
	Attempts []Attempt
	// Untracked attempts could not be attributed to a source (the
	// switch's learn limit); Saturated: the limit was reached. Either makes
	// queries whose window includes At report truncated.
	Untracked uint64
	Saturated bool
	// Learned is how many learned flows the bridge's table held.
	Learned int
}

// Offender is one source in a query's answer.
type Offender struct {
	Src          netip.Addr
	Pool         string
	Bridge       string
	Observed     bool
	Attempts     uint64
	Destinations int
	FirstSeen    time.Time
	LastSeen     time.Time
}

// Result answers a Query.
type Result struct {
	// Since is the start of the window.
	Since time.Time
	// Truncated: the answer may miss attempts of the window: a switch was
	// at its learn limit, or this tracker evicted a source that was
	// active in the window to make room (MaxSources).
	Truncated bool
	Offenders []Offender
}

// Query asks for the sources with attempts in [Now-Since, Now], most
// attempts first, at most Limit of them (0: all), on the bridges Bridge
// accepts (nil: all).
type Query struct {
	Now    time.Time
	Since  time.Duration
	Limit  int
	Bridge func(dpid string) bool
}

// Config bounds a Tracker. Zero values take the defaults.
type Config struct {
	MaxSources int
	Retention  time.Duration
}

// Validate reports bounds a Tracker cannot keep.
func (c Config) Validate() error {
	switch {
	case c.MaxSources < 0:
		return fmt.Errorf("max sources %d: must be positive", c.MaxSources)
	case c.Retention != 0 && (c.Retention < time.Minute || c.Retention > MaxRetention):
		return fmt.Errorf("retention %s: must be from 1m to %s", c.Retention, MaxRetention)
	}
	return nil
}

// ErrBadQuery is wrapped by Query errors a caller caused.
var ErrBadQuery = errors.New("bad offenders query")

// Stats is the tracker's state for the metrics.
type Stats struct {
	Tracked, MaxSources int
	Evicted             uint64
	// Truncated: attempts could not be attributed in the last hour (the
	// tracker evicted an active source, or a switch was at its limit).
	Truncated bool
	Bridges   map[string]BridgeStats
	// Attempts are the attempts attributed since the tracker started, by
	// bridge, pool and mode.
	Attempts map[TotalKey]uint64
}

// BridgeStats are one bridge's offender-table figures.
type BridgeStats struct {
	Learned   int    // learned flows at the last reading
	Untracked uint64 // attempts beyond the learn limit since the tracker started
	Saturated bool   // at the learn limit at the last reading
}

// TotalKey labels an attempt total.
type TotalKey struct {
	Bridge, Pool string
	Observed     bool
}

// recordKey identifies a tracked source: a source counted enforcing and
// observing (a phase switched in the window) is two records.
type recordKey struct {
	bridge   string
	src      netip.Addr
	observed bool
}

// ringMinutes is the length of a record's minute ring: 61 minutes make a
// one-hour window exact to the minute, the rest rounds up.
const ringMinutes = 64

// dest is a destination a source tried, as a 32-bit hash of its address
// (distinct counts need no more: two of a source's 32 colliding is a
// one-in-ten-million event that undercounts by one), and the last minute
// it was tried.
type dest struct {
	hash       uint32
	lastMinute int32 // Unix minutes: good until the year 6053
}

// destHash is FNV-1a over the 16-byte form of the address.
func destHash(a netip.Addr) uint32 {
	h := uint32(2166136261)
	for _, b := range a.As16() {
		h = (h ^ uint32(b)) * 16777619
	}
	return h
}

// record is one source: counters per minute for the last hour and per
// hour for the retention, so its memory is fixed whatever it does.
type record struct {
	key         recordKey
	pool        string
	first, last time.Time
	minutes     [ringMinutes]uint32
	minuteHead  int64 // the newest minute (Unix minutes) counted
	hours       []uint32
	hourHead    int64
	dests       []dest
	prev, next  *record // recency list, most recent first
}

// Tracker remembers attempts per source within fixed memory. It is safe
// for concurrent use.
type Tracker struct {
	maxSources int
	retention  time.Duration
	hours      int

	mu           sync.Mutex
	records      map[recordKey]*record
	newest       *record
	oldest       *record
	evicted      uint64
	evictedUntil time.Time // the latest last attempt of an evicted source
	bridges      map[string]*bridgeState
	totals       map[TotalKey]uint64
}

type bridgeState struct {
	BridgeStats
	truncatedAt time.Time
}

// NewTracker returns an empty tracker; cfg must pass Validate.
func NewTracker(cfg Config) (*Tracker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.MaxSources == 0 {
		cfg.MaxSources = DefaultMaxSources
	}
	if cfg.Retention == 0 {
		cfg.Retention = DefaultRetention
	}
	return &Tracker{
		maxSources: cfg.MaxSources, retention: cfg.Retention,
		hours:   int((cfg.Retention+time.Hour-1)/time.Hour) + 1,
		records: map[recordKey]*record{}, bridges: map[string]*bridgeState{}, totals: map[TotalKey]uint64{},
	}, nil
}

// Retention is how far back queries can look.
func (t *Tracker) Retention() time.Duration { return t.retention }

// Add records one reading of a bridge.
func (t *Tracker) Add(b Batch) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.prune(b.At)
	bs := t.bridges[b.Bridge]
	if bs == nil {
		bs = &bridgeState{}
		t.bridges[b.Bridge] = bs
	}
	bs.Learned, bs.Saturated = b.Learned, b.Saturated
	bs.Untracked += b.Untracked
	if b.Untracked > 0 || b.Saturated {
		bs.truncatedAt = b.At
	}
	minute := unixMinute(b.At)
	for _, a := range b.Attempts {
		if a.Count == 0 || !a.Src.IsValid() {
			continue
		}
		t.total(TotalKey{Bridge: b.Bridge, Pool: a.Pool, Observed: a.Observed}, a.Count)
		k := recordKey{bridge: b.Bridge, src: a.Src, observed: a.Observed}
		r := t.records[k]
		if r == nil {
			r = t.admit(k, a, b.At)
		}
		r.pool = a.Pool
		if b.At.After(r.last) {
			r.last = b.At
		}
		r.count(minute, a.Count, t.hours)
		r.saw(a.Dst, minute)
		t.touch(r)
	}
}

func (t *Tracker) total(k TotalKey, n uint64) {
	if _, ok := t.totals[k]; !ok && len(t.totals) >= maxTotals {
		k.Pool = ""
	}
	t.totals[k] += n
}

// admit creates the record of a new source, evicting the least recently
// active one when the tracker is full.
func (t *Tracker) admit(k recordKey, a Attempt, at time.Time) *record {
	if len(t.records) >= t.maxSources && t.oldest != nil {
		old := t.oldest
		if old.last.After(t.evictedUntil) {
			t.evictedUntil = old.last
		}
		t.evicted++
		t.remove(old)
	}
	first := a.Since
	if first.IsZero() || first.After(at) {
		first = at
	}
	r := &record{key: k, first: first, last: at, hours: make([]uint32, t.hours), minuteHead: unixMinute(at), hourHead: unixMinute(at) / 60}
	t.records[k] = r
	return r
}

// prune forgets sources whose last attempt is older than the retention.
func (t *Tracker) prune(now time.Time) {
	cutoff := now.Add(-t.retention)
	for t.oldest != nil && t.oldest.last.Before(cutoff) {
		t.remove(t.oldest)
	}
}

func (t *Tracker) remove(r *record) {
	t.unlink(r)
	delete(t.records, r.key)
}

// touch moves r to the most recent end of the recency list.
func (t *Tracker) touch(r *record) {
	if t.newest == r {
		return
	}
	t.unlink(r)
	r.next = t.newest
	if t.newest != nil {
		t.newest.prev = r
	}
	t.newest = r
	if t.oldest == nil {
		t.oldest = r
	}
}

func (t *Tracker) unlink(r *record) {
	if r.prev != nil {
		r.prev.next = r.next
	} else if t.newest == r {
		t.newest = r.next
	}
	if r.next != nil {
		r.next.prev = r.prev
	} else if t.oldest == r {
		t.oldest = r.prev
	}
	r.prev, r.next = nil, nil
}

func unixMinute(t time.Time) int64 { return t.Unix() / 60 }

// count adds n attempts at minute m to both rings.
func (r *record) count(m int64, n uint64, hours int) {
	add := func(v uint32) uint32 {
		if s := uint64(v) + n; s < 1<<32 {
			return uint32(s)
		}
		return 1<<32 - 1
	}
	if m > r.minuteHead {
		for x := max(r.minuteHead+1, m-ringMinutes+1); x <= m; x++ {
			r.minutes[x%ringMinutes] = 0
		}
		r.minuteHead = m
	}
	if m > r.minuteHead-ringMinutes {
		r.minutes[m%ringMinutes] = add(r.minutes[m%ringMinutes])
	}
	h := m / 60
	if h > r.hourHead {
		for x := max(r.hourHead+1, h-int64(hours)+1); x <= h; x++ {
			r.hours[x%int64(hours)] = 0
		}
		r.hourHead = h
	}
	if h > r.hourHead-int64(hours) {
		r.hours[h%int64(hours)] = add(r.hours[h%int64(hours)])
	}
}

// saw records a destination at minute m.
func (r *record) saw(dst netip.Addr, minute int64) {
	if !dst.IsValid() {
		return
	}
	h, m := destHash(dst), int32(minute)
	for i := range r.dests {
		if r.dests[i].hash == h {
			r.dests[i].lastMinute = max(r.dests[i].lastMinute, m)
			return
		}
	}
	if len(r.dests) < MaxDestinations {
		if r.dests == nil {
			r.dests = make([]dest, 0, 4)
		}
		r.dests = append(r.dests, dest{hash: h, lastMinute: m})
		return
	}
	// Full: the destination seen longest ago makes room, so the set
	// follows what the source does now.
	oldest := 0
	for i := range r.dests {
		if r.dests[i].lastMinute < r.dests[oldest].lastMinute {
			oldest = i
		}
	}
	if r.dests[oldest].lastMinute < m {
		r.dests[oldest] = dest{hash: h, lastMinute: m}
	}
}

// window is a query window in minutes.
type window struct {
	start, now time.Time
	from, to   int64 // Unix minutes
}

// inWindow sums r's attempts in w and finds the earliest minute with any.
// Up to an hour back it is exact to the minute; a window reaching further
// back also counts the whole hour it starts in.
func (r *record) inWindow(w window, hours int) (attempts uint64, first time.Time) {
	firstMinute := int64(-1)
	sumMinutes := func(a, b int64) {
		for x := max(a, r.minuteHead-ringMinutes+1); x <= min(b, r.minuteHead); x++ {
			if v := r.minutes[x%ringMinutes]; v > 0 {
				attempts += uint64(v)
				if firstMinute < 0 {
					firstMinute = x
				}
			}
		}
	}
	if w.from > w.to-ringMinutes {
		sumMinutes(w.from, w.to)
	} else {
		// The first whole hour inside the minute ring: minutes from there
		// on come from the ring, the hours before from the hour ring.
		boundary := (w.to - ringMinutes + 1 + 59) / 60 * 60
		for h := max(w.from/60, r.hourHead-int64(hours)+1); h <= min(boundary/60-1, r.hourHead); h++ {
			if v := r.hours[h%int64(hours)]; v > 0 {
				attempts += uint64(v)
				if firstMinute < 0 {
					firstMinute = h * 60
				}
			}
		}
		sumMinutes(boundary, w.to)
	}
	if attempts == 0 {
		return 0, time.Time{}
	}
	first = time.Unix(firstMinute*60, 0)
	if first.Before(w.start) {
		first = w.start
	}
	if first.Before(r.first) {
		first = r.first
	}
	return attempts, first
}

// destinations counts the destinations tried in w.
func (r *record) destinations(w window) int {
	n := 0
	for _, d := range r.dests {
		if int64(d.lastMinute) >= w.from {
			n++
		}
	}
	return n
}

// Query answers q; an error wraps ErrBadQuery.
func (t *Tracker) Query(q Query) (Result, error) {
	if q.Since <= 0 || q.Since > t.retention {
		return Result{}, fmt.Errorf("%w: since %s must be positive and at most the retention, %s", ErrBadQuery, q.Since, t.retention)
	}
	if q.Limit < 0 {
		return Result{}, fmt.Errorf("%w: limit %d must not be negative", ErrBadQuery, q.Limit)
	}
	start := q.Now.Add(-q.Since)
	w := window{start: start, now: q.Now, from: unixMinute(start), to: unixMinute(q.Now)}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.prune(q.Now)
	res := Result{Since: start, Truncated: !t.evictedUntil.Before(start) && !t.evictedUntil.IsZero()}
	for name, bs := range t.bridges {
		if (q.Bridge == nil || q.Bridge(name)) && !bs.truncatedAt.IsZero() && !bs.truncatedAt.Before(start) {
			res.Truncated = true
		}
	}
	// Every record, not just the recent end of the recency list: batches
	// of different bridges may arrive slightly out of order. A record
	// whose last attempt is more than an hour before the window has none
	// in it (the window's first hour is the most it counts back).
	horizon := start.Add(-time.Hour)
	for r := t.newest; r != nil; r = r.next {
		if r.last.Before(horizon) || q.Bridge != nil && !q.Bridge(r.key.bridge) {
			continue
		}
		attempts, first := r.inWindow(w, t.hours)
		if attempts == 0 {
			continue
		}
		res.Offenders = append(res.Offenders, Offender{
			Src: r.key.src, Pool: r.pool, Bridge: r.key.bridge, Observed: r.key.observed,
			Attempts: attempts, Destinations: max(1, r.destinations(w)), FirstSeen: first, LastSeen: r.last,
		})
	}
	sortOffenders(res.Offenders)
	if q.Limit > 0 && len(res.Offenders) > q.Limit {
		res.Offenders = res.Offenders[:q.Limit]
	}
	return res, nil
}

// sortOffenders orders most attempts first, then most recent, then by
// bridge, source and mode, so equal counts come out in a stable order.
func sortOffenders(os []Offender) {
	slices.SortFunc(os, func(a, b Offender) int {
		if c := cmp.Compare(b.Attempts, a.Attempts); c != 0 {
			return c
		}
		if c := b.LastSeen.Compare(a.LastSeen); c != 0 {
			return c
		}
		if c := cmp.Compare(a.Bridge, b.Bridge); c != 0 {
			return c
		}
		if c := a.Src.Compare(b.Src); c != 0 {
			return c
		}
		switch {
		case a.Observed == b.Observed:
			return 0
		case a.Observed:
			return 1
		}
		return -1
	})
}

// Merge combines the answers of several replicas to one query: a source
// reported by two (a bridge whose mastership moved in the window) has its
// attempts summed, the earliest first and latest last seen, and the larger
// destination count (each replica counted its own part; the union is not
// known).
func Merge(limit int, results ...Result) Result {
	var out Result
	byKey := map[recordKey]int{}
	for i, r := range results {
		if i == 0 || r.Since.Before(out.Since) {
			out.Since = r.Since
		}
		out.Truncated = out.Truncated || r.Truncated
		for _, o := range r.Offenders {
			k := recordKey{bridge: o.Bridge, src: o.Src, observed: o.Observed}
			j, ok := byKey[k]
			if !ok {
				byKey[k] = len(out.Offenders)
				out.Offenders = append(out.Offenders, o)
				continue
			}
			m := &out.Offenders[j]
			m.Attempts += o.Attempts
			m.Destinations = max(m.Destinations, o.Destinations)
			if o.FirstSeen.Before(m.FirstSeen) {
				m.FirstSeen = o.FirstSeen
			}
			if o.LastSeen.After(m.LastSeen) {
				m.LastSeen, m.Pool = o.LastSeen, o.Pool
			}
		}
	}
	sortOffenders(out.Offenders)
	if limit > 0 && len(out.Offenders) > limit {
		out.Offenders = out.Offenders[:limit]
	}
	return out
}

// Stats returns the tracker's figures at now.
func (t *Tracker) Stats(now time.Time) Stats {
	t.mu.Lock()
	defer t.mu.Unlock()
	hourAgo := now.Add(-time.Hour)
	s := Stats{Tracked: len(t.records), MaxSources: t.maxSources, Evicted: t.evicted,
		Truncated: !t.evictedUntil.IsZero() && !t.evictedUntil.Before(hourAgo),
		Bridges:   make(map[string]BridgeStats, len(t.bridges)), Attempts: make(map[TotalKey]uint64, len(t.totals))}
	for name, bs := range t.bridges {
		s.Bridges[name] = bs.BridgeStats
		if !bs.truncatedAt.IsZero() && !bs.truncatedAt.Before(hourAgo) {
			s.Truncated = true
		}
	}
	for k, v := range t.totals {
		s.Attempts[k] = v
	}
	return s
}
