package flows

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/op25b/op25b/topology"
)

func tcp(src, dst string, port uint16) Packet {
	return Packet{Src: netip.MustParseAddr(src), Dst: netip.MustParseAddr(dst), Proto: IPProtoTCP, DstPort: port}
}

func udp(src, dst string, port uint16) Packet {
	p := tcp(src, dst, port)
	p.Proto = 17
	return p
}

type verdictCase struct {
	name string
	p    Packet
	want Verdict
}

// checkVerdicts compares Simulate(Compile) and Evaluate with a verdict
// written by hand from the contract.
func checkVerdicts(t *testing.T, doc *topology.Document, dpid topology.DPID, at time.Time, opts Options, cases []verdictCase) {
	t.Helper()
	c := mustCompile(t, doc, dpid, at, opts)
	pop, _ := doc.BridgePop(dpid)
	for _, tc := range cases {
		if got := Simulate(c.Flows, opts, tc.p); got != tc.want {
			t.Errorf("%s: Simulate(Compile) = %v, want %v (packet %+v)", tc.name, got, tc.want, tc.p)
		}
		if got := Evaluate(doc, pop, at, tc.p); got != tc.want {
			t.Errorf("%s: Evaluate = %v, want %v (packet %+v)", tc.name, got, tc.want, tc.p)
		}
	}
}

const (
	tokyo topology.DPID = "0000000000000001"
	osaka topology.DPID = "0000000000000002"
	stray topology.DPID = "00000000000000aa" // not in bridges: pop ""
)

func contractDoc(t testing.TB) *topology.Document {
	doc := loadDoc(t, "testdata/contract-example.json")
	doc.Bridges = append(doc.Bridges, topology.Bridge{DPID: osaka, Name: "osaka-1-sub-a", Pop: "osaka-1"})
	return doc
}

func TestCompileContractExample(t *testing.T) {
	doc := contractDoc(t)
	jst := time.FixedZone("JST", 9*3600)
	before := time.Date(2006, 10, 31, 23, 59, 59, 0, jst)
	selective := time.Date(2006, 11, 1, 0, 0, 0, 0, jst) // exactly at the boundary
	osakaAll := time.Date(2006, 12, 5, 0, 0, 0, 0, jst)
	everywhere := time.Date(2006, 12, 15, 0, 0, 0, 0, jst)

	dyn, fixed, v6 := "10.1.3.4", "10.1.200.5", "2001:db8:1::77"
	mobile, msa, web := "198.51.100.9", "192.0.2.25", "203.0.113.80"
	mobile6 := "2001:db8:ffff::1"
	common := []verdictCase{
		{"static pool nested in dynamic", tcp(fixed, mobile, 25), Forward},
		{"not a subscriber", tcp("172.16.0.1", mobile, 25), Forward},
		{"submission port", tcp(dyn, web, 587), Forward},
		{"udp 25", udp(dyn, mobile, 25), Forward},
		{"v6plus blocks all", tcp(v6, "2001:db8:9::1", 25), Drop},
		{"v6plus relays false", tcp(v6, mobile6, 25), Drop},
		{"v6plus 587", tcp(v6, mobile6, 587), Forward},
	}
	for _, tt := range []struct {
		name  string
		dpid  topology.DPID
		at    time.Time
		cases []verdictCase
	}{
		{"before rollout", tokyo, before, []verdictCase{
			{"dynamic to mobile", tcp(dyn, mobile, 25), Forward},
			{"dynamic to web", tcp(dyn, web, 25), Forward},
		}},
		{"mobile carriers only", tokyo, selective, []verdictCase{
			{"dynamic to mobile", tcp(dyn, mobile, 25), Drop},
			{"dynamic to web", tcp(dyn, web, 25), Forward},
			{"dynamic to relay", tcp(dyn, msa, 25), Forward},
		}},
		{"osaka phase does not apply in tokyo", tokyo, osakaAll, []verdictCase{
			{"dynamic to mobile", tcp(dyn, mobile, 25), Drop},
			{"dynamic to web", tcp(dyn, web, 25), Forward},
		}},
		{"osaka blocks all", osaka, osakaAll, []verdictCase{
			{"dynamic to web", tcp(dyn, web, 25), Drop},
			{"dynamic to relay", tcp(dyn, msa, 25), Forward},
		}},
		{"unregistered bridge gets only global phases", stray, osakaAll, []verdictCase{
			{"dynamic to web", tcp(dyn, web, 25), Forward},
			{"dynamic to mobile", tcp(dyn, mobile, 25), Drop},
		}},
		{"everywhere", tokyo, everywhere, []verdictCase{
			{"dynamic to web", tcp(dyn, web, 25), Drop},
			{"dynamic to relay", tcp(dyn, msa, 25), Forward},
			{"dynamic to relay neighbour", tcp(dyn, "192.0.2.26", 25), Drop},
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			checkVerdicts(t, doc, tt.dpid, tt.at, DefaultOptions(), append(tt.cases, common...))
		})
	}
}

func relaysFalse() *bool { f := false; return &f }

func TestCompileNestingAndIPv6(t *testing.T) {
	doc := &topology.Document{
		Ports: []int{25, 2525},
		Pools: []topology.Pool{
			{Name: "dyn16", Prefix: "10.1.0.0/16", Kind: "dynamic", Service: "home"},
			{Name: "fixed29", Prefix: "10.1.200.0/29", Kind: "static"},
			{Name: "dyn-in-fixed", Prefix: "10.1.200.4/30", Kind: "dynamic", Service: "home"},
			{Name: "v6", Prefix: "2001:db8:1::/48", Kind: "dynamic", Service: "v6"},
			{Name: "v6-biz", Prefix: "2001:db8:1:ff::/64", Kind: "static"},
		},
		Relays: []topology.Relay{
			{Name: "msa", Prefix: "192.0.2.25/32"},
			{Name: "msa6", Prefix: "2001:db8:25::/64"},
		},
		Services: []topology.Service{
			{Name: "home", Phases: []topology.Phase{{Block: topology.Block{All: true}}}},
			{Name: "v6", Phases: []topology.Phase{{Block: topology.Block{All: true}, Relays: relaysFalse()}}},
		},
	}
	checkVerdicts(t, doc, stray, genBase, DefaultOptions(), []verdictCase{
		{"dynamic /16", tcp("10.1.0.1", "203.0.113.1", 25), Drop},
		{"second port", tcp("10.1.0.1", "203.0.113.1", 2525), Drop},
		{"dynamic /16 to relay", tcp("10.1.0.1", "192.0.2.25", 25), Forward},
		{"static /29 in /16", tcp("10.1.200.1", "203.0.113.1", 25), Forward},
		{"dynamic /30 in static /29", tcp("10.1.200.5", "203.0.113.1", 25), Drop},
		{"v6 dynamic, relays false", tcp("2001:db8:1::1", "2001:db8:25::1", 25), Drop},
		{"v6 static /64 in /48", tcp("2001:db8:1:ff::1", "2001:db8:9::1", 25), Forward},
		{"v4 relay does not cover v6", tcp("2001:db8:1::1", "::ffff:192.0.2.25", 25), Drop},
	})
}

func TestCompileContinueGoto(t *testing.T) {
	doc := contractDoc(t)
	opts := Options{FirstTable: 10, Continue: Actions{Goto: true, GotoTable: 20}}
	at := time.Date(2007, 1, 1, 0, 0, 0, 0, time.UTC)
	c := mustCompile(t, doc, tokyo, at, opts)
	for _, f := range c.Flows {
		if f.Table < 10 || f.Table > 14 {
			t.Errorf("flow outside tables 10..14: %s", Render(f))
		}
		if f.Actions.Output != 0 {
			t.Errorf("flow outputs although Continue is a goto: %s", Render(f))
		}
		role := Role(f.Table - 10)
		if role == RoleOffender {
			role = RoleDropCount // the offender table shares the role bits (cookie.go)
		}
		if f.Actions.Resubmit && f.Actions.ResubmitTable != 14 || !f.Actions.Learn.IsZero() && f.Actions.Learn.Table != 14 {
			t.Errorf("flow counts outside the offender table 14: %s", Render(f))
		}
		if Owned(f.Cookie) == false || CookieRole(f.Cookie) != role {
			t.Errorf("cookie %#x does not carry the marker and role of table %d", f.Cookie, f.Table)
		}
	}
	if !strings.Contains(RenderSet(c.Flows), "table=10, priority=0, cookie="+fmt.Sprintf("%#x", cookieFor(10, RoleClassifier, 0, Match{}))+" actions=goto_table:20") {
		t.Errorf("classifier catch-all does not continue to table 20:\n%s", RenderSet(c.Flows))
	}
	checkVerdicts(t, doc, tokyo, at, opts, []verdictCase{
		{"dynamic blocked", tcp("10.1.3.4", "203.0.113.1", 25), Drop},
		{"relay continues", tcp("10.1.3.4", "192.0.2.25", 25), Forward},
		{"static continues", tcp("10.1.200.1", "203.0.113.1", 25), Forward},
	})
}

func TestCompileScalesLinearly(t *testing.T) {
	doc := syntheticDoc(1000, 3)
	c := mustCompile(t, doc, stray, genBase, DefaultOptions())
	// classifier 2+1, source pools+1, destination per used service
	// (relays + blocked prefixes + default) + 1, drop count dynamic+1.
	perTable := map[uint8]int{}
	for _, f := range c.Flows {
		perTable[f.Table]++
	}
	if perTable[0] != 3 || perTable[1] != 1001 || perTable[4] != 2*OffenderBuckets {
		t.Errorf("classifier/source/offender flows = %d/%d/%d, want 3/1001/%d", perTable[0], perTable[1], perTable[4], 2*OffenderBuckets)
	}
	if perTable[2] > 3*(len(doc.Relays)+8+1)+1 {
		t.Errorf("destination table has %d flows: grows with pools?", perTable[2])
	}
	if len(c.DropPool) != perTable[3]-1 {
		t.Errorf("DropPool has %d entries for %d drop flows", len(c.DropPool), perTable[3]-1)
	}
	for k, name := range c.DropPool {
		if k.Table != 3 || name == "" {
			t.Errorf("DropPool %v → %q", k, name)
		}
	}
}

func TestCompileBadOptions(t *testing.T) {
	doc := contractDoc(t)
	for _, o := range []Options{
		{FirstTable: 251, Continue: Actions{Output: PortNormal}},
		{Continue: Actions{}},
		{Continue: Actions{Goto: true, GotoTable: 4}},
		{Continue: Actions{Output: PortNormal, Resubmit: true, ResubmitTable: 9}},
		{Continue: Actions{Output: PortNormal, Learn: Learn{Table: 9, Cookie: LearnedCookie}}},
		{Continue: Actions{Output: PortNormal}, OffenderIdleTimeout: 500 * time.Millisecond},
		{Continue: Actions{Output: PortNormal}, OffenderIdleTimeout: 1500 * time.Millisecond},
		{Continue: Actions{Output: PortNormal}, OffenderIdleTimeout: 70000 * time.Second},
		{Continue: Actions{Goto: true, GotoTable: 255}},
		{Continue: Actions{Output: PortNormal, Goto: true, GotoTable: 9}},
		{Continue: Actions{Output: PortNormal, WriteMetadata: 1, WriteMetadataMask: 1}},
		{Continue: Actions{Output: 0xffffffff}},
	} {
		if err := o.Validate(); err == nil {
			t.Errorf("Validate(%+v) = nil, want error", o)
		}
		if c, err := Compile(doc, tokyo, genBase, o); err == nil || c != nil {
			t.Errorf("Compile with %+v = %v, %v; want error", o, c, err)
		}
	}
	for _, o := range []Options{
		DefaultOptions(),
		{FirstTable: MaxFirstTable, Continue: Actions{Output: 2}},
		{FirstTable: 0, Continue: Actions{Goto: true, GotoTable: 5}},
		{Continue: Actions{Output: PortNormal}, OffenderIdleTimeout: 65535 * time.Second, OffenderFlows: 1},
	} {
		if err := o.Validate(); err != nil {
			t.Errorf("Validate(%+v) = %v", o, err)
		}
	}
}

func TestCompileDeterministic(t *testing.T) {
	doc := contractDoc(t)
	at := time.Date(2007, 1, 1, 0, 0, 0, 0, time.UTC)
	a := RenderSet(mustCompile(t, doc, tokyo, at, DefaultOptions()).Flows)
	// Reordering the document changes nothing.
	doc.Pools[0], doc.Pools[2] = doc.Pools[2], doc.Pools[0]
	doc.Services[0], doc.Services[1] = doc.Services[1], doc.Services[0]
	if b := RenderSet(mustCompile(t, doc, tokyo, at, DefaultOptions()).Flows); a != b {
		t.Errorf("compile depends on document order:\n%s\nvs\n%s", a, b)
	}
}

// TestCompileRefusesHugeProducts: a document can ask for services ×
// (relays + destination prefixes) flows. topology.Validate rejects it, and
// Compile, given it anyway, must refuse it with ErrTooManyFlows instead of
// allocating gigabytes.
func TestCompileRefusesHugeProducts(t *testing.T) {
	doc := &topology.Document{}
	for i := range 1100 {
		doc.Relays = append(doc.Relays, topology.Relay{Name: fmt.Sprintf("r%d", i), Prefix: fmt.Sprintf("192.0.%d.%d/32", i/256, i%256)})
	}
	for i := range topology.MaxServices {
		name := fmt.Sprintf("svc-%d", i)
		doc.Services = append(doc.Services, topology.Service{Name: name, Phases: []topology.Phase{{Block: topology.Block{All: true}}}})
		doc.Pools = append(doc.Pools, topology.Pool{Name: "p" + name, Prefix: fmt.Sprintf("10.%d.%d.0/24", i/256, i%256), Kind: topology.KindDynamic, Service: name})
	}
	if err := topology.Validate(doc); err == nil || !strings.Contains(err.Error(), "flows on one bridge") {
		t.Fatalf("Validate = %v, want the flow budget problem", err)
	}
	_, err := Compile(doc, stray, genBase, DefaultOptions())
	if !errors.Is(err, ErrTooManyFlows) {
		t.Fatalf("Compile = %v, want ErrTooManyFlows", err)
	}
	t.Log(err)
}

func TestCompileRejectsUnvalidatedDocuments(t *testing.T) {
	for name, doc := range map[string]*topology.Document{
		"nil":          nil,
		"host bits":    {Pools: []topology.Pool{{Name: "a", Prefix: "10.1.0.1/16", Kind: "static"}}},
		"bad relay":    {Relays: []topology.Relay{{Name: "r", Prefix: "nonsense"}}},
		"bad dest":     {Destinations: []topology.DestinationSet{{Name: "d", Prefixes: []string{"10.0.0.0/33"}}}},
		"port range":   {Ports: []int{70000}},
		"port repeats": {Ports: []int{25, 25}},
	} {
		if c, err := Compile(doc, tokyo, genBase, DefaultOptions()); err == nil || c != nil {
			t.Errorf("%s: Compile = %v, %v; want an error", name, c, err)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
}
