package flows

import (
	"net/netip"
	"slices"
	"time"

	"github.com/op25b/op25b/topology"
)

// Packet is what op25b's policy looks at. Src and Dst must be of the same
// family; Proto is the IP protocol number (6 for TCP). TCPFlags (TCPFlagSYN
// ...) never change a verdict; they decide only whether an observing pool
// counts the packet as an attempt.
type Packet struct {
	Src, Dst netip.Addr
	Proto    uint8
	DstPort  uint16
	TCPFlags uint16
	// SrcPort never changes a verdict either: its low bits pick the
	// offender table's learn bucket.
	SrcPort uint16
}

// ethType is the packet's Ethernet type, and false for something that is not
// an IPv4 or IPv6 packet (invalid or mixed-family addresses). Such packets
// are not SMTP-bound and both Evaluate and Simulate forward them.
func (p Packet) ethType() (uint16, bool) {
	switch {
	case p.Src.Is4() && p.Dst.Is4():
		return EthTypeIPv4, true
	case p.Src.Is6() && p.Dst.Is6():
		return EthTypeIPv6, true
	}
	return 0, false
}

// Verdict is the fate of a packet under op25b's policy.
type Verdict uint8

// Verdicts. The zero value is neither, so a forgotten assignment shows up.
const (
	Forward Verdict = iota + 1
	Drop
)

func (v Verdict) String() string {
	switch v {
	case Forward:
		return "forward"
	case Drop:
		return "drop"
	}
	return "unknown"
}

// Evaluate is the reference reading of docs/semantics.md for a packet entering a
// bridge in pop at time at. It is deliberately plain (loops over the
// document, no tries, no knowledge of Compile's tables) so that the property
// tests compare two independent implementations.
func Evaluate(doc *topology.Document, pop string, at time.Time, p Packet) Verdict {
	if doc == nil {
		return Forward
	}
	if _, ok := p.ethType(); !ok || p.Proto != IPProtoTCP {
		return Forward
	}
	if !slices.Contains(doc.EffectivePorts(), int(p.DstPort)) {
		return Forward // not SMTP-bound
	}
	// 1. The most specific pool containing the source.
	var (
		pool topology.Pool
		bits = -1
	)
	for _, candidate := range doc.Pools {
		prefix, err := netip.ParsePrefix(candidate.Prefix)
		if err != nil || !prefix.Contains(p.Src) {
			continue
		}
		if prefix.Bits() > bits {
			pool, bits = candidate, prefix.Bits()
		}
	}
	if bits < 0 {
		return Forward // not a subscriber address
	}
	// 2. Static pools are never blocked.
	if pool.Kind != topology.KindDynamic {
		return Forward
	}
	// 3. The service's active phase at this bridge.
	phase, ok := doc.ActivePhase(pool.Service, pop, at)
	if !ok {
		return Forward // not yet rolled out here
	}
	// 4. The ISP's own relays.
	if phase.PermitsRelays() {
		for _, r := range doc.Relays {
			if prefix, err := netip.ParsePrefix(r.Prefix); err == nil && prefix.Contains(p.Dst) {
				return Forward
			}
		}
	}
	// 5. Block all, or the named destination sets.
	if phase.Block.All {
		return Drop
	}
	for _, name := range phase.Block.Sets {
		for _, d := range doc.Destinations {
			if d.Name != name {
				continue
			}
			for _, s := range d.Prefixes {
				if prefix, err := netip.ParsePrefix(s); err == nil && prefix.Contains(p.Dst) {
					return Drop
				}
			}
		}
	}
	return Forward
}
