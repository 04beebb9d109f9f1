package flows

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/op25b/op25b/topology"
)

// Random documents that are valid by construction, and packets aimed at the
// interesting addresses of a document (prefix edges, relays, destinations).

var genBase = time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)

// genPops are the pops random phases and bridges use; "" is an unregistered
// bridge.
var genPops = []string{"", "pop-a", "pop-b"}

// genV4 and genV6 are small prefix hierarchies, so random pools nest and
// overlap with relays and destinations.
var genV4 = []string{
	"0.0.0.0/0", "10.0.0.0/8", "10.1.0.0/16", "10.1.2.0/24", "10.1.2.0/29", "10.1.2.8/29",
	"10.1.2.128/25", "10.2.0.0/16", "10.1.2.5/32", "192.0.2.0/24", "192.0.2.25/32",
	"198.51.100.0/24", "198.51.100.0/25", "203.0.113.0/24",
}
var genV6 = []string{
	"::/0", "2001:db8::/32", "2001:db8:1::/48", "2001:db8:1:1::/64", "2001:db8:1:1::/80",
	"2001:db8:2::/48", "2001:db8:ffff::/48", "2001:db8:ffff::25/128", "2001:db8:1:1::9/128",
}

func pick[T any](r *rand.Rand, xs []T) T { return xs[r.IntN(len(xs))] }

func genPrefix(r *rand.Rand) string {
	if r.IntN(3) == 0 {
		return pick(r, genV6)
	}
	return pick(r, genV4)
}

// genDoc builds a random valid document and proves it valid.
func genDoc(t testing.TB, r *rand.Rand) *topology.Document {
	t.Helper()
	doc := buildDoc(r)
	if err := topology.Validate(doc); err != nil {
		js, _ := json.Marshal(doc)
		t.Fatalf("generator made an invalid document: %v\n%s", err, js)
	}
	return doc
}

// buildDoc builds a random document that is valid by construction.
func buildDoc(r *rand.Rand) *topology.Document {
	doc := &topology.Document{}
	switch r.IntN(3) {
	case 1:
		doc.Ports = []int{25, 2525}
	case 2:
		doc.Ports = []int{587}
	}
	for i := range 1 + r.IntN(3) {
		set := topology.DestinationSet{Name: fmt.Sprintf("dst-%d", i)}
		seen := map[string]bool{}
		for range 1 + r.IntN(3) {
			p := genPrefix(r)
			if !seen[p] {
				seen[p] = true
				set.Prefixes = append(set.Prefixes, p)
			}
		}
		doc.Destinations = append(doc.Destinations, set)
	}
	seen := map[string]bool{}
	for i := range r.IntN(4) {
		p := genPrefix(r)
		if !seen[p] {
			seen[p] = true
			doc.Relays = append(doc.Relays, topology.Relay{Name: fmt.Sprintf("relay-%d", i), Prefix: p})
		}
	}
	for i := range 1 + r.IntN(3) {
		svc := topology.Service{Name: fmt.Sprintf("svc-%d", i)}
		from := genBase.Add(-time.Duration(r.IntN(3)) * time.Hour)
		for j := range 1 + r.IntN(3) {
			var ph topology.Phase
			if j > 0 || r.IntN(2) == 0 {
				from = from.Add(time.Duration(1+r.IntN(2)) * time.Hour)
				ph.From = from.In(time.FixedZone("", 9*3600)).Format(time.RFC3339)
			}
			if r.IntN(2) == 0 {
				ph.Block = topology.Block{All: true}
			} else {
				ph.Block = topology.Block{Sets: []string{}}
				for _, d := range doc.Destinations {
					if r.IntN(2) == 0 {
						ph.Block.Sets = append(ph.Block.Sets, d.Name)
					}
				}
			}
			if r.IntN(2) == 0 {
				b := r.IntN(2) == 0
				ph.Relays = &b
			}
			if r.IntN(3) == 0 {
				ph.Pops = []string{pick(r, genPops[1:])}
			}
			svc.Phases = append(svc.Phases, ph)
		}
		doc.Services = append(doc.Services, svc)
	}
	seen = map[string]bool{}
	for i := range 1 + r.IntN(7) {
		p := genPrefix(r)
		if seen[p] {
			continue
		}
		seen[p] = true
		pool := topology.Pool{Name: fmt.Sprintf("pool-%d", i), Prefix: p, Kind: topology.KindStatic}
		if r.IntN(4) != 0 {
			pool.Kind = topology.KindDynamic
			pool.Service = pick(r, doc.Services).Name
		}
		doc.Pools = append(doc.Pools, pool)
	}
	for i, pop := range genPops[1:] {
		doc.Bridges = append(doc.Bridges, topology.Bridge{
			DPID: topology.DPIDFromUint64(uint64(i + 1)), Name: "br-" + pop, Pop: pop,
		})
	}
	// Issue 14, drawn last so that the rest of a seed's document is what it
	// was before: observing phases, exemptions and quarantines.
	for i := range doc.Services {
		for j := range doc.Services[i].Phases {
			if r.IntN(4) == 0 {
				doc.Services[i].Phases[j].Mode = topology.ModeObserve
			}
		}
	}
	doc.Exemptions = genOverrides[topology.Exemption](r, "exempt")
	doc.Quarantines = genOverrides[topology.Quarantine](r, "quarantine")
	return doc
}

// genOverrides returns up to three exemptions or quarantines with distinct
// prefixes, some lapsing around the phase boundaries, some long lapsed,
// some in force for a long time, untils written in various offsets.
func genOverrides[T topology.Exemption | topology.Quarantine](r *rand.Rand, kind string) []T {
	var out []T
	seen := map[string]bool{}
	for i := range r.IntN(4) {
		p := genPrefix(r)
		if seen[p] {
			continue
		}
		seen[p] = true
		until := genBase.Add(time.Duration(r.IntN(7)-2) * 30 * time.Minute)
		switch r.IntN(5) {
		case 0:
			until = genBase.Add(-1000 * time.Hour)
		case 1:
			until = genBase.Add(1000 * time.Hour)
		}
		zone := time.FixedZone("", pick(r, []int{0, 9 * 3600, -(4*3600 + 30*60)}))
		out = append(out, T{Name: fmt.Sprintf("%s-%d", kind, i), Prefix: p, Until: until.In(zone).Format(time.RFC3339Nano),
			Reason: "generated", Ticket: fmt.Sprintf("T-%d", i)})
	}
	return out
}

// genDPIDs: one bridge per pop of genDoc, plus an unregistered one.
var genDPIDs = []topology.DPID{"0000000000000001", "0000000000000002", "00000000000000ff"}

func dpidPop(doc *topology.Document, dpid topology.DPID) string {
	pop, _ := doc.BridgePop(dpid)
	return pop
}

// interestingAddrs returns addresses at the edges of every prefix in doc.
func interestingAddrs(doc *topology.Document) []netip.Addr {
	var out []netip.Addr
	addEdges := func(s string) {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return
		}
		first := p.Addr()
		out = append(out, first, first.Next())
		last := lastAddr(p)
		out = append(out, last)
		if n := first.Prev(); n.IsValid() {
			out = append(out, n)
		}
		if n := last.Next(); n.IsValid() {
			out = append(out, n)
		}
	}
	for _, p := range doc.Pools {
		addEdges(p.Prefix)
	}
	for _, e := range doc.Exemptions {
		addEdges(e.Prefix)
	}
	for _, q := range doc.Quarantines {
		addEdges(q.Prefix)
	}
	for _, r := range doc.Relays {
		addEdges(r.Prefix)
	}
	for _, d := range doc.Destinations {
		for _, p := range d.Prefixes {
			addEdges(p)
		}
	}
	out = append(out, netip.MustParseAddr("8.8.8.8"), netip.MustParseAddr("2606:4700::1"))
	return out
}

func lastAddr(p netip.Prefix) netip.Addr {
	a := p.Addr().As16()
	bits := p.Bits()
	if p.Addr().Is4() {
		bits += 96
	}
	for i := bits; i < 128; i++ {
		a[i/8] |= 1 << (7 - i%8)
	}
	addr := netip.AddrFrom16(a)
	if p.Addr().Is4() {
		return addr.Unmap()
	}
	return addr
}

// genPackets returns n packets between interesting addresses of one
// family, biased towards SMTP-bound packets from inside pools (the only ones
// the policy can drop).
func genPackets(r *rand.Rand, doc *topology.Document, n int) []Packet {
	var inside []netip.Addr
	addInside := func(s string) {
		if prefix, err := netip.ParsePrefix(s); err == nil {
			inside = append(inside, prefix.Addr(), lastAddr(prefix))
		}
	}
	for _, p := range doc.Pools {
		addInside(p.Prefix)
	}
	for _, e := range doc.Exemptions {
		addInside(e.Prefix)
	}
	for _, q := range doc.Quarantines {
		addInside(q.Prefix)
	}
	split := func(addrs []netip.Addr) (v4, v6 []netip.Addr) {
		for _, a := range addrs {
			if a.Is4() {
				v4 = append(v4, a)
			} else {
				v6 = append(v6, a)
			}
		}
		return v4, v6
	}
	all4, all6 := split(interestingAddrs(doc))
	in4, in6 := split(inside)
	other := []int{25, 587, 2525, 80}
	out := make([]Packet, 0, n)
	for range n {
		src, dst := all4, all4
		if len(in4) > 0 && r.IntN(3) > 0 {
			src = in4
		}
		if r.IntN(2) == 0 {
			src, dst = all6, all6
			if len(in6) > 0 && r.IntN(3) > 0 {
				src = in6
			}
		}
		port := pick(r, doc.EffectivePorts())
		if r.IntN(4) == 0 {
			port = pick(r, other)
		}
		p := Packet{Src: pick(r, src), Dst: pick(r, dst), Proto: IPProtoTCP, DstPort: uint16(port)}
		if r.IntN(10) == 0 {
			p.Proto = 17
		}
		out = append(out, p)
	}
	return out
}

// genInstants are times around every phase boundary and every until of
// doc: 1 ns before, at, and a minute after.
func genInstants(doc *topology.Document) []time.Time {
	out := []time.Time{genBase.Add(-24 * time.Hour), genBase.Add(24 * time.Hour)}
	around := func(s string) {
		if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
			out = append(out, t.Add(-time.Nanosecond), t, t.Add(time.Minute))
		}
	}
	for _, s := range doc.Services {
		for _, ph := range s.Phases {
			around(ph.From)
		}
	}
	for _, e := range doc.Exemptions {
		around(e.Until)
	}
	for _, q := range doc.Quarantines {
		around(q.Until)
	}
	return out
}

func loadDoc(t testing.TB, path string) *topology.Document {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := topology.ParseJSON(data)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if err := topology.Validate(doc); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return doc
}

func mustCompile(t testing.TB, doc *topology.Document, dpid topology.DPID, at time.Time, opts Options) *Compiled {
	t.Helper()
	c, err := Compile(doc, dpid, at, opts)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
