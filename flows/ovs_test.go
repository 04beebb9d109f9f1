package flows

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/op25b/op25b/internal/testenv"
	"github.com/op25b/op25b/topology"
)

// ovsBridge is a netdev bridge with two ports: NORMAL never outputs to
// in_port, so a forwarded packet needs somewhere else to go for the trace to
// show anything but "drop".
func ovsBridge(t *testing.T) testenv.Bridge {
	t.Helper()
	br := testenv.NewBridge(t, "")
	br.AddPort(t, 1)
	br.AddPort(t, 2)
	return br
}

// loadFlows replaces the bridge's flow table with fs in one atomic bundle
// and checks that OVS holds exactly that many op25b flows afterwards.
func loadFlows(t testing.TB, br testenv.Bridge, fs []Flow, first bool) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "flows.txt")
	if err := os.WriteFile(path, []byte(RenderSet(fs)), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := "replace-flows"
	if first {
		cmd = "add-flows"
	}
	br.Ofctl(t, "--bundle", cmd, br.Name, path)
	dump := br.Ofctl(t, "dump-flows", br.Name)
	// " cookie=" opens a dumped flow; a learn action's ",cookie=" does not.
	if n := strings.Count(dump, " cookie=0x25b0"); n != len(fs) {
		t.Fatalf("OVS holds %d op25b flows, loaded %d:\n%s", n, len(fs), dump)
	}
}

// tracePacket is the packet in ofproto/trace syntax; the trace parser only
// accepts tp_dst for TCP, so the protocol-specific tcp_dst/udp_dst is used.
func tracePacket(p Packet) string {
	proto := map[uint8]string{IPProtoTCP: "tcp", 17: "udp"}[p.Proto]
	if p.Src.Is4() {
		return fmt.Sprintf("%s,in_port=1,nw_src=%s,nw_dst=%s,%s_dst=%d", proto, p.Src, p.Dst, proto, p.DstPort)
	}
	return fmt.Sprintf("%s6,in_port=1,ipv6_src=%s,ipv6_dst=%s,%s_dst=%d", proto, p.Src, p.Dst, proto, p.DstPort)
}

func ovsVerdict(t *testing.T, br testenv.Bridge, p Packet) Verdict {
	t.Helper()
	if br.Trace(t, tracePacket(p)) == "drop" {
		return Drop
	}
	return Forward
}

// TestOVSContractCases loads the compiled contract example into a real OVS
// for each rollout stage and compares ofproto/trace with Evaluate for every
// case of docs/semantics.md, IPv4 and IPv6.
func TestOVSContractCases(t *testing.T) {
	br := ovsBridge(t)
	doc := contractDoc(t)
	jst := time.FixedZone("JST", 9*3600)
	dyn, fixed, v6 := "10.1.3.4", "10.1.200.5", "2001:db8:1::77"
	packets := []Packet{
		tcp(dyn, "198.51.100.9", 25),         // dynamic → mobile carrier
		tcp(dyn, "203.0.113.80", 25),         // dynamic → elsewhere
		tcp(dyn, "192.0.2.25", 25),           // dynamic → own relay
		tcp(dyn, "192.0.2.26", 25),           // next to the relay
		tcp(dyn, "203.0.113.80", 587),        // submission port
		tcp(fixed, "203.0.113.80", 25),       // static /29 inside the dynamic /16
		tcp("172.16.0.1", "203.0.113.8", 25), // no pool
		tcp(v6, "2001:db8:ffff::1", 25),      // v6 → mobile carrier
		tcp(v6, "2001:db8:9::1", 25),         // v6 → elsewhere
		tcp(v6, "2001:db8:9::1", 465),        // v6 submission
		tcp("2001:db8:2::1", "2001:db8:9::1", 25),
		udp(dyn, "203.0.113.80", 25),
	}
	first := true
	for _, stage := range []struct {
		dpid topology.DPID
		at   time.Time
	}{
		{tokyo, time.Date(2006, 10, 1, 0, 0, 0, 0, jst)},
		{tokyo, time.Date(2006, 11, 1, 0, 0, 0, 0, jst)},
		{tokyo, time.Date(2006, 12, 5, 0, 0, 0, 0, jst)},
		{osaka, time.Date(2006, 12, 5, 0, 0, 0, 0, jst)},
		{stray, time.Date(2006, 12, 5, 0, 0, 0, 0, jst)},
		{tokyo, time.Date(2006, 12, 15, 0, 0, 0, 0, jst)},
	} {
		loadFlows(t, br, mustCompile(t, doc, stage.dpid, stage.at, DefaultOptions()).Flows, first)
		first = false
		pop := dpidPop(doc, stage.dpid)
		for _, p := range packets {
			if got, want := ovsVerdict(t, br, p), Evaluate(doc, pop, stage.at, p); got != want {
				t.Errorf("pop %q at %s: OVS %v, reference %v for %s", pop, stage.at, got, want, tracePacket(p))
			}
		}
	}
}

// TestOVSRandomPolicies replaces the bridge's flows with random policies
// (atomically, as a bundle) and compares OVS's verdict with Evaluate for
// random packets.
func TestOVSRandomPolicies(t *testing.T) {
	br := ovsBridge(t)
	policies, packets := 20, 30
	if testing.Short() {
		policies = 4
	}
	seen := map[Verdict]int{}
	for seed := range uint64(policies) {
		r := rand.New(rand.NewPCG(seed, 3))
		doc := genDoc(t, r)
		dpid := pick(r, genDPIDs)
		at := pick(r, genInstants(doc))
		fs := mustCompile(t, doc, dpid, at, DefaultOptions()).Flows
		loadFlows(t, br, fs, seed == 0)
		pop := dpidPop(doc, dpid)
		for _, p := range genPackets(r, doc, packets) {
			got, want := ovsVerdict(t, br, p), Evaluate(doc, pop, at, p)
			seen[got]++
			if got != want {
				t.Fatalf("policy %d pop %q at %s: OVS %v, reference %v (simulator %v) for %s\nflows:\n%s",
					seed, pop, at, got, want, Simulate(fs, DefaultOptions(), p), tracePacket(p), RenderSet(fs))
			}
		}
	}
	if seen[Drop] == 0 || seen[Forward] == 0 {
		t.Errorf("verdicts %v: the random packets must exercise both drop and forward", seen)
	}
	t.Logf("verdicts compared with OVS: %d drop, %d forward", seen[Drop], seen[Forward])
}

// TestOVSGoldenDocuments loads every golden document's compiled flows (the
// same sets the golden files show) and compares OVS with Evaluate.
func TestOVSGoldenDocuments(t *testing.T) {
	br := ovsBridge(t)
	first := true
	for i, gc := range goldenCases {
		doc := loadDoc(t, filepath.Join("testdata", gc.doc+".json"))
		r := rand.New(rand.NewPCG(uint64(i), 6))
		packets := genPackets(r, doc, 25)
		for _, s := range gc.sections {
			at, err := time.Parse(time.RFC3339, s.at)
			if err != nil {
				t.Fatal(err)
			}
			loadFlows(t, br, mustCompile(t, doc, s.dpid, at, DefaultOptions()).Flows, first)
			first = false
			pop := dpidPop(doc, s.dpid)
			for _, p := range packets {
				if got, want := ovsVerdict(t, br, p), Evaluate(doc, pop, at, p); got != want {
					t.Errorf("%s pop %q at %s: OVS %v, reference %v for %s", gc.doc, pop, s.at, got, want, tracePacket(p))
				}
			}
		}
	}
}

// megaflow is OVS's datapath match for a packet (the "Megaflow:" line of
// ofproto/trace): the fields and bits the pipeline had to look at. It is
// what the userspace or kernel datapath caches, so it is the data-plane
// cost of a policy for that kind of traffic.
func megaflow(t *testing.T, br testenv.Bridge, packet string) string {
	t.Helper()
	out := testenv.Run(t, "ovs-appctl", "ofproto/trace", br.Name, packet)
	for _, line := range strings.Split(out, "\n") {
		if m, ok := strings.CutPrefix(line, "Megaflow: "); ok {
			return strings.TrimSpace(m)
		}
	}
	t.Fatalf("no Megaflow line in the trace of %q:\n%s", packet, out)
	return ""
}

// TestOVSMegaflowIndependentOfPoolCount: non-SMTP traffic from a
// subscriber pool (web, submission, DNS; IPv4 and IPv6) is decided by the
// classifier's one L4 match, so OVS caches it under the same megaflow mask
// with 10 pools as with 100k: the policy's size costs such traffic nothing
// in the datapath (no per-pool unwildcarding, no extra cache entries).
func TestOVSMegaflowIndependentOfPoolCount(t *testing.T) {
	if testing.Short() {
		t.Skip("loads 100k pools into OVS")
	}
	small, large := ovsBridge(t), ovsBridge(t)
	loadFlows(t, small, mustCompile(t, syntheticDoc(10, 8), stray, genBase, DefaultOptions()).Flows, true)
	loadFlows(t, large, mustCompile(t, syntheticDoc(100_000, 8), stray, genBase, DefaultOptions()).Flows, true)
	// Sources in pools both documents have: pool-000002 (10.0.2.0/24) and
	// pool-000001 (2001:db8:0:1::/64) are dynamic pools with an active phase.
	packets := []string{
		"tcp,in_port=1,nw_src=10.0.2.5,nw_dst=203.0.113.7,tcp_src=40000,tcp_dst=80",
		"tcp,in_port=1,nw_src=10.0.2.5,nw_dst=203.0.113.7,tcp_src=40000,tcp_dst=587",
		"udp,in_port=1,nw_src=10.0.2.5,nw_dst=203.0.113.53,udp_src=40000,udp_dst=53",
		"tcp6,in_port=1,ipv6_src=2001:db8:0:1::5,ipv6_dst=2001:db8:ffff::7,tcp_src=40000,tcp_dst=80",
		"udp6,in_port=1,ipv6_src=2001:db8:0:1::5,ipv6_dst=2001:db8:ffff::53,udp_src=40000,udp_dst=53",
	}
	for _, p := range packets {
		if small.Trace(t, p) == "drop" || large.Trace(t, p) == "drop" {
			t.Errorf("%s: dropped; non-SMTP traffic must be forwarded", p)
		}
		ms, ml := megaflow(t, small, p), megaflow(t, large, p)
		t.Logf("%s\n  10 pools:   %s\n  100k pools: %s", p, ms, ml)
		if ms != ml {
			t.Errorf("%s: the megaflow depends on the pool count:\n  10 pools:   %s\n  100k pools: %s", p, ms, ml)
		}
	}
	// And the mask is the classifier's, not the source table's: the SMTP
	// port decides, so tcp/80 matches the destination port under a mask
	// (the bits that tell 80 from 25), never a pool-sized source prefix.
	web := megaflow(t, large, packets[0])
	if !strings.Contains(web, "tp_dst=0x40/0xffc0") {
		t.Errorf("tcp/80 megaflow %q: want the destination port under the classifier's mask tp_dst=0x40/0xffc0", web)
	}
	for _, pool := range []string{"nw_src=10.0.2.0/24", "nw_src=10.0.2.5,"} {
		if strings.Contains(web, pool) {
			t.Errorf("tcp/80 megaflow %q matches the source pool (%s)", web, pool)
		}
	}
}

// TestOVSHelpdeskCases: every hand-written case of exemptions, quarantines
// and observe mode (helpdeskStages: 1 ns before and at each until and phase
// boundary), compiled, loaded into a real OVS and traced: OVS, the
// hand-written verdict and Evaluate agree.
func TestOVSHelpdeskCases(t *testing.T) {
	br := ovsBridge(t)
	doc := loadDoc(t, "testdata/helpdesk.json")
	for i, stage := range helpdeskStages() {
		at := mustParseTime(t, stage.at)
		loadFlows(t, br, mustCompile(t, doc, tokyo, at, DefaultOptions()).Flows, i == 0)
		for _, c := range stage.cases {
			got, ref := ovsVerdict(t, br, c.p), Evaluate(doc, "tokyo-1", at, c.p)
			if got != c.want || ref != c.want {
				t.Errorf("%s, %s: OVS %v, reference %v, want %v for %s", stage.name, c.name, got, ref, c.want, tracePacket(c.p))
			}
		}
	}
}
