package ofwire

import (
	"encoding/binary"
	"net/netip"

	of "github.com/netrack/openflow"
	"github.com/netrack/openflow/ofp"

	"github.com/op25b/op25b/flows"
)

// FlowMod is one FLOW_MOD op25b sends (§7.3.4.1). Match is a flows.Match
// or, for strict deletes of entries op25b cannot represent, RawMatch: the
// match bytes (with padding) copied from the dump entry.
type FlowMod struct {
	Command    ofp.FlowModCommand // op25b uses FlowAdd, FlowModifyStrict and FlowDeleteStrict
	Table      uint8
	Priority   uint16
	Cookie     uint64
	CookieMask uint64
	Match      flows.Match
	RawMatch   []byte
	Actions    flows.Actions // ignored for deletes
}

// AppendFlowMod appends a FLOW_MOD (§7.3.4.1). Buffer is OFP_NO_BUFFER and
// out_port/out_group are ANY: zero values there make OVS reject adds
// (buffer 0 is BUFFER_UNKNOWN) or make deletes match nothing (out_port 0),
// silently. Flags are 0: op25b never asks for FLOW_REMOVED.
func AppendFlowMod(b []byte, xid uint32, fm FlowMod) []byte {
	start := len(b)
	b = appendHeader(b, of.TypeFlowMod, xid)
	b = be64(b, fm.Cookie)
	b = be64(b, fm.CookieMask)
	b = append(b, fm.Table, uint8(fm.Command))
	b = be16(b, 0) // idle timeout
	b = be16(b, 0) // hard timeout
	b = be16(b, fm.Priority)
	b = be32(b, ofp.NoBuffer)
	b = be32(b, uint32(ofp.PortAny))
	b = be32(b, uint32(ofp.GroupAny))
	b = be16(b, 0) // flags
	b = pad(b, 2)
	if fm.RawMatch != nil {
		b = append(b, fm.RawMatch...)
	} else {
		b = appendMatch(b, fm.Match)
	}
	if fm.Command != ofp.FlowDelete && fm.Command != ofp.FlowDeleteStrict {
		b = appendInstructions(b, fm.Actions)
	}
	return finish(b, start)
}

// appendMatch appends an OXM match (§7.2.2). Fields go in prerequisite
// order (eth_type before ip_proto before tcp_dst) as OVS requires; the
// order of the rest is op25b's own and stable, so equal matches encode to
// equal bytes.
func appendMatch(b []byte, m flows.Match) []byte {
	start := len(b)
	b = be16(b, uint16(ofp.MatchTypeXM))
	b = be16(b, 0) // length, set below
	if m.MetadataMask != 0 {
		if m.MetadataMask == ^uint64(0) {
			b = appendOXMHeader(b, ofp.XMTypeMetadata, false, 8)
			b = be64(b, m.Metadata)
		} else {
			b = appendOXMHeader(b, ofp.XMTypeMetadata, true, 16)
			b = be64(b, m.Metadata&m.MetadataMask)
			b = be64(b, m.MetadataMask)
		}
	}
	if m.EthType != 0 {
		b = appendOXMHeader(b, ofp.XMTypeEthType, false, 2)
		b = be16(b, m.EthType)
	}
	if m.IPProto != 0 {
		b = appendOXMHeader(b, ofp.XMTypeIPProto, false, 1)
		b = append(b, m.IPProto)
	}
	b = appendPrefix(b, m.Src, ofp.XMTypeIPv4Src, ofp.XMTypeIPv6Src)
	b = appendPrefix(b, m.Dst, ofp.XMTypeIPv4Dst, ofp.XMTypeIPv6Dst)
	switch {
	case m.TCPSrcMask == 0xffff:
		b = appendOXMHeader(b, ofp.XMTypeTCPSrc, false, 2)
		b = be16(b, m.TCPSrc)
	case m.TCPSrcMask != 0:
		b = appendOXMHeader(b, ofp.XMTypeTCPSrc, true, 4)
		b = be16(b, m.TCPSrc&m.TCPSrcMask)
		b = be16(b, m.TCPSrcMask)
	}
	if m.TCPDst != 0 {
		b = appendOXMHeader(b, ofp.XMTypeTCPDst, false, 2)
		b = be16(b, m.TCPDst)
	}
	if m.TCPFlagsMask != 0 {
		b = appendTCPFlags(b, m.TCPFlags, m.TCPFlagsMask)
	}
	// The length excludes the padding (§7.2.2).
	binary.BigEndian.PutUint16(b[start+2:], uint16(len(b)-start))
	return pad8(b, start)
}

// appendOXMHeader appends an OFPXMC_OPENFLOW_BASIC field header (§7.2.3.2).
func appendOXMHeader(b []byte, field ofp.XMType, hasMask bool, length uint8) []byte {
	f := uint8(field) << 1
	if hasMask {
		f |= 1
	}
	b = be16(b, uint16(ofp.XMClassOpenflowBasic))
	return append(b, f, length)
}

// appendPrefix appends p as an IPv4 or IPv6 address field, masked unless it
// is a host prefix; a zero or /0 prefix is a wildcard and appends nothing.
// An IPv4-mapped IPv6 prefix goes out as IPv4 (see Canonical).
func appendPrefix(b []byte, p netip.Prefix, v4, v6 ofp.XMType) []byte {
	if !p.IsValid() || p.Bits() == 0 {
		return b
	}
	addr := p.Masked().Addr()
	field, size := v4, 4
	if addr.Is6() && !addr.Is4In6() {
		field, size = v6, 16
	}
	raw := addr.AsSlice()
	if p.Bits() == size*8 {
		b = appendOXMHeader(b, field, false, uint8(size))
		return append(b, raw...)
	}
	b = appendOXMHeader(b, field, true, uint8(2*size))
	b = append(b, raw...)
	return appendMask(b, p.Bits(), size)
}

// appendMask appends a CIDR mask of bits ones in size bytes.
func appendMask(b []byte, bits, size int) []byte {
	for i := 0; i < size; i++ {
		switch {
		case bits >= 8:
			b = append(b, 0xff)
			bits -= 8
		case bits > 0:
			b = append(b, byte(0xff<<(8-bits)))
			bits = 0
		default:
			b = append(b, 0)
		}
	}
	return b
}

// appendInstructions appends flows.Actions as instructions (§7.2.4), in
// the order the pipeline executes them: write_metadata, apply_actions
// (resubmit, learn, output, each at most once), goto_table. A drop has
// none.
func appendInstructions(b []byte, a flows.Actions) []byte {
	if a.WriteMetadataMask != 0 {
		b = be16(b, uint16(ofp.InstructionTypeWriteMetadata))
		b = be16(b, 24)
		b = pad(b, 4)
		b = be64(b, a.WriteMetadata&a.WriteMetadataMask)
		b = be64(b, a.WriteMetadataMask)
	}
	if a.Output != 0 || a.Resubmit || !a.Learn.IsZero() {
		start := len(b)
		b = be16(b, uint16(ofp.InstructionTypeApplyActions))
		b = be16(b, 0) // length, set below
		b = pad(b, 4)
		if a.Resubmit {
			b = appendResubmit(b, a.ResubmitTable)
		}
		if !a.Learn.IsZero() {
			b = appendLearn(b, a.Learn)
		}
		if a.Output != 0 {
			b = be16(b, uint16(ofp.ActionTypeOutput))
			b = be16(b, 16)
			b = be32(b, a.Output)
			// max_len matters only for output to CONTROLLER (§7.2.5), which
			// op25b never writes; ovs-ofctl writes 0 here, netrack and op25b
			// OFPCML_NO_BUFFER (testdata/ovs-ofctl/bundle-add-relay-normal.hex).
			b = be16(b, ofp.ContentLenNoBuffer)
			b = pad(b, 6)
		}
		binary.BigEndian.PutUint16(b[start+2:], uint16(len(b)-start))
	}
	if a.Goto {
		b = be16(b, uint16(ofp.InstructionTypeGotoTable))
		b = be16(b, 8)
		b = append(b, a.GotoTable)
		b = pad(b, 3)
	}
	return b
}
