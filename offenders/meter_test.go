package offenders

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/op25b/op25b/flows"
)

var t0 = time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)

func pair(pool uint32, src, dst string) flows.LearnedFlow {
	return flows.LearnedFlow{PoolID: pool, Src: netip.MustParseAddr(src), Dst: netip.MustParseAddr(dst)}
}

// sample is a learned flow read at `at`, created at `created`.
func sample(l flows.LearnedFlow, packets uint64, at, created time.Time) Sample {
	return Sample{Flow: l, Packets: packets, Age: at.Sub(created)}
}

func render(d Delta) string {
	var parts []string
	for _, a := range d.Attempts {
		parts = append(parts, fmt.Sprintf("%d:%s>%s=%d@%ds", a.PoolID, a.Src, a.Dst, a.Count, int(a.Since.Sub(t0).Seconds())))
	}
	slices.Sort(parts)
	return fmt.Sprintf("%s untracked=%d saturated=%v learned=%d", strings.Join(parts, " "), d.Untracked, d.Saturated, d.Learned)
}

func TestMeter(t *testing.T) {
	a := pair(1, "10.1.0.5", "203.0.113.25")
	b := pair(1, "10.1.0.6", "203.0.113.25")
	c := pair(2, "2001:db8::5", "2001:db8:25::25")
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	for _, tt := range []struct {
		name     string
		start    time.Time
		readings []Reading
		want     []string
	}{
		{"a new pair counts its learned packets plus the first", at(0), []Reading{
			{At: at(10)},
			{At: at(20), Learned: []Sample{sample(a, 4, at(20), at(15))}, Learner: 1},
			{At: at(30), Learned: []Sample{sample(a, 10, at(30), at(15))}, Learner: 1},
			{At: at(40), Learned: []Sample{sample(a, 10, at(40), at(15))}, Learner: 1},
		}, []string{
			" untracked=0 saturated=false learned=0",
			"1:10.1.0.5>203.0.113.25=5@15s untracked=0 saturated=false learned=1",
			"1:10.1.0.5>203.0.113.25=6@20s untracked=0 saturated=false learned=1",
			" untracked=0 saturated=false learned=1",
		}},
		{"baseline: flows from before the start are not counted, later ones are", at(100), []Reading{
			{At: at(110), Learned: []Sample{sample(a, 50, at(110), at(0)), sample(b, 2, at(110), at(105))}, Learner: 9},
			{At: at(120), Learned: []Sample{sample(a, 53, at(120), at(0)), sample(b, 2, at(120), at(105))}, Learner: 9},
		}, []string{
			"1:10.1.0.6>203.0.113.25=3@105s untracked=0 saturated=false learned=2",
			"1:10.1.0.5>203.0.113.25=3@110s untracked=0 saturated=false learned=2",
		}},
		{"an expired pair learned again between readings is a new flow", at(0), []Reading{
			{At: at(0)},
			{At: at(10), Learned: []Sample{sample(a, 7, at(10), at(5))}, Learner: 1},
			// a went silent at 9s, expired at 69s, was learned again at 75s.
			{At: at(80), Learned: []Sample{sample(a, 2, at(80), at(75))}, Learner: 2},
			// the counter did not go down but the creation moved by 70s.
			{At: at(300), Learned: []Sample{sample(a, 9, at(300), at(150))}, Learner: 3},
		}, []string{
			" untracked=0 saturated=false learned=0",
			"1:10.1.0.5>203.0.113.25=8@5s untracked=0 saturated=false learned=1",
			"1:10.1.0.5>203.0.113.25=3@75s untracked=0 saturated=false learned=1",
			"1:10.1.0.5>203.0.113.25=10@150s untracked=0 saturated=false learned=1",
		}},
		{"creation estimates jitter within the tolerance", at(0), []Reading{
			{At: at(0)},
			{At: at(10), Learned: []Sample{sample(a, 1, at(10), at(5))}, Learner: 1},
			{At: at(20), Learned: []Sample{sample(a, 2, at(20), at(7))}, Learner: 1},
		}, []string{
			" untracked=0 saturated=false learned=0",
			"1:10.1.0.5>203.0.113.25=2@5s untracked=0 saturated=false learned=1",
			"1:10.1.0.5>203.0.113.25=1@10s untracked=0 saturated=false learned=1",
		}},
		{"beyond the learn limit: untracked, saturated", at(0), []Reading{
			{At: at(0), Limit: 2},
			{At: at(10), Learned: []Sample{sample(a, 0, at(10), at(5)), sample(c, 3, at(10), at(6))}, Learner: 7, Limit: 2},
			{At: at(20), Learned: []Sample{sample(a, 0, at(20), at(5)), sample(c, 3, at(20), at(6))}, Learner: 12, Limit: 2},
		}, []string{
			" untracked=0 saturated=false learned=0",
			"1:10.1.0.5>203.0.113.25=1@5s 2:2001:db8::5>2001:db8:25::25=4@6s untracked=5 saturated=true learned=2",
			" untracked=5 saturated=true learned=2",
		}},
		{"the learn counter lags the learned flows: no untracked attempts invented", at(0), []Reading{
			{At: at(0)},
			{At: at(10), Learned: []Sample{sample(a, 0, at(10), at(9)), sample(b, 0, at(10), at(9))}, Learner: 0},
			{At: at(20), Learned: []Sample{sample(a, 0, at(20), at(9)), sample(b, 0, at(20), at(9))}, Learner: 2},
			{At: at(30), Learned: []Sample{sample(a, 0, at(30), at(9)), sample(b, 0, at(30), at(9))}, Learner: 3},
		}, []string{
			" untracked=0 saturated=false learned=0",
			"1:10.1.0.5>203.0.113.25=1@9s 1:10.1.0.6>203.0.113.25=1@9s untracked=0 saturated=false learned=2",
			" untracked=0 saturated=false learned=2",
			" untracked=1 saturated=false learned=2",
		}},
		{"ovs-vswitchd restarted: counters start again", at(0), []Reading{
			{At: at(0)},
			{At: at(10), Learned: []Sample{sample(a, 20, at(10), at(1))}, Learner: 1},
			{At: at(20), Learned: []Sample{sample(a, 3, at(20), at(18))}, Learner: 1},
		}, []string{
			" untracked=0 saturated=false learned=0",
			"1:10.1.0.5>203.0.113.25=21@1s untracked=0 saturated=false learned=1",
			"1:10.1.0.5>203.0.113.25=4@18s untracked=0 saturated=false learned=1",
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m := NewMeter(tt.start, 30*time.Second)
			for i, r := range tt.readings {
				if got := render(m.Read(r)); got != tt.want[i] {
					t.Errorf("reading %d:\n got %s\nwant %s", i, got, tt.want[i])
				}
			}
		})
	}
}

// TestMeterCountsExactly: a simulated offender table (learn on the first
// packet of a pair, counter for the rest, idle expiry, a learn limit)
// read every few seconds; whatever the traffic, the attempts a meter
// reports per pair plus the untracked ones equal the packets sent, once
// every flow has been read after its last packet.
func TestMeterCountsExactly(t *testing.T) {
	type flow struct {
		packets       uint64
		created, last time.Time
	}
	pairs := []flows.LearnedFlow{
		pair(1, "10.1.0.1", "203.0.113.1"), pair(1, "10.1.0.1", "203.0.113.2"), pair(1, "10.1.0.2", "203.0.113.1"),
		pair(2, "10.2.0.1", "203.0.113.1"), pair(3, "2001:db8::1", "2001:db8:25::1"),
	}
	const idle, limit = 60 * time.Second, 3
	for seed := range 50 {
		table := map[flows.LearnedFlow]*flow{}
		var learner uint64
		sent := map[flows.LearnedFlow]uint64{}
		counted := map[flows.LearnedFlow]uint64{}
		var untracked uint64
		m := NewMeter(t0, idle/2)
		r := uint64(seed*7919 + 1)
		next := func(n int) int { r = r*6364136223846793005 + 1442695040888963407; return int(r>>33) % n }
		now := t0
		for step := range 2000 {
			now = now.Add(time.Duration(1+next(900)) * time.Millisecond)
			for k, f := range table { // idle expiry
				if now.Sub(f.last) >= idle {
					delete(table, k)
				}
			}
			if step < 1500 && next(3) > 0 {
				p := pairs[next(len(pairs))]
				if next(4) == 0 { // a burst to one pair
					p = pairs[0]
				}
				sent[p]++
				if f := table[p]; f != nil {
					f.packets++
					f.last = now
				} else {
					learner++
					if len(table) < limit {
						table[p] = &flow{created: now, last: now}
					}
				}
			}
			if step%13 == 0 || step == 1999 {
				read := Reading{At: now, Learner: learner, Limit: limit}
				for p, f := range table {
					read.Learned = append(read.Learned, sample(p, f.packets, now, f.created))
				}
				d := m.Read(read)
				untracked += d.Untracked
				for _, a := range d.Attempts {
					counted[flows.LearnedFlow{PoolID: a.PoolID, Src: a.Src, Dst: a.Dst}] += a.Count
				}
			}
		}
		var totalSent, totalCounted uint64
		for p, n := range sent {
			totalSent += n
			totalCounted += counted[p]
			if counted[p] > n {
				t.Fatalf("seed %d: %v counted %d, sent %d", seed, p, counted[p], n)
			}
		}
		if totalCounted+untracked != totalSent {
			t.Fatalf("seed %d: counted %d + untracked %d != sent %d", seed, totalCounted, untracked, totalSent)
		}
	}
}
