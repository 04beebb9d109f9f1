// Package flows turns policy into OpenFlow 1.3 flows and computes the changes
// that move a switch from what it has to what it should have.
//
// It is the pure core of op25b (policy → flows → switch → status): no I/O, no
// clock, no goroutines. Compile takes a validated topology.Document, a bridge
// and a time and returns the complete desired flow set; Diff takes desired and
// installed flows and returns an ordered, make-before-break list of changes.
// The controller package does the I/O.
package flows

import "net/netip"

// Ethernet types matched by op25b.
const (
	EthTypeIPv4 uint16 = 0x0800
	EthTypeIPv6 uint16 = 0x86dd
	IPProtoTCP  uint8  = 6
)

// PortNormal is OFPP_NORMAL (OpenFlow 1.3 §7.2.1): hand the packet to the
// switch's ordinary L2/L3 processing.
const PortNormal uint32 = 0xfffffffa

// Match is the subset of OXM fields op25b uses. Zero values mean "wildcard":
// EthType 0, IPProto 0, TCPDst 0, an invalid (zero) netip.Prefix, and
// MetadataMask 0, TCPFlagsMask 0. The struct is comparable so (Table,
// Priority, Match) can be a map key.
type Match struct {
	EthType      uint16
	IPProto      uint8
	TCPDst       uint16
	Src          netip.Prefix
	Dst          netip.Prefix
	Metadata     uint64
	MetadataMask uint64
	// TCPFlags under TCPFlagsMask (the low 12 bits of the TCP header's
	// flags; OpenFlow 1.3 matches them through the ONF experimenter field
	// that OVS prints as tcp_flags=+syn-ack). Needs IPProto TCP.
	TCPFlags     uint16
	TCPFlagsMask uint16
	// TCPSrc under TCPSrcMask, the TCP source port (TCPSrcMask 0:
	// wildcard). op25b matches its low bits only, to spread the offender
	// table's learn actions over buckets.
	TCPSrc     uint16
	TCPSrcMask uint16
}

// TCP flag bits, as in the TCP header and OVS's tcp_flags field.
const (
	TCPFlagFIN uint16 = 0x001
	TCPFlagSYN uint16 = 0x002
	TCPFlagRST uint16 = 0x004
	TCPFlagPSH uint16 = 0x008
	TCPFlagACK uint16 = 0x010
)

// Actions is the instruction set of a flow. The zero value is "drop"
// (OpenFlow 1.3: a flow with no instructions drops).
type Actions struct {
	// WriteMetadataMask 0 means no write-metadata instruction.
	WriteMetadata     uint64
	WriteMetadataMask uint64
	// Output 0 means no apply-actions output; PortNormal is the usual value.
	Output uint32
	// Goto reports whether a goto-table instruction to GotoTable is present.
	Goto      bool
	GotoTable uint8
	// Resubmit, when set, first looks the packet up in ResubmitTable and
	// runs that flow's actions, then goes on with these (Open vSwitch's
	// resubmit(,T)). op25b resubmits only to its offender table, which
	// counts and never forwards, so it never changes a verdict.
	Resubmit      bool
	ResubmitTable uint8
	// Learn, unless zero, adds or refreshes a counting flow for the
	// packet's (pool, source, destination) in the offender table (Open
	// vSwitch's learn action; see Learn).
	Learn Learn
}

// Learn is the one shape of Open vSwitch's learn action op25b writes: for a
// TCP packet (IPv4, or IPv6 when IPv6 is set) it adds to Table, unless
// there is one already, a flow at Priority with cookie Cookie and idle
// timeout IdleTimeout that matches the packet's pool id (metadata bits
// 32..63), source and destination address and has no actions: a counter,
// one per (pool, source, destination). Limit bounds how many flows with
// that cookie the table may hold (0: no bound; op25b always sets one). The
// zero value means no learn action.
type Learn struct {
	Table       uint8
	Priority    uint16
	IdleTimeout uint16 // seconds
	Limit       uint32
	Cookie      uint64
	IPv6        bool
}

// IsZero reports the absence of a learn action.
func (l Learn) IsZero() bool { return l == Learn{} }

// IsDrop reports whether the flow ends processing of the packet without
// forwarding it (a resubmit to the offender table and a learn only count).
func (a Actions) IsDrop() bool { return a.Output == 0 && !a.Goto }

// Flow is one OpenFlow 1.3 flow entry. Cookie is a pure function of
// (Table, Priority, Match) in everything Compile produces, because an
// OpenFlow 1.3 MODIFY cannot change a flow's cookie.
type Flow struct {
	Table    uint8
	Priority uint16
	Cookie   uint64
	Match    Match
	Actions  Actions
}

// Key identifies a flow on a switch: OpenFlow's strict identity is (table,
// priority, match).
type Key struct {
	Table    uint8
	Priority uint16
	Match    Match
}

// Key returns the flow's identity.
func (f Flow) Key() Key { return Key{Table: f.Table, Priority: f.Priority, Match: f.Match} }

// Op is the kind of a Change.
type Op uint8

// Change operations. Deletes are always strict (OFPFC_DELETE_STRICT).
const (
	OpAdd Op = iota + 1
	OpModify
	OpDelete
)

func (o Op) String() string {
	switch o {
	case OpAdd:
		return "add"
	case OpModify:
		return "modify"
	case OpDelete:
		return "delete"
	}
	return "unknown"
}

// Change is one flow-mod to send. For OpModify, Flow carries the new actions
// (and the cookie the flow must end up with).
type Change struct {
	Op   Op
	Flow Flow
}
