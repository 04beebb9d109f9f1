package flows

import (
	"encoding/json"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/op25b/op25b/topology"
)

// simulateCounting is Simulate that also reports the tables the packet was
// resubmitted to (op25b: the offender table, when it counts the packet).
func simulateCounting(fs []Flow, opts Options, p Packet) (Verdict, []uint8) {
	eth, ok := p.ethType()
	if !ok {
		return Forward, nil
	}
	s := simulation{fs: fs, opts: opts, eth: eth, p: p}
	if s.pipeline(opts.FirstTable, 0, 0) {
		return Forward, s.resubmitted
	}
	return Drop, s.resubmitted
}

// withoutOffenderTable is fs with the offender table removed and every
// resubmit and learn stripped: the policy alone.
func withoutOffenderTable(fs []Flow, opts Options) []Flow {
	var out []Flow
	for _, f := range fs {
		if f.Table == opts.OffenderTable() {
			continue
		}
		f.Actions.Resubmit, f.Actions.ResubmitTable, f.Actions.Learn = false, 0, Learn{}
		out = append(out, f)
	}
	return out
}

var tcpFlagChoices = []uint16{0, TCPFlagSYN, TCPFlagSYN | TCPFlagACK, TCPFlagACK, TCPFlagACK | TCPFlagPSH, TCPFlagFIN | TCPFlagACK, TCPFlagRST}

func isAttempt(p Packet) bool { return p.TCPFlags&(TCPFlagSYN|TCPFlagACK) == TCPFlagSYN }

// TestOffenderCountingProperties: for random documents, bridges, instants
// and packets (with random TCP flags), and with every service enforcing or
// some of them observing:
//   - the offender table never changes a verdict: Simulate with it equals
//     Simulate without it (and, enforcing, Evaluate);
//   - enforcing, a packet is counted (resubmitted to the offender table,
//     once) exactly when the policy drops it;
//   - observing, nothing the policy would drop is dropped, and a packet is
//     counted exactly when the policy would drop it and it is a connection
//     attempt (SYN without ACK);
//   - the diff between the enforcing and the observing flow sets is
//     make-before-break in both directions.
func TestOffenderCountingProperties(t *testing.T) {
	docs := 200
	if testing.Short() {
		docs = 40
	}
	counted, observed := 0, 0
	for seed := range uint64(docs) {
		r := rand.New(rand.NewPCG(seed, 14))
		doc := genDoc(t, r)
		// The phases' own modes are replaced by the observing map below:
		// "enforcing" compiles every phase enforcing.
		for i := range doc.Services {
			for j := range doc.Services[i].Phases {
				doc.Services[i].Phases[j].Mode = ""
			}
		}
		opts := DefaultOptions()
		if seed%4 == 0 {
			opts = Options{FirstTable: 9, Continue: Actions{Goto: true, GotoTable: 30}, OffenderFlows: 7, OffenderIdleTimeout: 5 * time.Second}
		}
		observing := map[string]bool{}
		for _, s := range doc.Services {
			observing[s.Name] = r.IntN(2) == 0
		}
		packets := genPackets(r, doc, 50)
		for i := range packets {
			packets[i].TCPFlags = pick(r, tcpFlagChoices)
		}
		for _, dpid := range genDPIDs {
			pop := dpidPop(doc, dpid)
			for _, at := range genInstants(doc) {
				enforcing := mustCompile(t, doc, dpid, at, opts).Flows
				obs, err := compile(doc, dpid, at, opts, func(s string) bool { return observing[s] })
				if err != nil {
					t.Fatal(err)
				}
				policy := withoutOffenderTable(enforcing, opts)
				for _, p := range packets {
					want := Evaluate(doc, pop, at, p)
					// A quarantine drops ahead of the pools, in a flow of its
					// own that does not count per source.
					quarantined := Explain(doc, pop, at, p).Rule == RuleQuarantine
					got, tables := simulateCounting(enforcing, opts, p)
					if got != want || Simulate(policy, opts, p) != want {
						t.Fatalf("packet %+v: Simulate = %v, without the offender table %v, Evaluate %v\n%s",
							p, got, Simulate(policy, opts, p), want, RenderSet(enforcing))
					}
					if wantCounted := want == Drop && !quarantined; (len(tables) == 1 && tables[0] == opts.OffenderTable()) != wantCounted || len(tables) > 1 {
						t.Fatalf("enforcing, packet %+v (%v) resubmitted to %v\n%s", p, want, tables, RenderSet(enforcing))
					}
					if want == Drop {
						counted++
					}
					svc := poolServiceOf(doc, p.Src)
					gotObs, obsTables := simulateCounting(obs.Flows, opts, p)
					wantObs, wantCounted := want, want == Drop && !quarantined
					if want == Drop && observing[svc] && !quarantined {
						wantObs, wantCounted = Forward, isAttempt(p)
						observed++
					}
					if gotObs != wantObs || (len(obsTables) == 1) != wantCounted || len(obsTables) > 1 {
						js, _ := json.Marshal(doc)
						t.Fatalf("observing %v, packet %+v: verdict %v (want %v), resubmitted to %v (want counted %v)\n%s\n%s",
							observing, p, gotObs, wantObs, obsTables, wantCounted, js, RenderSet(obs.Flows))
					}
				}
				checkDiff(t, enforcing, obs.Flows, opts, packets)
				checkDiff(t, obs.Flows, enforcing, opts, packets)
			}
		}
	}
	if counted < docs || observed < docs/4 {
		t.Errorf("only %d counted and %d observed packets: the generator no longer exercises the offender table", counted, observed)
	}
}

// poolServiceOf is the service of the most specific pool containing src.
func poolServiceOf(doc *topology.Document, src netip.Addr) string {
	svc, bits := "", -1
	for _, p := range doc.Pools {
		pfx := netip.MustParsePrefix(p.Prefix)
		if pfx.Contains(src) && pfx.Bits() > bits {
			svc, bits = p.Service, pfx.Bits()
		}
	}
	return svc
}

// TestSimulateSeesResubmits is the negative control of the property above:
// were the offender table to forward, Simulate would say so.
func TestSimulateSeesResubmits(t *testing.T) {
	doc := contractDoc(t)
	at := time.Date(2007, 1, 1, 0, 0, 0, 0, time.UTC)
	fs := mustCompile(t, doc, tokyo, at, DefaultOptions()).Flows
	p := tcp("10.1.3.4", "203.0.113.1", 25)
	if got := Simulate(fs, DefaultOptions(), p); got != Drop {
		t.Fatalf("blocked packet: %v", got)
	}
	broken := slices.Clone(fs)
	for i, f := range broken {
		if !f.Actions.Learn.IsZero() {
			broken[i].Actions.Output = PortNormal
		}
	}
	if got := Simulate(broken, DefaultOptions(), p); got != Forward {
		t.Errorf("an offender table that outputs: Simulate = %v, want forward", got)
	}
}

func TestCompileOffenderTable(t *testing.T) {
	doc := contractDoc(t)
	at := time.Date(2007, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		opts              Options
		table             uint8
		limit, idle       string
		learnedPriorities string
	}{
		{DefaultOptions(), 4, "limit=782", "idle_timeout=60", "priority=10"},
		{Options{FirstTable: 20, Continue: Actions{Output: PortNormal}, OffenderFlows: 123, OffenderIdleTimeout: 90 * time.Second},
			24, "limit=2", "idle_timeout=90", "priority=10"},
	} {
		c := mustCompile(t, doc, tokyo, at, tt.opts)
		var offender, dropCount []Flow
		for _, f := range c.Flows {
			switch f.Table {
			case tt.table:
				offender = append(offender, f)
			case tt.table - 1:
				dropCount = append(dropCount, f)
			}
		}
		got := RenderSet(offender)
		want := []string{
			"priority=1, cookie=", ", tcp,tp_src=0x0/0x3f actions=learn(table=" + itoa(tt.table) + "," + tt.idle + "," + tt.learnedPriorities + ",cookie=0x25b1000000000000," + tt.limit +
				",eth_type=0x800,nw_proto=6,OXM_OF_METADATA[32..63],NXM_OF_IP_SRC[],NXM_OF_IP_DST[])",
			", tcp6,tp_src=0x3f/0x3f actions=learn(table=" + itoa(tt.table) + "," + tt.idle + "," + tt.learnedPriorities + ",cookie=0x25b100000000003f," + tt.limit +
				",eth_type=0x86dd,nw_proto=6,OXM_OF_METADATA[32..63],NXM_NX_IPV6_SRC[],NXM_NX_IPV6_DST[])",
		}
		// No catch-all: a narrowed flow monitor could not see it (compile.go).
		if len(offender) != 2*OffenderBuckets {
			t.Errorf("offender table has %d flows, want %d:\n%s", len(offender), 2*OffenderBuckets, got)
		}
		// Every source port falls in exactly one bucket per family.
		for port := range uint16(300) {
			n := 0
			for _, f := range offender {
				p := Packet{Src: netip.MustParseAddr("10.0.0.1"), Dst: netip.MustParseAddr("10.0.0.2"), Proto: IPProtoTCP, DstPort: 25, SrcPort: port}
				if f.Priority == prioLearner && matches(f.Match, EthTypeIPv4, 0, p) {
					n++
					if f.Actions.Learn.Cookie != LearnedCookie|uint64(port%OffenderBuckets) {
						t.Errorf("port %d learns with cookie %#x", port, f.Actions.Learn.Cookie)
					}
				}
			}
			if n != 1 {
				t.Fatalf("source port %d matches %d learn buckets", port, n)
			}
		}
		for _, w := range want {
			if !strings.Contains(got, w) {
				t.Errorf("offender table lacks %q:\n%s", w, got)
			}
		}
		if tbl, ok := OffenderTableOf(c.Flows); !ok || tbl != tt.table {
			t.Errorf("OffenderTableOf = %d, %v", tbl, ok)
		}
		pools := OffenderPools(c.Flows)
		if len(pools) != len(c.DropPool) || len(dropCount) != len(c.DropPool)+1 {
			t.Errorf("%d counted pools, %d pool drop flows, %d drop-count flows", len(pools), len(c.DropPool), len(dropCount))
		}
		names := PoolNames(doc)
		for k, name := range c.DropPool {
			id := uint32(k.Match.Metadata >> 32)
			if names[id] != name || pools[id] {
				t.Errorf("pool %q: id %#x named %q, observing %v", name, id, names[id], pools[id])
			}
		}
		for _, f := range dropCount {
			if f.Priority == 0 {
				if f.Actions != (Actions{}) {
					t.Errorf("drop-count catch-all: %s", Render(f))
				}
				continue
			}
			if !f.Actions.Resubmit || f.Actions.ResubmitTable != tt.table || !f.Actions.IsDrop() {
				t.Errorf("pool drop flow does not resubmit to %d and drop: %s", tt.table, Render(f))
			}
		}
	}
}

// TestCompileObservingPool: the shape of an observing pool's flows, and
// what an enforce → observe switch costs.
func TestCompileObservingPool(t *testing.T) {
	doc := contractDoc(t)
	at := time.Date(2007, 1, 1, 0, 0, 0, 0, time.UTC)
	obs, err := compile(doc, tokyo, at, DefaultOptions(), func(s string) bool { return s == "ftth" })
	if err != nil {
		t.Fatal(err)
	}
	enf := mustCompile(t, doc, tokyo, at, DefaultOptions())
	var lines []string
	for _, f := range obs.Flows {
		if f.Table == 3 && f.Priority > 0 {
			lines = append(lines, Render(f))
		}
	}
	id := PoolIDsOf(doc)["tokyo-dyn"]
	meta := "metadata=0x" + strings.TrimPrefix(hex(uint64(id)<<32), "0x") + "/0xffffffff00000000"
	for _, want := range []string{
		"priority=1001, cookie=", ", tcp," + meta + ",tcp_flags=+syn-ack actions=resubmit(,4),NORMAL",
		"priority=1000, cookie=", ", " + meta + " actions=NORMAL",
	} {
		if !strings.Contains(strings.Join(lines, "\n"), want) {
			t.Errorf("observing pool lacks %q:\n%s", want, strings.Join(lines, "\n"))
		}
	}
	if pools := OffenderPools(obs.Flows); !pools[id] {
		t.Errorf("OffenderPools says tokyo-dyn enforces: %v", pools)
	}
	changes := Diff(obs.Flows, enf.Flows)
	if len(changes) != 2 {
		t.Errorf("enforce → observe: %d changes, want 2 (one added, one modified):\n%s", len(changes), renderChanges(changes))
	}
}

// PoolIDsOf is PoolNames the other way round, for tests.
func PoolIDsOf(doc *topology.Document) map[string]uint32 {
	out := map[string]uint32{}
	for id, name := range PoolNames(doc) {
		out[name] = id
	}
	return out
}

func hex(v uint64) string { return string(appendHex(nil, v)) }

func itoa(v uint8) string { return strconv.Itoa(int(v)) }

func TestParseLearned(t *testing.T) {
	v4 := Match{EthType: EthTypeIPv4, IPProto: IPProtoTCP, Metadata: 0xabcdef0100000000, MetadataMask: metadataPool,
		Src: netip.MustParsePrefix("10.1.2.3/32"), Dst: netip.MustParsePrefix("203.0.113.25/32")}
	v6 := Match{EthType: EthTypeIPv6, IPProto: IPProtoTCP, Metadata: 7 << 32, MetadataMask: metadataPool,
		Src: netip.MustParsePrefix("2001:db8::1/128"), Dst: netip.MustParsePrefix("2001:db8:25::25/128")}
	for _, tt := range []struct {
		name string
		f    Flow
		want LearnedFlow
		ok   bool
	}{
		{"v4", Flow{Table: 4, Priority: 10, Cookie: LearnedCookie, Match: v4}, LearnedFlow{PoolID: 0xabcdef01,
			Src: netip.MustParseAddr("10.1.2.3"), Dst: netip.MustParseAddr("203.0.113.25")}, true},
		{"v6", Flow{Table: 4, Priority: 10, Cookie: LearnedCookie, Match: v6}, LearnedFlow{PoolID: 7,
			Src: netip.MustParseAddr("2001:db8::1"), Dst: netip.MustParseAddr("2001:db8:25::25")}, true},
		{"op25b cookie", Flow{Table: 4, Cookie: CookieMarker, Match: v4}, LearnedFlow{}, false},
		{"other cookie", Flow{Table: 4, Cookie: 0x1234, Match: v4}, LearnedFlow{}, false},
		{"prefix, not a host", Flow{Cookie: LearnedCookie, Match: func() Match { m := v4; m.Src = netip.MustParsePrefix("10.1.0.0/16"); return m }()}, LearnedFlow{}, false},
		{"no metadata", Flow{Cookie: LearnedCookie, Match: func() Match { m := v4; m.MetadataMask = 0; return m }()}, LearnedFlow{}, false},
		{"mixed families", Flow{Cookie: LearnedCookie, Match: func() Match { m := v4; m.Dst = v6.Dst; return m }()}, LearnedFlow{}, false},
		{"eth type of the other family", Flow{Cookie: LearnedCookie, Match: func() Match { m := v4; m.EthType = EthTypeIPv6; return m }()}, LearnedFlow{}, false},
		{"a port", Flow{Cookie: LearnedCookie, Match: func() Match { m := v4; m.TCPDst = 25; return m }()}, LearnedFlow{}, false},
	} {
		got, ok := ParseLearned(tt.f)
		if ok != tt.ok || got != tt.want {
			t.Errorf("%s: ParseLearned = %+v, %v; want %+v, %v", tt.name, got, ok, tt.want, tt.ok)
		}
	}
}

func TestRenderOffenderActions(t *testing.T) {
	learn := Learn{Table: 4, Priority: 10, IdleTimeout: 60, Limit: 3, Cookie: LearnedCookie}
	for _, tt := range []struct {
		f    Flow
		want string
	}{
		{Flow{Table: 3, Priority: 1000, Cookie: CookieMarker, Match: Match{Metadata: 5 << 32, MetadataMask: metadataPool}, Actions: Actions{Resubmit: true, ResubmitTable: 4}},
			"table=3, priority=1000, cookie=0x25b0000000000000, metadata=0x500000000/0xffffffff00000000 actions=resubmit(,4)"},
		{Flow{Table: 3, Priority: 1001, Cookie: CookieMarker, Match: Match{EthType: EthTypeIPv6, IPProto: IPProtoTCP, TCPFlags: TCPFlagSYN, TCPFlagsMask: TCPFlagSYN | TCPFlagACK},
			Actions: Actions{Resubmit: true, ResubmitTable: 4, Goto: true, GotoTable: 9}},
			"table=3, priority=1001, cookie=0x25b0000000000000, tcp6,tcp_flags=+syn-ack actions=resubmit(,4),goto_table:9"},
		{Flow{Table: 4, Priority: 1, Cookie: CookieMarker, Match: Match{EthType: EthTypeIPv4, IPProto: IPProtoTCP, TCPSrc: 5, TCPSrcMask: 0x3f}, Actions: Actions{Learn: learn}},
			"table=4, priority=1, cookie=0x25b0000000000000, tcp,tp_src=0x5/0x3f actions=learn(table=4,idle_timeout=60,priority=10,cookie=0x25b1000000000000,limit=3,eth_type=0x800,nw_proto=6,OXM_OF_METADATA[32..63],NXM_OF_IP_SRC[],NXM_OF_IP_DST[])"},
		{Flow{Table: 4, Priority: 1, Cookie: CookieMarker, Match: Match{EthType: EthTypeIPv4, IPProto: IPProtoTCP, TCPSrc: 587, TCPSrcMask: 0xffff}},
			"table=4, priority=1, cookie=0x25b0000000000000, tcp,tp_src=587 actions=drop"},
		{Flow{Table: 4, Cookie: CookieMarker, Match: Match{EthType: EthTypeIPv4, IPProto: IPProtoTCP, TCPFlags: 0x1000, TCPFlagsMask: 0x1000}},
			"table=4, priority=0, cookie=0x25b0000000000000, tcp,tcp_flags=0x1000/0x1000 actions=drop"},
		{Flow{Table: 4, Cookie: CookieMarker, Match: Match{EthType: EthTypeIPv4, IPProto: IPProtoTCP, TCPFlags: TCPFlagFIN | TCPFlagRST, TCPFlagsMask: TCPFlagFIN | TCPFlagRST | TCPFlagACK}},
			"table=4, priority=0, cookie=0x25b0000000000000, tcp,tcp_flags=+fin+rst-ack actions=drop"},
	} {
		if got := Render(tt.f); got != tt.want {
			t.Errorf("Render =\n  %s\nwant\n  %s", got, tt.want)
		}
	}
}

// TestCookiesOfOldFlowsUnchanged pins cookies of flows compiled before the
// offender table existed: upgrading must modify the drop-count flows in
// place (their actions change), never re-add every flow.
func TestCookiesOfOldFlowsUnchanged(t *testing.T) {
	m := Match{Metadata: 0x4b19fb5600000000, MetadataMask: metadataPool}
	if got := cookieFor(3, RoleDropCount, prioPoolDrop, m); got != 0x25b003cb4453fc40 {
		t.Errorf("drop-count cookie %#x, was 0x25b003cb4453fc40 (README's example)", got)
	}
	if got := cookieFor(0, RoleClassifier, prioPort, Match{EthType: EthTypeIPv4, IPProto: IPProtoTCP, TCPDst: 25}); got != 0x25b0002047389176 {
		t.Errorf("classifier cookie %#x, was 0x25b0002047389176", got)
	}
}
