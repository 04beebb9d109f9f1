package flows

import (
	"cmp"
	"encoding/binary"
	"net/netip"
)

// prefixWords is a prefix as plain integers, for hashing and ordering
// without allocating. An invalid (wildcard) prefix is all zeros with bits
// 0xff, distinct from ::/0 and 0.0.0.0/0 which Compile never emits (it turns
// /0 into a wildcard, as OVS does when it stores such a match).
type prefixWords struct {
	hi, lo uint64
	bits   uint8
	is4    bool
}

func wordsOf(p netip.Prefix) prefixWords {
	if !p.IsValid() {
		return prefixWords{bits: 0xff}
	}
	a := p.Addr().As16()
	return prefixWords{
		hi:   binary.BigEndian.Uint64(a[:8]),
		lo:   binary.BigEndian.Uint64(a[8:]),
		bits: uint8(p.Bits()),
		is4:  p.Addr().Is4(),
	}
}

// comparePrefix orders wildcard first, then IPv4 before IPv6, then by
// address and length.
func comparePrefix(a, b netip.Prefix) int {
	if c := a.Addr().Compare(b.Addr()); c != 0 {
		return c // the zero Addr of a wildcard sorts before every address
	}
	return cmp.Compare(a.Bits(), b.Bits())
}

// compareMatch orders matches deterministically: by the fields in the order
// Render prints them, so sorted output reads naturally.
func compareMatch(a, b Match) int {
	if c := cmp.Compare(a.Metadata, b.Metadata); c != 0 {
		return c
	}
	if c := cmp.Compare(a.MetadataMask, b.MetadataMask); c != 0 {
		return c
	}
	if c := cmp.Compare(a.EthType, b.EthType); c != 0 {
		return c
	}
	if c := cmp.Compare(a.IPProto, b.IPProto); c != 0 {
		return c
	}
	if c := comparePrefix(a.Src, b.Src); c != 0 {
		return c
	}
	if c := comparePrefix(a.Dst, b.Dst); c != 0 {
		return c
	}
	if c := cmp.Compare(a.TCPDst, b.TCPDst); c != 0 {
		return c
	}
	if c := cmp.Compare(a.TCPFlags, b.TCPFlags); c != 0 {
		return c
	}
	if c := cmp.Compare(a.TCPFlagsMask, b.TCPFlagsMask); c != 0 {
		return c
	}
	if c := cmp.Compare(a.TCPSrc, b.TCPSrc); c != 0 {
		return c
	}
	return cmp.Compare(a.TCPSrcMask, b.TCPSrcMask)
}

// compareFlows is Compiled.Flows' order: table ascending, priority
// descending (the order OpenFlow evaluates them), then match.
func compareFlows(a, b Flow) int {
	if c := cmp.Compare(a.Table, b.Table); c != 0 {
		return c
	}
	if c := cmp.Compare(b.Priority, a.Priority); c != 0 {
		return c
	}
	return compareMatch(a.Match, b.Match)
}

// matchPrefix turns a policy prefix into a match field. A /0 becomes a
// wildcard because OVS stores nw_src=0.0.0.0/0 as "no nw_src": keeping it
// would make the installed flow's identity differ from the desired one
// forever.
func matchPrefix(p netip.Prefix) netip.Prefix {
	if p.Bits() == 0 {
		return netip.Prefix{}
	}
	return p
}

// ethTypeOf is the Ethernet type of packets whose addresses a prefix can
// contain.
func ethTypeOf(p netip.Prefix) uint16 {
	if p.Addr().Is4() {
		return EthTypeIPv4
	}
	return EthTypeIPv6
}
