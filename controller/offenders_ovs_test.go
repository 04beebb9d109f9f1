package controller

import (
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/op25b/op25b/flows"
	"github.com/op25b/op25b/internal/testenv"
	"github.com/op25b/op25b/topology"
)

// offenderSink collects what Config.Offenders receives.
type offenderSink struct {
	mu        sync.Mutex
	pairs     map[string]uint64 // "src>dst" → attempts
	observing map[string]bool
	untracked uint64
	saturated bool
	reads     int
	dpids     map[topology.DPID]bool
}

func newOffenderSink() *offenderSink {
	return &offenderSink{pairs: map[string]uint64{}, observing: map[string]bool{}, dpids: map[topology.DPID]bool{}}
}

func (s *offenderSink) add(dpid topology.DPID, r OffenderRead) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reads++
	s.dpids[dpid] = true
	for _, a := range r.Attempts {
		k := a.Src.String() + ">" + a.Dst.String()
		s.pairs[k] += a.Count
		s.observing[k] = r.Observing[a.PoolID]
	}
	s.untracked += r.Untracked
	s.saturated = s.saturated || r.Saturated
}

func (s *offenderSink) snapshot() (map[string]uint64, uint64, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]uint64, len(s.pairs))
	for k, v := range s.pairs {
		out[k] = v
	}
	return out, s.untracked, s.reads
}

// offenderDoc: a dynamic IPv4 and IPv6 pool that block port 25 except
// towards the relay, a static pool.
func offenderDoc(t *testing.T) *topology.Document {
	t.Helper()
	doc, err := topology.ParseJSON([]byte(`{
	  "pools": [
	    {"name": "dyn", "prefix": "10.1.0.0/16", "kind": "dynamic", "service": "ftth"},
	    {"name": "fixed", "prefix": "10.1.200.0/29", "kind": "static"},
	    {"name": "dyn6", "prefix": "2001:db8:1::/48", "kind": "dynamic", "service": "ftth"}
	  ],
	  "relays": [{"name": "msa", "prefix": "192.0.2.25/32"}],
	  "services": [{"name": "ftth", "phases": [{"block": "all", "relays": true}]}]
	}`))
	if err != nil {
		t.Fatal(err)
	}
	if err := topology.Validate(doc); err != nil {
		t.Fatal(err)
	}
	return doc
}

var learnedLine = regexp.MustCompile(`n_packets=(\d+),.*nw_src=([0-9a-f.:]+),(?:nw_dst|ipv6_dst)=([0-9a-f.:]+)|n_packets=(\d+),.*ipv6_src=([0-9a-f:]+),ipv6_dst=([0-9a-f:]+)`)

// learnedDump is the bridge's learned flows as ovs-ofctl shows them:
// "src>dst" → n_packets.
func learnedDump(t *testing.T, br testenv.Bridge) map[string]uint64 {
	t.Helper()
	out := br.Ofctl(t, "dump-flows", br.Name, fmt.Sprintf("cookie=%#x/%#x", flows.LearnedCookie, flows.CookieMask))
	got := map[string]uint64{}
	for _, l := range strings.Split(out, "\n") {
		m := learnedLine.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		if m[1] != "" {
			n, _ := strconv.ParseUint(m[1], 10, 64)
			got[m[2]+">"+m[3]] = n
		} else {
			n, _ := strconv.ParseUint(m[4], 10, 64)
			got[m[5]+">"+m[6]] = n
		}
	}
	return got
}

// TestOVSOffenderCounts sends real connection attempts (the kernel's own
// TCP SYNs) from network namespaces through a netdev bridge running
// op25b's compiled pipeline and checks, against packets sent:
//   - the switch learns one flow per (source, destination) blocked pair
//     and none for forwarded traffic, and its counter is attempts − 1;
//   - the controller's reads report exactly the attempts sent, and keep
//     reporting nothing more while nothing is sent;
//   - the learn limit holds: a pair beyond it is not learned, its
//     attempts are reported as untracked and the table as saturated;
//   - reconcile and audit never delete or touch a learned flow, and a
//     policy change (even of the learn actions themselves) leaves them.
func TestOVSOffenderCounts(t *testing.T) {
	sink := newOffenderSink()
	// Full audits every 300 ms, flow monitoring or not: they must never
	// touch a learned flow.
	rc := startController(t, Config{AuditInterval: 300 * time.Millisecond, AuditSweep: 300 * time.Millisecond,
		Offenders: sink.add, OffenderInterval: 300 * time.Millisecond})
	br := testenv.NewBridge(t, "")
	a5, a6 := netip.MustParseAddr("10.1.0.5"), netip.MustParseAddr("10.1.0.6")
	fixed, v6 := netip.MustParseAddr("10.1.200.2"), netip.MustParseAddr("2001:db8:1::5")
	h1 := br.AddHost(t, 1, a5, a6, fixed)
	h2 := br.AddHost(t, 2, v6)
	br.SetController(t, "tcp:"+rc.addr)
	waitFor(t, "switch connected", func() bool { return rc.status(br.DPID).Connected })

	doc := offenderDoc(t)
	opts := flows.DefaultOptions()
	opts.OffenderFlows = flows.OffenderBuckets // one flow per learn bucket
	compile := func(o flows.Options) []flows.Flow {
		c, err := flows.Compile(doc, br.DPID, time.Now(), o)
		if err != nil {
			t.Fatal(err)
		}
		return c.Flows
	}
	rc.SetDesired(Desired{DPID: br.DPID, Revision: 1, Flows: compile(opts), Master: true, Generation: 1})
	rc.waitApplied(t, br.DPID, 1)

	mx, mx2, relay := netip.MustParseAddr("203.0.113.25"), netip.MustParseAddr("203.0.113.26"), netip.MustParseAddr("192.0.2.25")
	mx6 := netip.MustParseAddr("2001:db8:25::25")
	// Source ports 40001..40004 put each pair's first packet in its own
	// learn bucket (the port's low 6 bits).
	send := func(h *testenv.Host, src netip.Addr, srcPort int, dst netip.Addr, port, n int) {
		t.Helper()
		if err := h.ConnectAttemptsFrom(src, srcPort, dst, port, n); err != nil {
			t.Fatal(err)
		}
	}
	send(h1, a5, 40001, mx, 25, 5)
	send(h1, a5, 40002, mx2, 25, 1)
	send(h1, a6, 40003, mx, 25, 3)
	send(h2, v6, 40004, mx6, 25, 2)
	// Not counted: forwarded towards the relay, from a static pool, to 587.
	send(h1, a5, 0, relay, 25, 2)
	send(h1, fixed, 0, mx, 25, 2)
	send(h1, a5, 0, mx, 587, 2)

	want := map[string]uint64{"10.1.0.5>203.0.113.25": 5, "10.1.0.5>203.0.113.26": 1, "10.1.0.6>203.0.113.25": 3, "2001:db8:1::5>2001:db8:25::25": 2}
	waitFor(t, "the controller reports every attempt sent", func() bool {
		got, _, _ := sink.snapshot()
		return fmt.Sprint(got) == fmt.Sprint(want)
	})
	// The switch's own view: one learned flow per pair, attempts − 1.
	testenv.Eventually(t, 30*time.Second, "learned flows count attempts − 1", func() bool {
		got := learnedDump(t, br)
		for k, n := range want {
			if got[k] != n-1 {
				return false
			}
		}
		return len(got) == len(want)
	})
	// Nothing more is reported while nothing is sent: reads keep coming,
	// counts stay.
	_, _, reads := sink.snapshot()
	waitFor(t, "more reads", func() bool { _, _, r := sink.snapshot(); return r >= reads+5 })
	if got, untracked, _ := sink.snapshot(); fmt.Sprint(got) != fmt.Sprint(want) || untracked != 0 {
		t.Fatalf("after idle reads: %v untracked %d, want %v", got, untracked, want)
	}

	// Bucket 1's limit (one flow) is reached: a fifth pair whose first
	// packet falls in it is not learned, its attempts are untracked.
	send(h1, a6, 40065, mx2, 25, 3)
	waitFor(t, "untracked attempts beyond the learn limit", func() bool { _, u, _ := sink.snapshot(); return u == 3 })
	sink.mu.Lock()
	saturated := sink.saturated
	sink.mu.Unlock()
	if got := learnedDump(t, br); len(got) != 4 || !saturated {
		t.Fatalf("learn limit of one flow per bucket: %d learned flows %v, saturated %v", len(got), got, saturated)
	}

	// Audits ran all along: they neither deleted a learned flow nor
	// counted one as drift.
	if st := rc.status(br.DPID); st.DriftRepairs != 0 || st.Reconciles < 3 {
		t.Fatalf("status %+v", st)
	}
	// The blocked-packet counters (per-pool drop flows) count every
	// blocked attempt once; the offender table's flows are not drops.
	var dropped uint64
	for _, c := range rc.DropCounters(br.DPID) {
		if c.Key.Table == opts.OffenderTable() {
			t.Fatalf("offender table flow among the drop counters: %+v", c)
		}
		dropped += c.Packets
	}
	if dropped != 5+1+3+2+3 {
		t.Fatalf("drop counters: %d packets, want %d (every blocked attempt once)", dropped, 5+1+3+2+3)
	}
	// A policy change, here of the learn actions themselves (a new limit),
	// modifies op25b's flows and leaves the learned ones and their counts.
	before := learnedDump(t, br)
	opts.OffenderFlows = 10 * flows.OffenderBuckets
	rc.SetDesired(Desired{DPID: br.DPID, Revision: 2, Flows: compile(opts), Master: true, Generation: 1})
	rc.waitApplied(t, br.DPID, 2)
	if after := learnedDump(t, br); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Fatalf("learned flows changed by a policy change:\nbefore %v\nafter  %v", before, after)
	}
	if !strings.Contains(strings.Join(ownedDump(t, br), "\n"), "limit=10,") {
		t.Fatalf("new learn limit not installed:\n%s", strings.Join(ownedDump(t, br), "\n"))
	}
	// With room again, the fifth pair is learned: 2 more attempts counted.
	send(h1, a6, 40065, mx2, 25, 2)
	want["10.1.0.6>203.0.113.26"] = 2
	waitFor(t, "the fifth pair counted once learned", func() bool {
		got, _, _ := sink.snapshot()
		return fmt.Sprint(got) == fmt.Sprint(want)
	})
	if sink.dpids[br.DPID] != true || len(sink.dpids) != 1 {
		t.Fatalf("reads for %v", sink.dpids)
	}
}

// TestOVSOffenderOnlyMasterReads: a replica told SLAVE never reads the
// offender table; promoted, it starts from a baseline: attempts made
// before its mastership are not reported by it.
func TestOVSOffenderOnlyMasterReads(t *testing.T) {
	sinkA, sinkB := newOffenderSink(), newOffenderSink()
	a := startController(t, Config{Offenders: sinkA.add, OffenderInterval: 200 * time.Millisecond})
	b := startController(t, Config{Offenders: sinkB.add, OffenderInterval: 200 * time.Millisecond})
	br := testenv.NewBridge(t, "")
	src := netip.MustParseAddr("10.1.0.9")
	h := br.AddHost(t, 1, src)
	br.SetController(t, "tcp:"+a.addr, "tcp:"+b.addr)
	waitFor(t, "both connected", func() bool { return a.status(br.DPID).Connected && b.status(br.DPID).Connected })
	c, err := flows.Compile(offenderDoc(t), br.DPID, time.Now(), flows.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	a.SetDesired(Desired{DPID: br.DPID, Revision: 1, Flows: c.Flows, Master: true, Generation: 10})
	b.SetDesired(Desired{DPID: br.DPID, Revision: 1, Flows: c.Flows, Master: false, Generation: 10})
	a.waitApplied(t, br.DPID, 1)
	waitFor(t, "b is slave", func() bool { return b.status(br.DPID).Role == "slave" })

	if err := h.ConnectAttempts(src, netip.MustParseAddr("203.0.113.1"), 25, 4); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "master counts 4", func() bool { got, _, _ := sinkA.snapshot(); return got["10.1.0.9>203.0.113.1"] == 4 })
	if _, _, reads := sinkB.snapshot(); reads != 0 {
		t.Fatalf("the slave read the offender table %d times", reads)
	}

	// Hand over: a slave, b master with a newer generation.
	a.SetDesired(Desired{DPID: br.DPID, Revision: 1, Flows: c.Flows, Master: false, Generation: 11})
	b.SetDesired(Desired{DPID: br.DPID, Revision: 1, Flows: c.Flows, Master: true, Generation: 11})
	waitFor(t, "b reads as master", func() bool { _, _, r := sinkB.snapshot(); return r >= 3 })
	if err := h.ConnectAttempts(src, netip.MustParseAddr("203.0.113.1"), 25, 2); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "new master counts only what came after it", func() bool { got, _, _ := sinkB.snapshot(); return got["10.1.0.9>203.0.113.1"] == 2 })
	_, _, readsA := sinkA.snapshot()
	time.Sleep(time.Second)
	if gotA, _, r := sinkA.snapshot(); gotA["10.1.0.9>203.0.113.1"] != 4 || r != readsA {
		t.Fatalf("old master still reading: %v, %d reads (was %d)", gotA, r, readsA)
	}
	if gotB, _, _ := sinkB.snapshot(); gotB["10.1.0.9>203.0.113.1"] != 2 {
		t.Fatalf("new master: %v", gotB)
	}
}

// The flow monitor (drift detection) never watches the whole offender
// table (the switch changes it with every new pair under a storm), only
// its learn flows, through four monitors narrowed by match.
func TestMonitorLeavesOffenderTableOut(t *testing.T) {
	c, err := flows.Compile(offenderDoc(t), "0000000000000001", time.Now(), flows.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	idx := newDesiredIndex(c.Flows)
	ids := monitorIDs(idx)
	table := flows.DefaultOptions().OffenderTable()
	if ids[uint32(table)+1] || len(ids) != 4+4 {
		t.Fatalf("monitors %v: want tables 0..3 and the offender table's four narrowed monitors", ids)
	}
	for _, id := range offenderMonitorIDs(table) {
		got, m := monitorTarget(id)
		if !ids[id] || got != table || m.TCPSrcMask != 1 || m.IPProto != flows.IPProtoTCP {
			t.Fatalf("offender monitor %#x: table %d, match %+v", id, got, m)
		}
	}
	// Nor are its flows drop counters (refreshed on their own every
	// AuditInterval): only the drop-count table is.
	if tables := idx.dropTables(); len(tables) != 1 || tables[0] != 3 {
		t.Fatalf("drop tables %v, want [3]", tables)
	}
}

// Regression (found by the lab's drift check after the offender table
// landed): `ovs-ofctl del-flows` of a whole bridge left the offender
// table's learn flows missing until the next full audit (AuditSweep,
// minutes), because no flow monitor watched that table. Narrowed monitors
// now see the learn flows, and the table has no flow they cannot see.
func TestOVSDelFlowsRestoresOffenderTable(t *testing.T) {
	rc := startController(t, Config{})
	br := connectBridge(t, rc)
	c, err := flows.Compile(offenderDoc(t), br.DPID, time.Now(), flows.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	rc.SetDesired(Desired{DPID: br.DPID, Revision: 1, Flows: c.Flows, Master: true, Generation: 1})
	rc.waitApplied(t, br.DPID, 1)
	golden := br.OwnedFlows(t)
	br.Ofctl(t, "del-flows", br.Name)
	waitRestored(t, br, golden, "every flow deleted")
	br.Ofctl(t, "--strict", "del-flows", br.Name, fmt.Sprintf("table=%d,priority=1,tcp6,tp_src=0x3f/0x3f", flows.DefaultOptions().OffenderTable()))
	waitRestored(t, br, golden, "one learn flow deleted")
	if st := rc.status(br.DPID); st.FlowDumps != 1 || st.DriftDetection != DriftMonitor {
		t.Fatalf("%d dumps, drift detection %q: want the install's dump only, repairs by the monitor", st.FlowDumps, st.DriftDetection)
	}
}
