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
// overlap because their eth_type differs. In the destination table relays
// beat blocked destinations, which beat the service default (contract §1
// steps 4 and 5 in that order).
const (
	prioCatchAll       uint16 = 0
	prioPort           uint16 = 100
	prioPoolBase       uint16 = 1000
	prioServiceDefault uint16 = 1000
	prioBlocked        uint16 = 2000
	prioRelay          uint16 = 3000
	prioPoolDrop       uint16 = 1000
)

// Metadata layout written by the source table: pool id in the high 32 bits
// (read by the drop-count table), service id in the low 32 bits (read by the
// destination table).
const (
	metadataAll     uint64 = 0xffffffffffffffff
	metadataService uint64 = 0x00000000ffffffff
	metadataPool    uint64 = 0xffffffff00000000
)

// MaxFlows bounds the flow set of one bridge. 100k pools compile to about
// 175k flows; beyond a million, OVS's classifier and a full reconcile become
// the bottleneck long before memory does.
const MaxFlows = 1_000_000

// ErrTooManyFlows is returned (wrapped) by Compile when a valid document
// would need more than MaxFlows flows on one bridge. The controller keeps
// the flows it has and reports the error.
var ErrTooManyFlows = errors.New("too many flows")

// Compiled is the desired flow set of one bridge plus what the controller and
// the API need to attribute drop counters to pools.
type Compiled struct {
	// Flows is sorted by table, priority descending, then match.
	Flows []Flow
	// DropPool maps each per-pool drop flow (drop-count table) to its pool.
	DropPool map[Key]string
}

// Compile returns the complete desired flow set for the bridge dpid at time
// at. The pipeline, in tables FirstTable+0..3:
//
//   - classifier: tcp/tcp6 to an SMTP port → source table; anything else →
//     Continue. Non-SMTP traffic is decided by one L4-port match, so the
//     datapath never needs to look at addresses for it.
//   - source: the longest pool prefix containing nw_src/ipv6_src. Static
//     pools, dynamic pools without an active phase here, and addresses in no
//     pool → Continue; a dynamic pool with an active phase writes its pool
//     and service ids into the metadata and goes to the destination table.
//   - destination, per active service (metadata service id): relays →
//     Continue when the phase permits them; blocked destination prefixes →
//     drop-count; otherwise the service default (drop-count for block "all",
//     Continue otherwise).
//   - drop-count: one drop flow per pool, so each pool's drops are counted
//     separately; catch-all drop.
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
func Compile(doc *topology.Document, dpid string, at time.Time, opts Options) (*Compiled, error) {
	if err := opts.Validate(); err != nil {
		return nil, fmt.Errorf("compile %s: %w", dpid, err)
	}
	if doc == nil {
		return nil, fmt.Errorf("compile %s: %w", dpid, errors.New("nil document"))
	}
	pop, _ := doc.BridgePop(dpid)
	var (
		classifier  = opts.table(RoleClassifier)
		source      = opts.table(RoleSource)
		destination = opts.table(RoleDestination)
		dropCount   = opts.table(RoleDropCount)
	)
	c := &Compiled{DropPool: make(map[Key]string)}
	flows := make([]Flow, 0, 2*len(doc.Pools)+8)
	add := func(table uint8, role Role, prio uint16, m Match, a Actions) Flow {
		f := Flow{Table: table, Priority: prio, Cookie: cookieFor(table, role, prio, m), Match: m, Actions: a}
		flows = append(flows, f)
		return f
	}
	gotoTable := func(t uint8) Actions { return Actions{Goto: true, GotoTable: t} }

	// Classifier.
	seenPort := map[int]bool{}
	for _, p := range doc.EffectivePorts() {
		if p < 1 || p > 65535 || seenPort[p] {
			return nil, fmt.Errorf("compile %s: port %d: document did not pass validation", dpid, p)
		}
		seenPort[p] = true
		for _, eth := range []uint16{EthTypeIPv4, EthTypeIPv6} {
			add(classifier, RoleClassifier, prioPort,
				Match{EthType: eth, IPProto: IPProtoTCP, TCPDst: uint16(p)}, gotoTable(source))
		}
	}
	add(classifier, RoleClassifier, prioCatchAll, Match{}, opts.Continue)

	// Services active at this bridge, with stable ids.
	type activeService struct {
		id    uint32
		phase topology.Phase
		used  bool
	}
	serviceNames := make([]string, len(doc.Services))
	for i, s := range doc.Services {
		serviceNames[i] = s.Name
	}
	serviceIDs := stableIDs(serviceNames)
	active := make(map[string]*activeService)
	for _, s := range doc.Services {
		if ph, ok := doc.ActivePhase(s.Name, pop, at); ok {
			active[s.Name] = &activeService{id: serviceIDs[s.Name], phase: ph}
		}
	}

	// Source.
	poolNames := make([]string, len(doc.Pools))
	for i, p := range doc.Pools {
		poolNames[i] = p.Name
	}
	poolIDs := stableIDs(poolNames)
	for i, pool := range doc.Pools {
		prefix, err := netip.ParsePrefix(pool.Prefix)
		if err != nil || prefix != prefix.Masked() {
			return nil, fmt.Errorf("compile %s: pools[%d].prefix %q: document did not pass validation", dpid, i, pool.Prefix)
		}
		m := Match{EthType: ethTypeOf(prefix), Src: matchPrefix(prefix)}
		prio := prioPoolBase + uint16(prefix.Bits())
		svc := active[pool.Service]
		if pool.Kind != topology.KindDynamic || svc == nil {
			add(source, RoleSource, prio, m, opts.Continue)
			continue
		}
		svc.used = true
		poolID := poolIDs[pool.Name]
		add(source, RoleSource, prio, m, Actions{
			WriteMetadata:     uint64(poolID)<<32 | uint64(svc.id),
			WriteMetadataMask: metadataAll,
			Goto:              true,
			GotoTable:         destination,
		})
		drop := add(dropCount, RoleDropCount, prioPoolDrop,
			Match{Metadata: uint64(poolID) << 32, MetadataMask: metadataPool}, Actions{})
		c.DropPool[drop.Key()] = pool.Name
	}
	add(source, RoleSource, prioCatchAll, Match{}, opts.Continue)

	// Destination, only for services some pool here actually uses.
	sets := make(map[string][]netip.Prefix, len(doc.Destinations))
	for i, d := range doc.Destinations {
		for j, s := range d.Prefixes {
			p, err := netip.ParsePrefix(s)
			if err != nil || p != p.Masked() {
				return nil, fmt.Errorf("compile %s: destinations[%d].prefixes[%d] %q: document did not pass validation", dpid, i, j, s)
			}
			sets[d.Name] = append(sets[d.Name], p)
		}
	}
	var relays []netip.Prefix
	for i, r := range doc.Relays {
		p, err := netip.ParsePrefix(r.Prefix)
		if err != nil || p != p.Masked() {
			return nil, fmt.Errorf("compile %s: relays[%d].prefix %q: document did not pass validation", dpid, i, r.Prefix)
		}
		relays = append(relays, p)
	}
	// The destination table is the one product in the design (used services
	// × (relays + blocked prefixes)); a valid document at topology's limits
	// could ask for ~10^8 flows. Count before allocating and refuse clearly.
	total := len(flows) + 2
	for _, name := range serviceNames {
		svc := active[name]
		if svc == nil || !svc.used {
			continue
		}
		total++
		if svc.phase.PermitsRelays() {
			total += len(relays)
		}
		if !svc.phase.Block.All {
			for _, set := range svc.phase.Block.Sets {
				total += len(sets[set])
			}
		}
		if total > MaxFlows {
			return nil, fmt.Errorf("compile %s: %w: this bridge would need more than %d flows, most of them in the destination table (used services × (relays + blocked destination prefixes)); share services between pools or shrink destination sets",
				dpid, ErrTooManyFlows, MaxFlows)
		}
	}
	emitted := map[string]bool{}
	for _, name := range serviceNames {
		svc := active[name]
		if svc == nil || !svc.used || emitted[name] {
			continue
		}
		emitted[name] = true // a duplicate service name must not emit twice
		meta := Match{Metadata: uint64(svc.id), MetadataMask: metadataService}
		dstMatch := func(p netip.Prefix) Match {
			m := meta
			m.EthType, m.Dst = ethTypeOf(p), matchPrefix(p)
			return m
		}
		if svc.phase.PermitsRelays() {
			seen := map[netip.Prefix]bool{}
			for _, p := range relays {
				if !seen[p] {
					seen[p] = true
					add(destination, RoleDestination, prioRelay, dstMatch(p), opts.Continue)
				}
			}
		}
		if !svc.phase.Block.All {
			seen := map[netip.Prefix]bool{}
			for _, set := range svc.phase.Block.Sets {
				for _, p := range sets[set] {
					if !seen[p] {
						seen[p] = true
						add(destination, RoleDestination, prioBlocked, dstMatch(p), gotoTable(dropCount))
					}
				}
			}
		}
		def := opts.Continue
		if svc.phase.Block.All {
			def = gotoTable(dropCount)
		}
		add(destination, RoleDestination, prioServiceDefault, meta, def)
	}
	add(destination, RoleDestination, prioCatchAll, Match{}, opts.Continue)
	add(dropCount, RoleDropCount, prioCatchAll, Match{}, Actions{})

	slices.SortFunc(flows, compareFlows)
	c.Flows = flows
	return c, nil
}
