package ofwire

import (
	"bytes"
	"encoding/binary"

	"github.com/netrack/openflow/ofp"

	"github.com/op25b/op25b/flows"
)

// Open vSwitch extensions op25b writes for its offender table: two Nicira
// actions (resubmit to a table, learn) and the ONF experimenter match field
// tcp_flags. Layouts as Open vSwitch defines them (include/openflow/
// nicira-ext.h, lib/ofp-actions.c: struct nx_action_resubmit,
// nx_action_learn2, the flow_mod_spec encoding; ONF EXT-56 for tcp_flags)
// and as ovs-ofctl writes them: testdata/ovs-ofctl/bundle-add-*-resubmit,
// *-learn-*, *-tcp-flags are byte-identical captures.

const (
	// niciraVendorID is NX_VENDOR_ID, the experimenter id of Nicira
	// actions (OFPAT_EXPERIMENTER, type 0xffff).
	niciraVendorID uint32 = 0x00002320
	// nxastResubmitTable is NXAST_RESUBMIT_TABLE: resubmit(PORT,TABLE).
	nxastResubmitTable uint16 = 14
	// nxastLearn2 is NXAST_LEARN2: learn with a limit (OVS 2.8+). OVS
	// writes the older NXAST_LEARN (16) when the limit is 0; op25b always
	// sets one.
	nxastLearn2 uint16 = 45
	// nxResubmitInPort is OFPP_IN_PORT in the 16-bit port numbers Nicira
	// actions use: "keep the packet's in_port".
	nxResubmitInPort uint16 = 0xfff8

	// onfTCPFlags is ONFOXM_ET_TCP_FLAGS, the field number of tcp_flags
	// under the ONF experimenter OXM class in OpenFlow 1.3.
	onfTCPFlags = 42
	// oxmClassExperimenter is OFPXMC_EXPERIMENTER.
	oxmClassExperimenter uint16 = 0xffff
	// tcpFlagsAll is the mask of every TCP flag bit OVS matches.
	tcpFlagsAll uint16 = 0x0fff
)

// learnLen is the length of op25b's learn action: nx_action_learn2 (40
// bytes), five flow_mod_specs (62 bytes), padded to 8.
const learnLen = 104

// learnSpecs are op25b's five flow_mod_specs (lib/ofp-actions.c,
// "flow_mod_spec"): each a 16-bit header (n_bits | dst_type | src_type),
// then the source (an immediate value padded to 16 bits, or an NXM/OXM
// header and bit offset), then the destination field and offset.
// dst_type 0 is "match"; src_type 0x2000 is "immediate".
//
//	eth_type=0x800 (0x86dd)          immediate → NXM_OF_ETH_TYPE
//	nw_proto=6                       immediate → NXM_OF_IP_PROTO
//	OXM_OF_METADATA[32..63]          field     → same field, same bits
//	NXM_OF_IP_SRC[] (NXM_NX_IPV6_SRC[])
//	NXM_OF_IP_DST[] (NXM_NX_IPV6_DST[])
func learnSpecs(ipv6 bool) []byte {
	var b []byte
	eth, src, dst, bits := uint16(flows.EthTypeIPv4), uint32(0x00000e04), uint32(0x00001004), uint16(32)
	if ipv6 {
		eth, src, dst, bits = flows.EthTypeIPv6, 0x00012610, 0x00012810, 128
	}
	immediate := func(nbits, value uint16, field uint32) {
		b = be16(b, 0x2000|nbits)
		b = be16(b, value)
		b = be32(b, field)
		b = be16(b, 0)
	}
	copyField := func(nbits uint16, field uint32, ofs uint16) {
		b = be16(b, nbits)
		b = be32(b, field)
		b = be16(b, ofs)
		b = be32(b, field)
		b = be16(b, ofs)
	}
	immediate(16, eth, 0x00000602)
	immediate(8, uint16(flows.IPProtoTCP), 0x00000c01)
	copyField(32, 0x80000408, 32)
	copyField(bits, src, 0)
	copyField(bits, dst, 0)
	return b
}

var (
	learnSpecsV4 = learnSpecs(false)
	learnSpecsV6 = learnSpecs(true)
)

// appendResubmit appends NXAST_RESUBMIT_TABLE: resubmit(,table).
func appendResubmit(b []byte, table uint8) []byte {
	b = be16(b, uint16(ofp.ActionTypeExperimenter))
	b = be16(b, 16)
	b = be32(b, niciraVendorID)
	b = be16(b, nxastResubmitTable)
	b = be16(b, nxResubmitInPort)
	b = append(b, table)
	return pad(b, 3)
}

// appendLearn appends op25b's learn action as NXAST_LEARN2.
func appendLearn(b []byte, l flows.Learn) []byte {
	start := len(b)
	b = be16(b, uint16(ofp.ActionTypeExperimenter))
	b = be16(b, learnLen)
	b = be32(b, niciraVendorID)
	b = be16(b, nxastLearn2)
	b = be16(b, l.IdleTimeout)
	b = be16(b, 0) // hard timeout
	b = be16(b, l.Priority)
	b = be64(b, l.Cookie)
	b = be16(b, 0) // flags: no send_flow_rem, no delete_learned
	b = append(b, l.Table, 0)
	b = be16(b, 0) // fin idle timeout
	b = be16(b, 0) // fin hard timeout
	b = be32(b, l.Limit)
	b = be16(b, 0) // result_dst_ofs: no result_dst
	b = be16(b, 0)
	if l.IPv6 {
		b = append(b, learnSpecsV6...)
	} else {
		b = append(b, learnSpecsV4...)
	}
	return pad(b, learnLen-(len(b)-start))
}

// decodeNicira decodes one experimenter action and reports a non-empty
// reason for anything but resubmit(,T) and op25b's exact learn shape.
func decodeNicira(act []byte, a *flows.Actions) string {
	if len(act) < 10 || binary.BigEndian.Uint32(act[4:]) != niciraVendorID {
		return "experimenter action of another vendor"
	}
	switch sub := binary.BigEndian.Uint16(act[8:]); {
	case sub == nxastResubmitTable && len(act) == 16:
		if a.Resubmit || !a.Learn.IsZero() || a.Output != 0 {
			return "resubmit out of op25b's order"
		}
		if binary.BigEndian.Uint16(act[10:]) != nxResubmitInPort || act[12] == 0xff || !bytes.Equal(act[13:16], []byte{0, 0, 0}) {
			return "resubmit with an in_port or to every table"
		}
		a.Resubmit, a.ResubmitTable = true, act[12]
		return ""
	case sub == nxastLearn2 && len(act) == learnLen:
		if !a.Learn.IsZero() || a.Output != 0 {
			return "learn out of op25b's order"
		}
		l := flows.Learn{
			IdleTimeout: binary.BigEndian.Uint16(act[10:]),
			Priority:    binary.BigEndian.Uint16(act[14:]),
			Cookie:      binary.BigEndian.Uint64(act[16:]),
			Table:       act[26],
			Limit:       binary.BigEndian.Uint32(act[32:]),
		}
		hard, flags, finIdle, finHard := binary.BigEndian.Uint16(act[12:]), binary.BigEndian.Uint16(act[24:]), binary.BigEndian.Uint16(act[28:]), binary.BigEndian.Uint16(act[30:])
		if hard != 0 || flags != 0 || act[27] != 0 || finIdle != 0 || finHard != 0 || binary.BigEndian.Uint32(act[36:]) != 0 || l.Table == 0xff {
			return "learn with options op25b never sets"
		}
		specs, padding := act[40:40+len(learnSpecsV4)], act[40+len(learnSpecsV4):]
		switch {
		case bytes.Equal(specs, learnSpecsV4):
		case bytes.Equal(specs, learnSpecsV6):
			l.IPv6 = true
		default:
			return "learn of another shape"
		}
		if !bytes.Equal(padding, make([]byte, len(padding))) || l.IsZero() {
			return "learn of another shape"
		}
		a.Learn = l
		return ""
	}
	return "nicira action of another kind"
}

// appendTCPFlags appends tcp_flags as the ONF experimenter OXM field of
// OpenFlow 1.3 (class OFPXMC_EXPERIMENTER, field 42, experimenter ONF),
// masked unless the mask covers every flag.
func appendTCPFlags(b []byte, flags, mask uint16) []byte {
	b = be16(b, oxmClassExperimenter)
	if mask == tcpFlagsAll {
		b = append(b, onfTCPFlags<<1, 6)
		b = be32(b, ONFExperimenterID)
		return be16(b, flags)
	}
	b = append(b, onfTCPFlags<<1|1, 8)
	b = be32(b, ONFExperimenterID)
	b = be16(b, flags&mask)
	return be16(b, mask)
}

// decodeExperimenterField decodes the body v (from the experimenter id on)
// of an OFPXMC_EXPERIMENTER field into m and reports whether it is op25b's:
// only ONF's tcp_flags is, once per match.
func decodeExperimenterField(field uint8, hasMask bool, v []byte, m *flows.Match) bool {
	if field != onfTCPFlags || len(v) < 4 || binary.BigEndian.Uint32(v) != ONFExperimenterID || m.TCPFlagsMask != 0 {
		return false
	}
	v = v[4:]
	switch {
	case !hasMask && len(v) == 2:
		m.TCPFlags, m.TCPFlagsMask = binary.BigEndian.Uint16(v), tcpFlagsAll
	case hasMask && len(v) == 4:
		m.TCPFlags, m.TCPFlagsMask = binary.BigEndian.Uint16(v), binary.BigEndian.Uint16(v[2:])
	default:
		return false
	}
	// A value bit outside the mask is invalid (§7.2.3.5), as with metadata.
	return m.TCPFlagsMask != 0 && m.TCPFlags&^m.TCPFlagsMask == 0 && m.TCPFlagsMask&^tcpFlagsAll == 0
}
