package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/op25b/op25b/flows"
	"github.com/op25b/op25b/internal/testenv"
	"github.com/op25b/op25b/topology"
)

// putDocument is n dynamic /24 pools (two flows each: ~200k flows for
// 100k pools) of one block-all service, one relay and one bridge.
func putDocument(n int, dpid topology.DPID) string {
	var b strings.Builder
	b.Grow(90 * n)
	b.WriteString(`{"services":[{"name":"ftth","phases":[{"block":"all","relays":true}]}],"relays":[{"name":"msa","prefix":"192.0.2.25/32"}],"pools":[`)
	for i := range n {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `{"name":"p%06d","prefix":"%d.%d.%d.0/24","kind":"dynamic","service":"ftth"}`, i, 10+i>>16, i>>8&255, i&255)
	}
	fmt.Fprintf(&b, `],"bridges":[{"dpid":"%s","name":"sub-a","pop":"tokyo-1"}]}`, dpid)
	return b.String()
}

// putTimeline is one PUT of the big document, every point measured from
// the moment the client starts sending it: the store's commit and the
// PUT's return (client side); the replica's cache holding the new revision
// (adopted from its own write, or read by its watch: adopted says which);
// its cluster loop seeing it; the flow-mods planned (compiled, indexed,
// planned against the set installed before); the bridge's acknowledgement
// (bundle committed, barrier answered).
type putTimeline struct {
	committed, returned, cached, noticed, planned, applied time.Duration
	adopted                                                bool
}

// BenchmarkPutToApplied200k: one op25bd at its defaults (embedded etcd)
// with one netdev bridge. Timed: PUT of 100k /24 pools (200k flows) over
// the REST API until the bridge's master acknowledged the revision (bundle
// committed, barrier answered), from the document it had before (no pools).
// The reference, in the same run: `ovs-ofctl --bundle add-flows` of the
// same 200k flows into an empty bridge. Also op25bd's RSS with the 100k
// pools loaded and installed.
//
//	go test -run '^$' -bench PutToApplied -benchtime 3x ./cmd/op25bd/
func BenchmarkPutToApplied200k(b *testing.B) {
	testenv.RequireOVS(b)
	const pools = 100_000
	r := startReplica(b, "put-bench", nil, "--data-dir", b.TempDir())
	dpid := topology.DPID("00000000b1600001")
	testenv.NewBridges(b, []topology.DPID{dpid}, "tcp:"+r.openflow)
	plain := testenv.NewBridge(b, "")
	small, big := putDocument(0, dpid), putDocument(pools, dpid)

	parsed, err := topology.ParseJSON([]byte(big))
	if err != nil {
		b.Fatal(err)
	}
	compiled, err := flows.Compile(parsed, dpid, time.Now(), flows.DefaultOptions())
	if err != nil {
		b.Fatal(err)
	}
	file := filepath.Join(b.TempDir(), "flows.txt")
	if err := os.WriteFile(file, []byte(flows.RenderSet(compiled.Flows)), 0o644); err != nil {
		b.Fatal(err)
	}
	b.Logf("document: %d pools, %.1f MB of JSON, %d flows", pools, float64(len(big))/1e6, len(compiled.Flows))

	applied := func(rev int64, from time.Time) (logLine, bool) {
		var found logLine
		_, ok := r.find(from, func(l logLine) bool {
			if l.Msg == "reconciled" && l.DPID == string(dpid) && l.Revision == rev {
				found = l
				return true
			}
			return false
		})
		return found, ok
	}
	put := func(doc string) (int64, time.Time, time.Time) {
		start := time.Now()
		rev := putConfig(b, r.api, doc)
		return rev, start, time.Now()
	}
	rev, start, _ := put(small)
	testenv.Eventually(b, time.Minute, "small document applied", func() bool { _, ok := applied(rev, start); return ok })

	var ours, theirs []time.Duration
	var lines []putTimeline
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		rev, start, returned := put(big)
		var done logLine
		testenv.Eventually(b, 5*time.Minute, "200k flows applied", func() bool {
			var ok bool
			done, ok = applied(rev, start)
			return ok
		})
		b.StopTimer()
		at := func(msg string) time.Duration {
			t, ok := r.find(start, func(l logLine) bool { return l.Msg == msg && l.Revision == rev })
			if !ok {
				return -1
			}
			return t.Sub(start)
		}
		tl := putTimeline{committed: at("document committed"), returned: returned.Sub(start), cached: at("document loaded"),
			noticed: at("policy document changed"), applied: done.Time.Sub(start)}
		if c := at("document updated"); c >= 0 {
			tl.cached = c
		}
		if c := at("document adopted"); c >= 0 {
			tl.cached, tl.adopted = c, true
		}
		tl.planned = tl.applied - time.Duration(done.Install)
		lines = append(lines, tl)
		ours = append(ours, tl.applied)
		b.Logf("iteration %d: committed %s, PUT returned %s, cache %s (adopted %v), cluster %s, planned %s, applied %s (install %s)", i,
			ms(tl.committed), ms(tl.returned), ms(tl.cached), tl.adopted, ms(tl.noticed), ms(tl.planned), ms(tl.applied), ms(time.Duration(done.Install)))

		theirs = append(theirs, timeCmd(b, "ovs-ofctl", "-O", "OpenFlow13", "--bundle", "add-flows", plain.Name, file))
		testenv.Run(b, "ovs-ofctl", "-O", "OpenFlow13", "del-flows", plain.Name)
		if i == 0 {
			benchRSS, benchHWM = r.rssKiB(), r.hwmKiB()
		}
		rev, start, _ = put(small)
		testenv.Eventually(b, 5*time.Minute, "small document applied", func() bool { _, ok := applied(rev, start); return ok })
		b.StartTimer()
	}
	b.StopTimer()
	o, t := median(ours), median(theirs)
	med := func(f func(putTimeline) time.Duration) time.Duration {
		var ds []time.Duration
		for _, l := range lines {
			ds = append(ds, f(l))
		}
		return ms(median(ds))
	}
	b.ReportMetric(o.Seconds(), "s/put-to-applied")
	b.ReportMetric(t.Seconds(), "s/ovs-ofctl")
	b.ReportMetric(float64(o)/float64(t), "ratio")
	b.ReportMetric(float64(benchRSS)/1024, "MiB-rss")
	adopted := 0
	for _, l := range lines {
		if l.adopted {
			adopted++
		}
	}
	fmt.Printf("ratio put-to-applied-200k: op25b %s / ovs-ofctl --bundle add-flows %s = %.2f (median of %d); steps (median, from the start of the PUT): "+
		"committed %s, PUT returned %s, in the cache %s (adopted %d of %d), cluster %s, compiled and planned %s, applied %s (install %s); "+
		"op25bd RSS %.0f MiB (peak %.0f MiB) with %d pools installed\n",
		ms(o), ms(t), float64(o)/float64(t), len(ours),
		med(func(l putTimeline) time.Duration { return l.committed }), med(func(l putTimeline) time.Duration { return l.returned }),
		med(func(l putTimeline) time.Duration { return l.cached }), adopted, len(lines), med(func(l putTimeline) time.Duration { return l.noticed }),
		med(func(l putTimeline) time.Duration { return l.planned }), ms(o), med(func(l putTimeline) time.Duration { return l.applied - l.planned }),
		float64(benchRSS)/1024, float64(benchHWM)/1024, pools)
}

func ms(d time.Duration) time.Duration { return d.Round(time.Millisecond) }

var benchRSS, benchHWM int64

func timeCmd(b *testing.B, name string, args ...string) time.Duration {
	b.Helper()
	start := time.Now()
	testenv.Run(b, name, args...)
	return time.Since(start)
}
