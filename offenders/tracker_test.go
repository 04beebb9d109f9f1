package offenders

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"runtime"
	"strings"
	"testing"
	"time"
)

func addr(s string) netip.Addr { return netip.MustParseAddr(s) }

func mustTracker(t testing.TB, cfg Config) *Tracker {
	t.Helper()
	tr, err := NewTracker(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func attempt(src, dst, pool string, n uint64) Attempt {
	return Attempt{Src: addr(src), Dst: addr(dst), Pool: pool, Count: n}
}

func lines(r Result) string {
	var b strings.Builder
	for _, o := range r.Offenders {
		fmt.Fprintf(&b, "%s %s %s obs=%v att=%d dst=%d first=%s last=%s\n", o.Bridge, o.Src, o.Pool, o.Observed, o.Attempts, o.Destinations,
			o.FirstSeen.Sub(t0), o.LastSeen.Sub(t0))
	}
	fmt.Fprintf(&b, "truncated=%v", r.Truncated)
	return b.String()
}

func query(t *testing.T, tr *Tracker, now time.Time, since time.Duration, limit int, bridge func(string) bool) Result {
	t.Helper()
	r, err := tr.Query(Query{Now: now, Since: since, Limit: limit, Bridge: bridge})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestTrackerQuery(t *testing.T) {
	tr := mustTracker(t, Config{})
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	tr.Add(Batch{Bridge: "b1", At: at(0), Attempts: []Attempt{
		attempt("10.1.0.5", "203.0.113.1", "dyn", 3),
		attempt("10.1.0.6", "203.0.113.1", "dyn", 1),
	}})
	tr.Add(Batch{Bridge: "b1", At: at(10 * time.Second), Attempts: []Attempt{
		attempt("10.1.0.5", "203.0.113.2", "dyn", 4),
		{Src: addr("10.1.0.7"), Dst: addr("203.0.113.9"), Pool: "dyn", Observed: true, Count: 2, Since: at(2 * time.Second)},
	}})
	tr.Add(Batch{Bridge: "b2", At: at(90 * time.Minute), Attempts: []Attempt{attempt("10.2.0.1", "203.0.113.1", "other", 5)}})
	tr.Add(Batch{Bridge: "b1", At: at(100 * time.Minute), Attempts: []Attempt{attempt("10.1.0.6", "203.0.113.3", "dyn", 2)}})

	now := at(101 * time.Minute)
	if got, want := lines(query(t, tr, now, 2*time.Hour, 0, nil)), `b1 10.1.0.5 dyn obs=false att=7 dst=2 first=0s last=10s
b2 10.2.0.1 other obs=false att=5 dst=1 first=1h30m0s last=1h30m0s
b1 10.1.0.6 dyn obs=false att=3 dst=2 first=0s last=1h40m0s
b1 10.1.0.7 dyn obs=true att=2 dst=1 first=2s last=10s
truncated=false`; got != want {
		t.Errorf("2h:\n%s\nwant\n%s", got, want)
	}
	// The last hour, exact to the minute: only the two late batches.
	if got, want := lines(query(t, tr, now, time.Hour, 0, nil)), `b2 10.2.0.1 other obs=false att=5 dst=1 first=1h30m0s last=1h30m0s
b1 10.1.0.6 dyn obs=false att=2 dst=1 first=1h40m0s last=1h40m0s
truncated=false`; got != want {
		t.Errorf("1h:\n%s\nwant\n%s", got, want)
	}
	if got, want := lines(query(t, tr, now, 2*time.Hour, 1, func(b string) bool { return b == "b1" })), `b1 10.1.0.5 dyn obs=false att=7 dst=2 first=0s last=10s
truncated=false`; got != want {
		t.Errorf("limit 1, bridge b1:\n%s\nwant\n%s", got, want)
	}
	// Retention: after 24h without attempts a source is gone.
	// The window's first hour is counted whole: 10.1.0.6's attempt at 0s
	// is in, first_seen is the window's start.
	if got := lines(query(t, tr, at(24*time.Hour+5*time.Minute), 24*time.Hour, 0, nil)); got != `b2 10.2.0.1 other obs=false att=5 dst=1 first=1h30m0s last=1h30m0s
b1 10.1.0.6 dyn obs=false att=3 dst=1 first=5m0s last=1h40m0s
truncated=false` {
		t.Errorf("24h later:\n%s", got)
	}
	if tr.Stats(now).Tracked != 2 {
		t.Errorf("tracked after pruning: %d", tr.Stats(now).Tracked)
	}
}

func TestTrackerBadQuery(t *testing.T) {
	tr := mustTracker(t, Config{Retention: time.Hour})
	for _, q := range []Query{{Now: t0, Since: 0}, {Now: t0, Since: -time.Second}, {Now: t0, Since: 2 * time.Hour}, {Now: t0, Since: time.Minute, Limit: -1}} {
		if _, err := tr.Query(q); !errors.Is(err, ErrBadQuery) {
			t.Errorf("Query(%+v) = %v, want ErrBadQuery", q, err)
		}
	}
	for _, c := range []Config{{MaxSources: -1}, {Retention: time.Second}, {Retention: 8 * 24 * time.Hour}} {
		if _, err := NewTracker(c); err == nil {
			t.Errorf("NewTracker(%+v) accepted", c)
		}
	}
}

// TestTrackerBoundedMemory: beyond MaxSources the least recently active
// source makes room, and queries whose window saw it say truncated.
func TestTrackerBoundedMemory(t *testing.T) {
	tr := mustTracker(t, Config{MaxSources: 3})
	for i := range 5 {
		tr.Add(Batch{Bridge: "b", At: t0.Add(time.Duration(i) * time.Minute), Attempts: []Attempt{
			attempt(fmt.Sprintf("10.0.0.%d", i), "203.0.113.1", "p", uint64(10+i))}})
	}
	now := t0.Add(10 * time.Minute)
	st := tr.Stats(now)
	if st.Tracked != 3 || st.Evicted != 2 || !st.Truncated {
		t.Errorf("stats %+v", st)
	}
	got := lines(query(t, tr, now, time.Hour, 0, nil))
	if !strings.HasPrefix(got, "b 10.0.0.4 p obs=false att=14") || !strings.HasSuffix(got, "truncated=true") || strings.Count(got, "\n") != 3 {
		t.Errorf("after eviction:\n%s", got)
	}
	// A window that begins after the last evicted source's last attempt is
	// complete again.
	if r := query(t, tr, now, 8*time.Minute, 0, nil); r.Truncated {
		t.Errorf("window after the eviction: truncated")
	}
	// A switch at its learn limit truncates the windows that include it, on
	// its bridge only.
	tr.Add(Batch{Bridge: "full", At: now, Saturated: true, Untracked: 7, Learned: 50})
	if r := query(t, tr, now, 5*time.Minute, 0, func(b string) bool { return b == "full" }); !r.Truncated {
		t.Errorf("saturated bridge: not truncated")
	}
	if r := query(t, tr, now, 5*time.Minute, 0, func(b string) bool { return b == "b" }); r.Truncated {
		t.Errorf("other bridge: truncated")
	}
	if bs := tr.Stats(now).Bridges["full"]; bs.Untracked != 7 || bs.Learned != 50 || !bs.Saturated {
		t.Errorf("bridge stats %+v", bs)
	}
}

func TestTrackerDestinationsBounded(t *testing.T) {
	tr := mustTracker(t, Config{})
	for i := range 3 * MaxDestinations {
		tr.Add(Batch{Bridge: "b", At: t0.Add(time.Duration(i) * time.Second), Attempts: []Attempt{
			attempt("10.0.0.1", fmt.Sprintf("203.0.%d.%d", i/200, i%200), "p", 1)}})
	}
	r := query(t, tr, t0.Add(time.Hour), time.Hour, 0, nil)
	if len(r.Offenders) != 1 || r.Offenders[0].Destinations != MaxDestinations || r.Offenders[0].Attempts != 3*MaxDestinations {
		t.Errorf("%s", lines(r))
	}
}

// TestTrackerWindowsMatchNaiveModel: random attempts over two days; every
// window's count equals a plain sum over the attempts whose minute is in
// the window (exact for windows within the last hour; further back the
// window's first hour is counted whole, so the tracker may count more,
// never less, and never more than that hour adds).
func TestTrackerWindowsMatchNaiveModel(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	tr := mustTracker(t, Config{Retention: 30 * time.Hour})
	type event struct {
		at  time.Time
		src string
		n   uint64
	}
	var events []event
	now := t0
	for range 3000 {
		now = now.Add(time.Duration(r.IntN(90)) * time.Second)
		e := event{at: now, src: fmt.Sprintf("10.0.0.%d", r.IntN(5)), n: uint64(1 + r.IntN(5))}
		events = append(events, e)
		tr.Add(Batch{Bridge: "b", At: e.at, Attempts: []Attempt{attempt(e.src, "203.0.113.1", "p", e.n)}})
	}
	for _, since := range []time.Duration{time.Minute, 7 * time.Minute, 59 * time.Minute, time.Hour, 61 * time.Minute, 3 * time.Hour, 29 * time.Hour} {
		res := query(t, tr, now, since, 0, nil)
		got := map[string]uint64{}
		for _, o := range res.Offenders {
			got[o.Src.String()] = o.Attempts
		}
		from := unixMinute(now.Add(-since))
		exact, slack := map[string]uint64{}, map[string]uint64{}
		for _, e := range events {
			m := unixMinute(e.at)
			switch {
			case m >= from:
				exact[e.src] += e.n
			case m >= from/60*60:
				slack[e.src] += e.n
			}
		}
		for src, want := range exact {
			g := got[src]
			if since <= time.Hour && g != want || g < want || g > want+slack[src] {
				t.Errorf("since %s, %s: %d attempts, want %d (+ up to %d)", since, src, g, want, slack[src])
			}
		}
	}
}

// TestTrackerMemoryPerSource measures the heap a full tracker holds,
// each source with MaxDestinations destinations: the bound behind
// --offenders-max-sources (docs/operations.md).
func TestTrackerMemoryPerSource(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates 20k sources")
	}
	const n = 20_000
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	tr := mustTracker(t, Config{MaxSources: n})
	for i := range n {
		var as []Attempt
		for d := range MaxDestinations {
			as = append(as, attempt(fmt.Sprintf("10.%d.%d.%d", i>>16, i>>8&255, i&255), fmt.Sprintf("203.0.113.%d", d), "pool", 1))
		}
		tr.Add(Batch{Bridge: "0000000000000001", At: t0, Attempts: as})
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	per := float64(after.HeapAlloc-before.HeapAlloc) / n
	t.Logf("%.0f bytes per source with %d destinations: %.0f MB at the default %d sources", per, MaxDestinations, per*DefaultMaxSources/1e6, DefaultMaxSources)
	if per > 4096 {
		t.Errorf("%.0f bytes per source", per)
	}
	runtime.KeepAlive(tr)
}

func TestMerge(t *testing.T) {
	a := Result{Since: t0, Offenders: []Offender{
		{Src: addr("10.0.0.1"), Bridge: "b1", Pool: "p", Attempts: 5, Destinations: 2, FirstSeen: t0.Add(time.Minute), LastSeen: t0.Add(2 * time.Minute)},
		{Src: addr("10.0.0.2"), Bridge: "b1", Pool: "p", Attempts: 1, Destinations: 1, FirstSeen: t0, LastSeen: t0},
	}}
	b := Result{Since: t0, Truncated: true, Offenders: []Offender{
		{Src: addr("10.0.0.1"), Bridge: "b1", Pool: "p", Attempts: 3, Destinations: 3, FirstSeen: t0, LastSeen: t0.Add(time.Minute)},
		{Src: addr("10.0.0.1"), Bridge: "b1", Pool: "p", Observed: true, Attempts: 4, Destinations: 1, FirstSeen: t0, LastSeen: t0},
	}}
	got := lines(Merge(2, a, b))
	if want := "b1 10.0.0.1 p obs=false att=8 dst=3 first=0s last=2m0s\nb1 10.0.0.1 p obs=true att=4 dst=1 first=0s last=0s\ntruncated=true"; got != want {
		t.Errorf("Merge:\n%s\nwant\n%s", got, want)
	}
}
