package flows

import (
	"net/netip"
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

// Evaluate is the reference verdict of docs/semantics.md for a packet
// entering a bridge in pop at time at: Explain's verdict.
func Evaluate(doc *topology.Document, pop string, at time.Time, p Packet) Verdict {
	return Explain(doc, pop, at, p).Verdict
}
