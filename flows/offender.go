package flows

import (
	"net/netip"

	"github.com/op25b/op25b/topology"
)

// LearnedFlow is what a flow learned in the offender table says: it counts
// the attempts of Src towards Dst, a source in the pool with id PoolID.
type LearnedFlow struct {
	PoolID   uint32
	Src, Dst netip.Addr
}

// ParseLearned reads a flow dumped from the offender table. It reports
// false for anything that is not a flow op25b's learn action adds
// (another cookie, or a match of another shape).
func ParseLearned(f Flow) (LearnedFlow, bool) {
	m := f.Match
	host := func(p netip.Prefix) bool { return p.IsValid() && p.Bits() == p.Addr().BitLen() }
	if !Learned(f.Cookie) || m.MetadataMask != metadataPool || m.IPProto != IPProtoTCP ||
		!host(m.Src) || !host(m.Dst) || m.Src.Addr().Is4() != m.Dst.Addr().Is4() ||
		m.TCPDst != 0 || m.TCPFlagsMask != 0 {
		return LearnedFlow{}, false
	}
	if (m.EthType == EthTypeIPv4) != m.Src.Addr().Is4() || (m.EthType != EthTypeIPv4 && m.EthType != EthTypeIPv6) {
		return LearnedFlow{}, false
	}
	return LearnedFlow{PoolID: uint32(m.Metadata >> 32), Src: m.Src.Addr(), Dst: m.Dst.Addr()}, true
}

// OffenderPools returns, for a compiled flow set, the id of every pool
// whose packets the drop-count table counts in the offender table, and
// whether that pool only observes (its flows forward what the policy would
// drop) rather than enforces. The collector reads a learned flow's mode
// here, from the flows desired at the time it reads the counters.
func OffenderPools(fs []Flow) map[uint32]bool {
	out := map[uint32]bool{}
	for _, f := range fs {
		if !Owned(f.Cookie) || CookieRole(f.Cookie) != RoleDropCount || !f.Actions.Resubmit ||
			f.Match.MetadataMask != metadataPool {
			continue
		}
		out[uint32(f.Match.Metadata>>32)] = !f.Actions.IsDrop()
	}
	return out
}

// OffenderTableOf returns the offender table of a compiled flow set (where
// its drop-count flows resubmit), or false when the set has none.
func OffenderTableOf(fs []Flow) (uint8, bool) {
	for _, f := range fs {
		if !f.Actions.Learn.IsZero() && Owned(f.Cookie) {
			return f.Actions.Learn.Table, true
		}
	}
	return 0, false
}

// PoolNames maps every pool id Compile gives doc's pools back to the
// pool's name, to attribute learned flows (LearnedFlow.PoolID).
func PoolNames(doc *topology.Document) map[uint32]string {
	if doc == nil {
		return map[uint32]string{}
	}
	names := make([]string, len(doc.Pools))
	for i, p := range doc.Pools {
		names[i] = p.Name
	}
	out := make(map[uint32]string, len(names))
	for name, id := range stableIDs(names) {
		out[id] = name
	}
	return out
}
