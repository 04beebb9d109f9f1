package flows

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/op25b/op25b/topology"
)

// Priorities. In the source table a pool's priority is prioPoolBase plus its
// prefix length, so OpenFlow's "highest priority wins" is longest-prefix
// match; an IPv4 and an IPv6 pool of equal length share a priority but never
// overlap because their eth_type differs. Exemptions and quarantines act
// ahead of the pools (docs/semantics.md), each in a band of its own above
// them, longest prefix first within the band: quarantines
// (prioQuarantineBase+length) above exemptions (prioExemptionBase+length)
// above pools. The bands are disjoint (a prefix length is at most 128), so
// two source flows of one priority that both match a packet are one flow.
// In the destination table relays beat blocked destinations, which beat the
// service default (docs/semantics.md steps 4 and 5 in that order).
const (
	prioCatchAll       uint16 = 0
	prioPort           uint16 = 100
	prioPoolBase       uint16 = 1000
	prioExemptionBase  uint16 = 2000
	prioQuarantineBase uint16 = 3000
	prioServiceDefault uint16 = 1000
	prioBlocked        uint16 = 2000
	prioRelay          uint16 = 3000
	prioPoolDrop       uint16 = 1000
	// prioQuarantineDrop is above every per-pool flow of the drop-count
	// table: a quarantine's id may equal a pool's, and its packets (service
	// bits 0) must meet the quarantine's flow first.
	prioQuarantineDrop uint16 = 2000
	// prioPoolSYN is an observe-mode pool's flow for connection attempts
	// (SYN without ACK), above its flow for the rest of the session.
	prioPoolSYN uint16 = 1001
	// prioLearner and prioLearned: in the offender table, a learned
	// (pool, source, destination) flow beats the learn action that adds it.
	prioLearner uint16 = 1
	prioLearned uint16 = 10
)

// Metadata layout written by the source table: pool id in the high 32 bits
// (read by the drop-count table), service id in the low 32 bits (read by the
// destination table). A quarantine writes its own id in the high bits and 0
// in the low ones, which no service id is (stableIDs skips 0): the
// drop-count table tells the two apart by the whole 64 bits.
const (
	metadataAll     uint64 = 0xffffffffffffffff
	metadataService uint64 = 0x00000000ffffffff
	metadataPool    uint64 = 0xffffffff00000000
)

// MaxFlows bounds the flow set of one bridge. 100k pools compile to about
// 175k flows; beyond a million, OVS's classifier and a full reconcile become
// the bottleneck long before memory does.
const MaxFlows = topology.MaxFlowsPerBridge

// ErrTooManyFlows is returned (wrapped) by Compile when a document would
// need more than MaxFlows flows on one bridge. topology.Validate rejects such
// documents up front; this is the defence for callers that skipped it. The
// controller keeps the flows it has and reports the error.
var ErrTooManyFlows = errors.New("too many flows")

// Compiled is the desired flow set of one bridge plus what the controller and
// the API need to attribute drop counters to pools and quarantines.
type Compiled struct {
	// Flows is sorted by table, priority descending, then match.
	Flows []Flow
	// DropPool maps each per-pool drop flow (drop-count table) to its pool.
	DropPool map[Key]string
	// ObservePool maps each per-pool flow of the drop-count table that
	// forwards, because its pool's active phase observes, to its pool:
	// its counter is what the phase would drop.
	ObservePool map[Key]string
	// DropQuarantine maps each quarantine's drop flow (drop-count table)
	// to its quarantine.
	DropQuarantine map[Key]string
}

// Compile returns the complete desired flow set for the bridge dpid at time
// at. The pipeline, in tables FirstTable+0..4:
//
//   - classifier: tcp/tcp6 to an SMTP port → source table; anything else →
//     Continue. Non-SMTP traffic is decided by one L4-port match, so the
//     datapath never needs to look at addresses for it.
//   - source: first the quarantines and exemptions in force at `at` (until
//     after at), then the pools, each the longest prefix containing
//     nw_src/ipv6_src within its band (see the priorities). A quarantine
//     writes its id into the metadata and goes straight to drop-count,
//     skipping relays and destinations; an exemption → Continue. Static
//     pools, dynamic pools without an active phase here, and addresses in no
//     pool → Continue; a dynamic pool with an active phase writes its pool
//     and service ids into the metadata and goes to the destination table.
//   - destination, per active service (metadata service id): relays →
//     Continue when the phase permits them; blocked destination prefixes →
//     drop-count; otherwise the service default (drop-count for block "all",
//     Continue otherwise).
//   - drop-count: one flow per pool, so each pool's drops are counted
//     separately: it drops, or, when the pool's active phase observes,
//     forwards (Continue) what it counts. It is the one place where "would
//     drop" turns into a drop or not. Each pool's flow first resubmits the
//     packet to the offender table, which counts it per source (observing,
//     only connection attempts are resubmitted, by a flow of their own). One
//     drop flow per quarantine (not counted per source: a quarantined host
//     is already known to the abuse desk); a catch-all drop.
//   - offender: for TCP over IPv4 and over IPv6, a learn action that adds a
//     counting flow per (pool, source, destination) pair, bounded by
//     Options.OffenderFlows and expiring Options.OffenderIdleTimeout after
//     its last packet; no catch-all. Nothing in it forwards, so it never
//     changes a verdict: the flows it learns count (the first packet of a
//     pair is counted by the learn flow, the others by the learned flow,
//     see OffenderPools) and the packet's fate is the drop-count flow's.
//
// The destination table's catch-all is Continue. Only a packet whose
// metadata names a service without destination flows can reach it, which a
// complete compiled set never produces and Diff's ordering never exposes in
// a way that is more permissive than both policies (see Diff). If it ever
// happens through a partial failure, forwarding a subscriber's SMTP is the
// lesser harm than silently blackholing it with no policy saying so.
//
// doc must have passed topology.Validate. The flow count is
// O(pools + used services × (relays + destination prefixes) + ports).
// Compile returns an error only for bad Options, a document that did not
// pass validation, or ErrTooManyFlows; it never panics.
func Compile(doc *topology.Document, dpid topology.DPID, at time.Time, opts Options) (*Compiled, error) {
	return compile(doc, dpid, at, opts, nil)
}

// compile is Compile with observing, which, when not nil, overrides each
// service's active phase mode: whether it only observes (counts what it
// would drop, and forwards it). nil: the phases' own modes. The tests use
// it to compile the same document observing and enforcing.
func compile(doc *topology.Document, dpid topology.DPID, at time.Time, opts Options, observing func(service string) bool) (*Compiled, error) {
	if err := opts.Validate(); err != nil {
		return nil, fmt.Errorf("compile %s: %w", dpid, err)
	}
	if doc == nil {
		return nil, fmt.Errorf("compile %s: nil document", dpid)
	}
	in, err := parseDocument(doc)
	if err != nil {
		return nil, fmt.Errorf("compile %s: document did not pass validation: %w", dpid, err)
	}
	pop, _ := doc.BridgePop(dpid)
	b := &builder{
		opts:      opts,
		observing: observing,
		flows:     make([]Flow, 0, 2*len(doc.Pools)+8),
		c:         &Compiled{DropPool: make(map[Key]string), ObservePool: make(map[Key]string), DropQuarantine: make(map[Key]string)},
	}
	b.classifier(doc.EffectivePorts())
	services := activeServices(doc, pop, at)
	b.overrides(doc, in, at)
	b.source(doc.Pools, in.pools, services)
	if n := len(b.flows) + b.destinationSize(services, in); n > MaxFlows {
		return nil, fmt.Errorf("compile %s: %w: this bridge would need %d flows (more than %d), most of them in the destination table (used services × (relays + blocked destination prefixes)); share services between pools or shrink destination sets",
			dpid, ErrTooManyFlows, n, MaxFlows)
	}
	b.destination(services, in)
	b.offender()
	slices.SortFunc(b.flows, compareFlows)
	b.c.Flows = b.flows
	return b.c, nil
}

// parsedDocument holds the prefixes of a validated document, parsed once.
type parsedDocument struct {
	pools       []netip.Prefix            // parallel to doc.Pools
	relays      []netip.Prefix            // deduplicated
	sets        map[string][]netip.Prefix // destination set → its prefixes
	exemptions  []parsedOverride          // parallel to doc.Exemptions
	quarantines []parsedOverride          // parallel to doc.Quarantines
}

// parsedOverride is an exemption's or a quarantine's prefix and until.
type parsedOverride struct {
	prefix netip.Prefix
	until  time.Time
}

// parseDocument re-checks what Compile relies on, so that a document that
// skipped validation gets an error rather than a panic or a wrong flow.
func parseDocument(doc *topology.Document) (*parsedDocument, error) {
	// The JSON path is only formatted on error: formatting it for 100k
	// pools would double Compile's allocations.
	parse := func(s, path string, i, j int) (netip.Prefix, error) {
		p, err := netip.ParsePrefix(s)
		if err != nil || p != p.Masked() {
			if j >= 0 {
				path = fmt.Sprintf(path, i, j)
			} else {
				path = fmt.Sprintf(path, i)
			}
			return netip.Prefix{}, fmt.Errorf("%s %q is not a canonical prefix", path, s)
		}
		return p, nil
	}
	seenPort := map[int]bool{}
	for i, p := range doc.EffectivePorts() {
		if p < 1 || p > 65535 || seenPort[p] {
			return nil, fmt.Errorf("ports[%d] = %d is out of range or repeated", i, p)
		}
		seenPort[p] = true
	}
	in := &parsedDocument{pools: make([]netip.Prefix, len(doc.Pools)), sets: make(map[string][]netip.Prefix)}
	for i, pool := range doc.Pools {
		p, err := parse(pool.Prefix, "pools[%d].prefix", i, -1)
		if err != nil {
			return nil, err
		}
		in.pools[i] = p
	}
	seen := map[netip.Prefix]bool{}
	for i, r := range doc.Relays {
		p, err := parse(r.Prefix, "relays[%d].prefix", i, -1)
		if err != nil {
			return nil, err
		}
		if !seen[p] {
			seen[p] = true
			in.relays = append(in.relays, p)
		}
	}
	for i, d := range doc.Destinations {
		for j, s := range d.Prefixes {
			p, err := parse(s, "destinations[%d].prefixes[%d]", i, j)
			if err != nil {
				return nil, err
			}
			in.sets[d.Name] = append(in.sets[d.Name], p)
		}
	}
	override := func(kind string, i int, prefix, until string, seen map[netip.Prefix]bool) (parsedOverride, error) {
		p, err := parse(prefix, kind+"[%d].prefix", i, -1)
		if err != nil {
			return parsedOverride{}, err
		}
		if seen[p] {
			return parsedOverride{}, fmt.Errorf("%s[%d].prefix %s is used twice", kind, i, prefix)
		}
		seen[p] = true
		t, err := topology.ParseTime(until)
		if err != nil {
			return parsedOverride{}, fmt.Errorf("%s[%d].until: %w", kind, i, err)
		}
		return parsedOverride{prefix: p, until: t}, nil
	}
	seen = map[netip.Prefix]bool{}
	for i, e := range doc.Exemptions {
		o, err := override(topology.ItemExemptions, i, e.Prefix, e.Until, seen)
		if err != nil {
			return nil, err
		}
		in.exemptions = append(in.exemptions, o)
	}
	seen = map[netip.Prefix]bool{}
	for i, q := range doc.Quarantines {
		o, err := override(topology.ItemQuarantines, i, q.Prefix, q.Until, seen)
		if err != nil {
			return nil, err
		}
		in.quarantines = append(in.quarantines, o)
	}
	return in, nil
}

// activeService is a service with an active phase at the bridge.
type activeService struct {
	name  string
	id    uint32
	phase topology.Phase
	used  bool // some dynamic pool points at it
}

// activeServices returns, in document order, the services with an active
// phase at pop and instant at, with their stable ids.
func activeServices(doc *topology.Document, pop string, at time.Time) []*activeService {
	names := make([]string, len(doc.Services))
	for i, s := range doc.Services {
		names[i] = s.Name
	}
	ids := stableIDs(names)
	var out []*activeService
	seen := map[string]bool{}
	for _, s := range doc.Services {
		if seen[s.Name] {
			continue // only in an unvalidated document
		}
		seen[s.Name] = true
		if ph, ok := doc.ActivePhase(s.Name, pop, at); ok {
			out = append(out, &activeService{name: s.Name, id: ids[s.Name], phase: ph})
		}
	}
	return out
}

// builder accumulates one bridge's flows.
type builder struct {
	opts      Options
	observing func(service string) bool // see compile
	flows     []Flow
	c         *Compiled
}

func (b *builder) add(role Role, prio uint16, m Match, a Actions) Flow {
	table := b.opts.table(role)
	f := Flow{Table: table, Priority: prio, Cookie: cookieFor(table, role, prio, m), Match: m, Actions: a}
	b.flows = append(b.flows, f)
	return f
}

func (b *builder) gotoRole(r Role) Actions { return Actions{Goto: true, GotoTable: b.opts.table(r)} }

// classifier: SMTP-bound TCP (v4 and v6) goes on to the source table,
// everything else continues untouched.
func (b *builder) classifier(ports []int) {
	for _, p := range ports {
		for _, eth := range []uint16{EthTypeIPv4, EthTypeIPv6} {
			b.add(RoleClassifier, prioPort, Match{EthType: eth, IPProto: IPProtoTCP, TCPDst: uint16(p)}, b.gotoRole(RoleSource))
		}
	}
	b.add(RoleClassifier, prioCatchAll, Match{}, b.opts.Continue)
}

// source: one flow per pool at priority base+prefix length; dynamic pools
// with an active phase also get their drop-count flow.
func (b *builder) source(pools []topology.Pool, prefixes []netip.Prefix, services []*activeService) {
	byName := make(map[string]*activeService, len(services))
	for _, s := range services {
		byName[s.name] = s
	}
	names := make([]string, len(pools))
	for i, p := range pools {
		names[i] = p.Name
	}
	poolIDs := stableIDs(names)
	for i, pool := range pools {
		prefix := prefixes[i]
		m := Match{EthType: ethTypeOf(prefix), Src: matchPrefix(prefix)}
		prio := prioPoolBase + uint16(prefix.Bits())
		svc := byName[pool.Service]
		if pool.Kind != topology.KindDynamic || svc == nil {
			b.add(RoleSource, prio, m, b.opts.Continue)
			continue
		}
		svc.used = true
		poolID := poolIDs[pool.Name]
		b.add(RoleSource, prio, m, Actions{
			WriteMetadata:     uint64(poolID)<<32 | uint64(svc.id),
			WriteMetadataMask: metadataAll,
			Goto:              true,
			GotoTable:         b.opts.table(RoleDestination),
		})
		observe := svc.phase.Observes()
		if b.observing != nil {
			observe = b.observing(svc.name)
		}
		b.dropCount(pool.Name, poolID, ethTypeOf(prefix), observe)
	}
	b.add(RoleSource, prioCatchAll, Match{}, b.opts.Continue)
}

// dropCount adds a dynamic pool's flows in the drop-count table: what
// reaches it is an SMTP-bound packet of that pool the policy blocks.
// Enforcing, one flow counts the packet in the offender table and drops it:
// every dropped packet is an attempt (in practice the SYN and its
// retransmissions: a blocked connection gets no further). Observing
// (observe = true), the packet is forwarded instead, and only a SYN
// without ACK — a connection attempt — is counted, by a flow above the
// pool's flow for the rest of the session (which matches the pool's
// family, TCP, as the SYN flow's tcp_flags require).
func (b *builder) dropCount(pool string, poolID uint32, eth uint16, observe bool) {
	count := Actions{Resubmit: true, ResubmitTable: b.opts.table(RoleOffender)}
	m := Match{Metadata: uint64(poolID) << 32, MetadataMask: metadataPool}
	if !observe {
		f := b.add(RoleDropCount, prioPoolDrop, m, count)
		b.c.DropPool[f.Key()] = pool
		return
	}
	rest := b.add(RoleDropCount, prioPoolDrop, m, b.opts.Continue)
	syn := m
	syn.EthType, syn.IPProto, syn.TCPFlags, syn.TCPFlagsMask = eth, IPProtoTCP, TCPFlagSYN, TCPFlagSYN|TCPFlagACK
	count.Output, count.Goto, count.GotoTable = b.opts.Continue.Output, b.opts.Continue.Goto, b.opts.Continue.GotoTable
	attempts := b.add(RoleDropCount, prioPoolSYN, syn, count)
	b.c.ObservePool[rest.Key()] = pool
	b.c.ObservePool[attempts.Key()] = pool
}

// overrides adds the source flows of the quarantines and exemptions in
// force at `at` (an entry whose until is not after at has lapsed and is
// left out), and each quarantine's drop flow. Quarantines skip the
// destination table: they drop toward every destination, relays included.
func (b *builder) overrides(doc *topology.Document, in *parsedDocument, at time.Time) {
	names := make([]string, len(doc.Quarantines))
	for i, q := range doc.Quarantines {
		names[i] = q.Name
	}
	ids := stableIDs(names)
	for i, q := range in.quarantines {
		if !at.Before(q.until) {
			continue
		}
		id := ids[doc.Quarantines[i].Name]
		meta := uint64(id) << 32 // service bits 0: see the metadata layout
		b.add(RoleSource, prioQuarantineBase+uint16(q.prefix.Bits()), Match{EthType: ethTypeOf(q.prefix), Src: matchPrefix(q.prefix)}, Actions{
			WriteMetadata:     meta,
			WriteMetadataMask: metadataAll,
			Goto:              true,
			GotoTable:         b.opts.table(RoleDropCount),
		})
		drop := b.add(RoleDropCount, prioQuarantineDrop, Match{Metadata: meta, MetadataMask: metadataAll}, Actions{})
		b.c.DropQuarantine[drop.Key()] = doc.Quarantines[i].Name
	}
	for _, e := range in.exemptions {
		if !at.Before(e.until) {
			continue
		}
		b.add(RoleSource, prioExemptionBase+uint16(e.prefix.Bits()), Match{EthType: ethTypeOf(e.prefix), Src: matchPrefix(e.prefix)}, b.opts.Continue)
	}
}

// offender adds the offender table: OffenderBuckets learn actions per
// address family, picked by the low bits of the TCP source port, each with
// its own learned cookie and an equal share of the limit (cookie.go says
// why). Learned flows are not part of the desired set;
// they carry LearnedCookie, which the controller never dumps, diffs or
// deletes.
func (b *builder) offender() {
	table := b.opts.table(RoleOffender)
	limit := (b.opts.offenderFlows() + OffenderBuckets - 1) / OffenderBuckets
	for _, eth := range []uint16{EthTypeIPv4, EthTypeIPv6} {
		for k := range uint16(OffenderBuckets) {
			m := Match{EthType: eth, IPProto: IPProtoTCP, TCPSrc: k, TCPSrcMask: OffenderBuckets - 1}
			b.add(RoleOffender, prioLearner, m, Actions{Learn: Learn{
				Table:       table,
				Priority:    prioLearned,
				IdleTimeout: uint16(b.opts.OffenderIdle() / time.Second),
				Limit:       limit,
				Cookie:      LearnedCookie | uint64(k),
				IPv6:        eth == EthTypeIPv6,
			}})
		}
	}
	// No catch-all: only TCP over IPv4 or IPv6 reaches this table (the
	// classifier sends nothing else on), every such packet meets one of the
	// buckets, and a table miss in OpenFlow 1.3 drops anyway. A catch-all
	// would be the one op25b flow here no narrowed flow monitor can see
	// (see the controller's offenderMonitorIDs).
}

// destinationSize is how many flows destination will add, plus the two
// catch-alls still to come. The destination table is the one product in the
// design (used services × (relays + blocked prefixes)); a valid document at
// topology's limits could ask for ~10^8 flows, so Compile counts before it
// allocates. It may overcount prefixes shared between blocked sets.
func (b *builder) destinationSize(services []*activeService, in *parsedDocument) int {
	n := 2
	for _, svc := range services {
		if !svc.used {
			continue
		}
		n++
		if svc.phase.PermitsRelays() {
			n += len(in.relays)
		}
		if !svc.phase.Block.All {
			for _, set := range svc.phase.Block.Sets {
				n += len(in.sets[set])
			}
		}
	}
	return n
}

// destination: per service some pool here uses, relays (when permitted)
// beat blocked destinations, which beat the service default.
func (b *builder) destination(services []*activeService, in *parsedDocument) {
	drop := b.gotoRole(RoleDropCount)
	for _, svc := range services {
		if !svc.used {
			continue
		}
		meta := Match{Metadata: uint64(svc.id), MetadataMask: metadataService}
		dstMatch := func(p netip.Prefix) Match {
			m := meta
			m.EthType, m.Dst = ethTypeOf(p), matchPrefix(p)
			return m
		}
		if svc.phase.PermitsRelays() {
			for _, p := range in.relays {
				b.add(RoleDestination, prioRelay, dstMatch(p), b.opts.Continue)
			}
		}
		def := drop
		if !svc.phase.Block.All {
			def = b.opts.Continue
			seen := map[netip.Prefix]bool{}
			for _, set := range svc.phase.Block.Sets {
				for _, p := range in.sets[set] {
					if !seen[p] {
						seen[p] = true
						b.add(RoleDestination, prioBlocked, dstMatch(p), drop)
					}
				}
			}
		}
		b.add(RoleDestination, prioServiceDefault, meta, def)
	}
	b.add(RoleDestination, prioCatchAll, Match{}, b.opts.Continue)
	b.add(RoleDropCount, prioCatchAll, Match{}, Actions{})
}
