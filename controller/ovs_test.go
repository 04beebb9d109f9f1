package controller

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/op25b/op25b/controller/ofwire"
	"github.com/op25b/op25b/flows"
	"github.com/op25b/op25b/internal/testenv"
	"github.com/op25b/op25b/topology"
)

// connectBridge creates a netdev bridge pointed at rc and waits for its session.
func connectBridge(t *testing.T, rc *runningController, targets ...string) testenv.Bridge {
	t.Helper()
	br := testenv.NewBridge(t, "")
	br.AddPort(t, 1)
	if len(targets) == 0 {
		targets = []string{"tcp:" + rc.addr}
	}
	br.SetController(t, targets...)
	waitFor(t, "switch "+string(br.DPID)+" connected", func() bool { return rc.status(br.DPID).Connected })
	return br
}

func TestOVSInstallPipeline(t *testing.T) {
	rc := startController(t, Config{})
	br := connectBridge(t, rc)

	// No desired state yet: nothing is written, no role claimed.
	if got := ownedDump(t, br); len(got) != 0 {
		t.Fatalf("flows written before SetDesired: %v", got)
	}
	if st := rc.status(br.DPID); st.Role != "none" {
		t.Fatalf("role before SetDesired = %q, want none", st.Role)
	}

	want := pipelineFlows()
	rc.SetDesired(Desired{DPID: br.DPID, Revision: 7, Flows: want, Master: true, Generation: 1})
	st := rc.waitApplied(t, br.DPID, 7)
	if st.Role != "master" || st.Flows != len(want) || st.FlowMods != uint64(len(want)) {
		t.Fatalf("status after install = %+v", st)
	}
	if got := ownedDump(t, br); len(got) != len(want) {
		t.Fatalf("ovs-ofctl dump-flows shows %d op25b flows, want %d:\n%s", len(got), len(want), strings.Join(got, "\n"))
	}
	for _, tc := range []struct{ packet, want string }{
		{"tcp,in_port=1,nw_src=10.1.2.3,nw_dst=198.51.100.9,tp_dst=25", "drop"}, // dynamic pool to blocked set
		{"tcp,in_port=1,nw_src=10.1.2.3,nw_dst=192.0.2.25,tp_dst=25", "normal"}, // relay
		{"tcp,in_port=1,nw_src=10.1.2.3,nw_dst=203.0.113.1,tp_dst=25", "normal"},
		{"tcp,in_port=1,nw_src=10.1.200.3,nw_dst=198.51.100.9,tp_dst=25", "normal"}, // static /29
		{"tcp,in_port=1,nw_src=10.1.2.3,nw_dst=198.51.100.9,tp_dst=587", "normal"},
		{"tcp6,in_port=1,ipv6_src=2001:db8:1::5,ipv6_dst=2001:db8:ffff::1,tp_dst=25", "drop"},
	} {
		got := br.Trace(t, tc.packet)
		if (tc.want == "drop") != (got == "drop") {
			t.Errorf("trace %s = %q, want %s", tc.packet, got, tc.want)
		}
	}

	// Same desired set again at a new revision: nothing to send.
	rc.SetDesired(Desired{DPID: br.DPID, Revision: 8, Flows: want, Master: true, Generation: 1})
	st = rc.waitApplied(t, br.DPID, 8)
	if st.FlowMods != uint64(len(want)) {
		t.Fatalf("no-op reconcile sent %d flow-mods", st.FlowMods-uint64(len(want)))
	}

	// Installed() decodes back exactly what we asked for.
	got, counters, err := rc.Installed(context.Background(), br.DPID)
	if err != nil {
		t.Fatal(err)
	}
	if d := flows.Diff(canonicalAll(want), got); len(d) != 0 {
		t.Fatalf("Installed differs from desired: %v", d)
	}
	if len(counters) != len(want) {
		t.Fatalf("counters for %d flows, want %d", len(counters), len(want))
	}
	if n := len(rc.DropCounters(br.DPID)); n != 3 {
		t.Fatalf("drop counters for %d flows, want 3", n)
	}
}

func canonicalAll(fs []flows.Flow) []flows.Flow {
	out := make([]flows.Flow, len(fs))
	for i, f := range fs {
		out[i] = ofwire.Canonical(f)
	}
	return out
}

// A one-flow change sends one flow-mod; removing a flow sends one strict
// delete; a cookie change on the same key is an ADD (MODIFY cannot change it).
func TestOVSMinimalDiff(t *testing.T) {
	rc := startController(t, Config{})
	br := connectBridge(t, rc)
	base := pipelineFlows()
	rc.SetDesired(Desired{DPID: br.DPID, Revision: 1, Flows: base, Master: true, Generation: 1})
	st := rc.waitApplied(t, br.DPID, 1)
	sent := st.FlowMods

	changed := append([]flows.Flow(nil), base...)
	changed[8].Actions = flows.Actions{Output: flows.PortNormal} // unblock mobile carriers
	changed = append(changed[:12], changed[13:]...)              // drop pool 2's drop flow
	changed[0].Cookie |= 0xabc                                   // cookie change only
	rc.SetDesired(Desired{DPID: br.DPID, Revision: 2, Flows: changed, Master: true, Generation: 1})
	st = rc.waitApplied(t, br.DPID, 2)
	if n := st.FlowMods - sent; n != 3 {
		t.Fatalf("change of 3 flows sent %d flow-mods", n)
	}
	dump := strings.Join(ownedDump(t, br), "\n")
	if !strings.Contains(dump, "cookie=0x25b0000000000abd") {
		t.Fatalf("cookie not replaced:\n%s", dump)
	}
	if got := br.Trace(t, "tcp,in_port=1,nw_src=10.1.2.3,nw_dst=198.51.100.9,tp_dst=25"); got == "drop" {
		t.Fatalf("modified flow not applied: trace %q", got)
	}
	if st.DriftRepairs != 0 {
		t.Fatalf("policy changes counted as drift repairs: %d", st.DriftRepairs)
	}
}

func TestOVSAuditRepairsDriftAndKeepsForeign(t *testing.T) {
	rc := startController(t, Config{AuditInterval: 200 * time.Millisecond})
	br := connectBridge(t, rc)
	want := pipelineFlows()
	rc.SetDesired(Desired{DPID: br.DPID, Revision: 3, Flows: want, Master: true, Generation: 1})
	rc.waitApplied(t, br.DPID, 3)

	foreign := "table=5,priority=7,cookie=0x1234,tcp,tp_dst=80 actions=drop"
	br.Ofctl(t, "add-flow", br.Name, foreign)
	// Hand edits: delete one op25b flow, change the actions of another
	// (to one op25b writes: output port), and give a third an action
	// op25b never writes (foreign shape with our cookie).
	br.Ofctl(t, "--strict", "del-flows", br.Name, "table=3,priority=100,metadata=0x100000000/0xffffffff00000000")
	br.Ofctl(t, "--strict", "mod-flows", br.Name, "table=2,priority=2000,ip,nw_dst=198.51.100.0/24,metadata=0x1/0xffffffff actions=output:1")
	br.Ofctl(t, "--strict", "mod-flows", br.Name, "table=0,priority=100,tcp,tp_dst=25 actions=set_field:4->ip_dscp,goto_table:1")

	waitFor(t, "audit repairs", func() bool { return rc.status(br.DPID).DriftRepairs >= 3 })
	waitFor(t, "flow table back to desired", func() bool {
		got, _, err := rc.Installed(context.Background(), br.DPID)
		return err == nil && len(flows.Diff(canonicalAll(want), got)) == 0 && len(got) == len(want)
	})
	all := br.Ofctl(t, "dump-flows", br.Name)
	if !strings.Contains(all, "cookie=0x1234") || !strings.Contains(all, "tp_dst=80") {
		t.Fatalf("foreign flow touched:\n%s", all)
	}
	if strings.Contains(all, "ip_dscp") {
		t.Fatalf("hand-altered op25b flow not repaired:\n%s", all)
	}
}

var durationRE = regexp.MustCompile(`cookie=(0x[0-9a-f]+), duration=([0-9.]+)s`)

func durations(t *testing.T, br testenv.Bridge) map[string]float64 {
	out := map[string]float64{}
	for _, l := range ownedDump(t, br) {
		m := durationRE.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("no duration in %q", l)
		}
		d, _ := strconv.ParseFloat(m[2], 64)
		out[m[1]] = d
	}
	return out
}

// Restarting the controller neither removes nor re-adds any flow: OVS's
// per-flow duration keeps growing across the restart.
func TestOVSRestartIsHitless(t *testing.T) {
	rc := startController(t, Config{})
	br := connectBridge(t, rc)
	want := pipelineFlows()
	rc.SetDesired(Desired{DPID: br.DPID, Revision: 4, Flows: want, Master: true, Generation: 1})
	rc.waitApplied(t, br.DPID, 4)
	before := durations(t, br)

	rc.stop() // the switch keeps its flows (fail-mode secure)
	if got := ownedDump(t, br); len(got) != len(want) {
		t.Fatalf("flows after controller stop: %d, want %d", len(got), len(want))
	}
	rc2 := startController(t, Config{})
	br.SetController(t, "tcp:"+rc2.addr)
	waitFor(t, "reconnect", func() bool { return rc2.status(br.DPID).Connected })
	rc2.SetDesired(Desired{DPID: br.DPID, Revision: 4, Flows: want, Master: true, Generation: 2})
	st := rc2.waitApplied(t, br.DPID, 4)
	if st.FlowMods != 0 {
		t.Fatalf("restart sent %d flow-mods", st.FlowMods)
	}
	after := durations(t, br)
	for ck, d := range before {
		if after[ck] < d {
			t.Errorf("flow %s duration went from %.3fs to %.3fs: re-added", ck, d, after[ck])
		}
	}
}

// Two controllers on one bridge: MASTER writes, SLAVE does not, and a
// MASTER request with an older generation is refused as stale.
func TestOVSMasterSlaveAndStaleGeneration(t *testing.T) {
	a := startController(t, Config{})
	b := startController(t, Config{})
	br := connectBridge(t, a, "tcp:"+a.addr, "tcp:"+b.addr)
	waitFor(t, "second controller connected", func() bool { return b.status(br.DPID).Connected })

	want := pipelineFlows()
	a.SetDesired(Desired{DPID: br.DPID, Revision: 5, Flows: want, Master: true, Generation: 10})
	b.SetDesired(Desired{DPID: br.DPID, Revision: 5, Flows: want[:2], Master: false, Generation: 10})
	a.waitApplied(t, br.DPID, 5)
	waitFor(t, "b slave", func() bool { return b.status(br.DPID).Role == "slave" })
	if got := ownedDump(t, br); len(got) != len(want) {
		t.Fatalf("slave wrote flows: %d op25b flows, want %d", len(got), len(want))
	}
	if st := b.status(br.DPID); st.FlowMods != 0 || st.AppliedRevision != 0 {
		t.Fatalf("slave status = %+v", st)
	}

	// b claims mastership with a stale generation: refused.
	b.SetDesired(Desired{DPID: br.DPID, Revision: 6, Flows: want[:2], Master: true, Generation: 9})
	waitFor(t, "stale reported", func() bool { return b.events.count(EventLostMastership) > 0 })
	if got := ownedDump(t, br); len(got) != len(want) {
		t.Fatalf("stale master wrote flows: %d", len(got))
	}

	// b takes over with a newer generation; a's next write finds itself slave.
	b.SetDesired(Desired{DPID: br.DPID, Revision: 6, Flows: want, Master: true, Generation: 11})
	b.waitApplied(t, br.DPID, 6)
	if st := b.status(br.DPID); st.Role != "master" {
		t.Fatalf("b role = %q", st.Role)
	}
	a.SetDesired(Desired{DPID: br.DPID, Revision: 7, Flows: want[:1], Master: true, Generation: 10})
	waitFor(t, "a told it lost mastership", func() bool { return a.events.count(EventLostMastership) > 0 })
	if got := ownedDump(t, br); len(got) != len(want) {
		t.Fatalf("demoted master wrote flows: %d", len(got))
	}
}

// The contract's example policy, compiled by flows.Compile at two instants,
// installed on real OVS; OVS's own verdict (ofproto/trace) must equal the
// reference semantics (flows.Evaluate) for every probe packet, and the
// phase change sends exactly the flows that differ.
func TestOVSContractExample(t *testing.T) {
	data, err := os.ReadFile("../flows/testdata/contract-example.json")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := topology.ParseJSON(data)
	if err != nil {
		t.Fatal(err)
	}
	if err := topology.Validate(doc); err != nil {
		t.Fatal(err)
	}
	rc := startController(t, Config{})
	br := connectBridge(t, rc)
	pop, _ := doc.BridgePop(br.DPID)

	probes := []flows.Packet{}
	for _, src := range []string{"10.1.2.3", "10.1.200.3", "10.9.9.9", "2001:db8:1::5", "2001:db8:2::5"} {
		for _, dst := range []string{"198.51.100.9", "192.0.2.25", "203.0.113.1", "2001:db8:ffff::1", "2001:db8:9::1"} {
			s, d := netip.MustParseAddr(src), netip.MustParseAddr(dst)
			if s.Is4() != d.Is4() {
				continue
			}
			for _, port := range []uint16{25, 587} {
				probes = append(probes, flows.Packet{Src: s, Dst: d, Proto: flows.IPProtoTCP, DstPort: port})
			}
		}
	}
	var installed []flows.Flow
	var sent uint64
	for rev, at := range []time.Time{
		time.Date(2006, 11, 15, 0, 0, 0, 0, time.UTC), // mobile carriers blocked
		time.Date(2007, 1, 1, 0, 0, 0, 0, time.UTC),   // everything blocked
	} {
		compiled, err := flows.Compile(doc, br.DPID, at, flows.DefaultOptions())
		if err != nil {
			t.Fatal(err)
		}
		wantMods := len(flows.Diff(compiled.Flows, installed))
		rc.SetDesired(Desired{DPID: br.DPID, Revision: int64(rev + 1), Flows: compiled.Flows, Master: true, Generation: 1})
		st := rc.waitApplied(t, br.DPID, int64(rev+1))
		if got := st.FlowMods - sent; got != uint64(wantMods) {
			t.Errorf("at %s: %d flow-mods sent, diff has %d", at, got, wantMods)
		}
		sent = st.FlowMods
		installed = compiled.Flows
		if got := ownedDump(t, br); len(got) != len(compiled.Flows) {
			t.Fatalf("at %s: dump-flows shows %d op25b flows, want %d", at, len(got), len(compiled.Flows))
		}
		for _, p := range probes {
			proto := "tcp"
			field := "nw"
			if p.Src.Is6() {
				proto, field = "tcp6", "ipv6"
			}
			pkt := fmt.Sprintf("%s,in_port=1,%s_src=%s,%s_dst=%s,tp_dst=%d", proto, field, p.Src, field, p.Dst, p.DstPort)
			if field == "nw" {
				pkt = fmt.Sprintf("%s,in_port=1,nw_src=%s,nw_dst=%s,tp_dst=%d", proto, p.Src, p.Dst, p.DstPort)
			}
			ovsDrop := br.Trace(t, pkt) == "drop"
			if want := flows.Evaluate(doc, pop, at, p) == flows.Drop; ovsDrop != want {
				t.Errorf("at %s: %s: OVS drop=%v, reference drop=%v", at.Format("2006-01-02"), pkt, ovsDrop, want)
			}
		}
	}
}

// A change set with one flow OVS rejects (goto_table backwards: OpenFlow
// 1.3 §5.1 only allows going forward) is discarded as a whole: none of the
// valid changes of that revision reach the switch.
func TestOVSBundleIsAtomic(t *testing.T) {
	rc := startController(t, Config{})
	br := connectBridge(t, rc)
	base := pipelineFlows()
	rc.SetDesired(Desired{DPID: br.DPID, Revision: 1, Flows: base, Master: true, Generation: 1})
	rc.waitApplied(t, br.DPID, 1)
	before := strings.Join(ownedDump(t, br), "\n")

	bad := append([]flows.Flow(nil), base...)
	bad[8].Actions = flows.Actions{Output: flows.PortNormal} // valid change
	bad = append(bad[:11], bad[12:]...)                      // valid delete
	bad = append(bad, flows.Flow{Table: 2, Priority: 5, Cookie: flows.CookieMarker | 0xbad,
		Match: flows.Match{EthType: flows.EthTypeIPv4}, Actions: flows.Actions{Goto: true, GotoTable: 1}}) // rejected
	rc.SetDesired(Desired{DPID: br.DPID, Revision: 2, Flows: bad, Master: true, Generation: 1})
	waitFor(t, "reconcile failure", func() bool { return rc.events.count(EventReconcileFailed) > 0 })
	st := rc.status(br.DPID)
	if st.AppliedRevision != 1 || !strings.Contains(st.LastError, "bundle discarded") {
		t.Fatalf("status after rejected change = %+v", st)
	}
	after := ownedDump(t, br)
	if len(after) != len(base) {
		t.Fatalf("partial change applied: %d flows, want %d\nbefore:\n%s\nafter:\n%s", len(after), len(base), before, strings.Join(after, "\n"))
	}
	if got := br.Trace(t, "tcp,in_port=1,nw_src=10.1.2.3,nw_dst=198.51.100.9,tp_dst=25"); got != "drop" {
		t.Fatalf("valid part of a discarded bundle applied: trace %q", got)
	}
	rc.SetDesired(Desired{DPID: br.DPID, Revision: 3, Flows: bad[:len(bad)-1], Master: true, Generation: 1})
	rc.waitApplied(t, br.DPID, 3)
	if got := len(ownedDump(t, br)); got != len(base)-1 {
		t.Fatalf("after fix: %d flows", got)
	}
}

// TestOVSObservedCounters: the counters the controller collects include
// the drop-count flows of a pool whose phase observes (two: its connection
// attempts, and the rest), marked Observed (they forward what they count),
// besides every drop flow (pools, quarantines, the catch-all), and nothing
// of the offender table.
func TestOVSObservedCounters(t *testing.T) {
	rc := startController(t, Config{})
	br := connectBridge(t, rc)
	doc, err := topology.ParseJSON([]byte(`{
	  "pools": [{"name": "dyn", "prefix": "10.1.0.0/16", "kind": "dynamic", "service": "ftth"},
	            {"name": "trial", "prefix": "10.2.0.0/16", "kind": "dynamic", "service": "trial"}],
	  "services": [{"name": "ftth", "phases": [{"block": "all"}]}, {"name": "trial", "phases": [{"block": "all", "mode": "observe"}]}],
	  "quarantines": [{"name": "bot", "prefix": "10.1.9.9/32", "until": "2030-01-01T00:00:00Z", "reason": "abuse report", "ticket": "AB-88"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if err := topology.Validate(doc); err != nil {
		t.Fatal(err)
	}
	compiled, err := flows.Compile(doc, br.DPID, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), flows.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	rc.SetDesired(Desired{DPID: br.DPID, Revision: 3, Flows: compiled.Flows, Master: true, Generation: 1})
	rc.waitApplied(t, br.DPID, 3)
	// Counters come from the dump a reconcile starts with: the next one
	// sees the installed flows.
	rc.SetDesired(Desired{DPID: br.DPID, Revision: 4, Flows: compiled.Flows, Master: true, Generation: 1})
	rc.waitApplied(t, br.DPID, 4)
	var observed, dropped []string
	for _, c := range rc.DropCounters(br.DPID) {
		switch {
		case c.Observed:
			observed = append(observed, compiled.ObservePool[c.Key])
		case compiled.DropPool[c.Key] != "":
			dropped = append(dropped, "pool/"+compiled.DropPool[c.Key])
		case compiled.DropQuarantine[c.Key] != "":
			dropped = append(dropped, "quarantine/"+compiled.DropQuarantine[c.Key])
		default:
			dropped = append(dropped, "catch-all")
		}
	}
	if fmt.Sprint(observed) != "[trial trial]" || len(dropped) != 3 {
		t.Fatalf("observed %v, dropped %v; want [trial trial] and pool/dyn, quarantine/bot, catch-all", observed, dropped)
	}
}
