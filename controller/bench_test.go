package controller

// Benchmarks against real OVS (netdev bridge), each printing its ratio to
// ovs-ofctl measured in the same run:
//
//	go test -run XXX -bench . -benchtime 3x ./controller/
//
// Timings are reported, never asserted.

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/op25b/op25b/controller/ofwire"
	"github.com/op25b/op25b/flows"
	"github.com/op25b/op25b/internal/testenv"
)

const benchFlows = 100_000

// benchSetup is a controller with an event channel and one connected,
// empty bridge, plus a second bridge without controller for ovs-ofctl.
type benchSetup struct {
	rc     *runningController
	br     testenv.Bridge
	plain  testenv.Bridge
	events chan Event
	rev    int64
}

// newBenchSetup: a controller and a bridge. Unless monitored, the
// controller does not subscribe to flow monitoring, so that every reconcile
// dumps (the cost these benchmarks measure; a monitored master plans policy
// changes from the set it installed, BenchmarkOnePoolChangeMonitored100k)
// and ovs-ofctl's deletes between iterations are not repaired behind the
// benchmark's back.
func newBenchSetup(b *testing.B, monitored bool) *benchSetup {
	b.Helper()
	events := make(chan Event, 1024)
	rc := startController(b, Config{AuditInterval: time.Hour, noMonitor: !monitored, Events: func(e Event) {
		if e.Kind == EventReconciled || e.Kind == EventReconcileFailed {
			events <- e
		}
	}})
	br := testenv.NewBridge(b, "")
	br.SetController(b, "tcp:"+rc.addr)
	waitFor(b, "bench switch connected", func() bool { return rc.status(br.DPID).Connected })
	return &benchSetup{rc: rc, br: br, plain: testenv.NewBridge(b, ""), events: events}
}

// apply sets the desired flows at a new revision and returns the wall time
// until the reconcile's event, and the event.
func (s *benchSetup) apply(b *testing.B, fs []flows.Flow) (time.Duration, Event) {
	s.rev++
	start := time.Now()
	s.rc.SetDesired(Desired{DPID: s.br.DPID, Revision: s.rev, Flows: fs, Master: true, Generation: 1})
	for {
		select {
		case e := <-s.events:
			if e.Revision != s.rev {
				continue
			}
			if e.Err != nil {
				b.Fatalf("reconcile: %v", e.Err)
			}
			return time.Since(start), e
		case <-time.After(5 * time.Minute):
			b.Fatal("reconcile did not finish")
		}
	}
}

func clearOwned(b *testing.B, br testenv.Bridge) {
	br.Ofctl(b, "del-flows", br.Name, fmt.Sprintf("cookie=%#x/%#x", flows.CookieMarker, flows.CookieMask))
}

func timeCmd(b *testing.B, name string, args ...string) time.Duration {
	start := time.Now()
	testenv.Run(b, name, args...)
	return time.Since(start)
}

func median(ds []time.Duration) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

func report(b *testing.B, what string, ours, theirs []time.Duration, theirName string) {
	o, t := median(ours), median(theirs)
	ratio := float64(o) / float64(t)
	msg := fmt.Sprintf("ratio %s: controller %v / %s %v = %.2f (median of %d)", what, o.Round(time.Millisecond), theirName, t.Round(time.Millisecond), ratio, len(ours))
	b.Log(msg)
	fmt.Println(msg)
	b.ReportMetric(ratio, "ratio")
	b.ReportMetric(float64(o.Milliseconds()), "ms/controller")
	b.ReportMetric(float64(t.Milliseconds()), "ms/ovs-ofctl")
}

// Full install of 100k flows through the controller (dump of an empty
// table + one bundle + commit) vs `ovs-ofctl --bundle add-flows`.
func BenchmarkInstall100k(b *testing.B) {
	s := newBenchSetup(b, false)
	fs := dropFlows(benchFlows, netip.MustParseAddr("10.0.0.0"))
	file := filepath.Join(b.TempDir(), "flows.txt")
	if err := os.WriteFile(file, []byte(flows.RenderSet(fs)), 0o644); err != nil {
		b.Fatal(err)
	}
	var ours, theirs []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		clearOwned(b, s.br)
		clearOwned(b, s.plain)
		b.StartTimer()
		d, e := s.apply(b, fs)
		b.StopTimer()
		if e.Changes != len(fs) {
			b.Fatalf("install sent %d flow-mods, want %d", e.Changes, len(fs))
		}
		ours = append(ours, d)
		theirs = append(theirs, timeCmd(b, "ovs-ofctl", "-O", "OpenFlow13", "--bundle", "add-flows", s.plain.Name, file))
		b.StartTimer()
	}
	b.StopTimer()
	report(b, "install-100k", ours, theirs, "ovs-ofctl --bundle add-flows")
}

// No-op reconcile (dump + decode + diff, nothing to send) on 100k flows vs
// `ovs-ofctl dump-flows`.
func BenchmarkNoopReconcile100k(b *testing.B) {
	s := newBenchSetup(b, false)
	fs := dropFlows(benchFlows, netip.MustParseAddr("10.0.0.0"))
	s.apply(b, fs)
	file := filepath.Join(b.TempDir(), "flows.txt")
	if err := os.WriteFile(file, []byte(flows.RenderSet(fs)), 0o644); err != nil {
		b.Fatal(err)
	}
	testenv.Run(b, "ovs-ofctl", "-O", "OpenFlow13", "--bundle", "add-flows", s.plain.Name, file)
	var ours, theirs []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		d, e := s.apply(b, fs)
		b.StopTimer()
		if e.Changes != 0 {
			b.Fatalf("no-op reconcile sent %d flow-mods", e.Changes)
		}
		ours = append(ours, d)
		theirs = append(theirs, timeCmd(b, "ovs-ofctl", "-O", "OpenFlow13", "dump-flows", s.plain.Name))
		b.StartTimer()
	}
	b.StopTimer()
	report(b, "noop-reconcile-100k", ours, theirs, "ovs-ofctl dump-flows")
}

// One pool's flows change on a 100k bridge: the flow-mods sent equal the
// flows that differ, and the time is dominated by the dump (the change
// itself is one bundle round trip). Compared to a bare dump by ovs-ofctl.
func BenchmarkOnePoolChange100k(b *testing.B) {
	const poolFlows = 16
	s := newBenchSetup(b, false)
	base := dropFlows(benchFlows, netip.MustParseAddr("10.0.0.0"))
	s.apply(b, base)
	changed := append([]flows.Flow(nil), base...)
	for i := 0; i < poolFlows; i++ {
		changed[5000+i].Actions = flows.Actions{Output: flows.PortNormal} // pool unblocked
	}
	sets := [][]flows.Flow{changed, base}
	var ours, theirs []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		d, e := s.apply(b, sets[i%2])
		b.StopTimer()
		if e.Changes != poolFlows {
			b.Fatalf("one-pool change sent %d flow-mods, want %d", e.Changes, poolFlows)
		}
		ours = append(ours, d)
		theirs = append(theirs, timeCmd(b, "ovs-ofctl", "-O", "OpenFlow13", "dump-flows", s.br.Name, fmt.Sprintf("cookie=%#x/%#x", flows.CookieMarker, flows.CookieMask)))
		b.StartTimer()
	}
	b.StopTimer()
	b.ReportMetric(poolFlows, "flow-mods")
	fmt.Printf("one-pool change on 100k flows: %d flow-mods sent\n", poolFlows)
	report(b, "one-pool-change-100k", ours, theirs, "ovs-ofctl dump-flows")
}

// One pool's flows change on a 100k bridge whose master watches it through
// flow monitoring: the change is planned from the set installed before,
// with no dump, against the same change planned from a dump in the same
// run.
func BenchmarkOnePoolChangeMonitored100k(b *testing.B) {
	const poolFlows = 16
	base := dropFlows(benchFlows, netip.MustParseAddr("10.0.0.0"))
	changed := append([]flows.Flow(nil), base...)
	for i := 0; i < poolFlows; i++ {
		changed[5000+i].Actions = flows.Actions{Output: flows.PortNormal}
	}
	sets := [][]flows.Flow{changed, base}
	mon, dumped := newBenchSetup(b, true), newBenchSetup(b, false)
	mon.apply(b, base)
	dumped.apply(b, base)
	var ours, theirs []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		d, e := mon.apply(b, sets[i%2])
		b.StopTimer()
		if e.Changes != poolFlows {
			b.Fatalf("one-pool change sent %d flow-mods, want %d", e.Changes, poolFlows)
		}
		ours = append(ours, d)
		d, _ = dumped.apply(b, sets[i%2])
		theirs = append(theirs, d)
		b.StartTimer()
	}
	b.StopTimer()
	if st := mon.rc.status(mon.br.DPID); st.FlowDumps != 1 {
		b.Fatalf("the monitored master dumped %d times, want once (its first reconcile)", st.FlowDumps)
	}
	report(b, "one-pool-change-monitored-100k", ours, theirs, "the same change planned from a dump")
}

// The pure part of a reconcile: canonicalise, flows.Diff and plan 100k
// flows against an empty and against an identical dump.
func BenchmarkPlan100k(b *testing.B) {
	fs := dropFlows(benchFlows, netip.MustParseAddr("10.0.0.0"))
	same := entriesOf(fs)
	b.Run("install", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			planChanges(fs, nil)
		}
	})
	b.Run("noop", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			planChanges(fs, same)
		}
	})
	dump := encodeDump(fs)
	b.Run("decode", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if _, err := ofwire.DecodeFlowStats(dump, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
}
