package ofwire

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"time"

	of "github.com/netrack/openflow"
	"github.com/netrack/openflow/ofp"

	"github.com/op25b/op25b/flows"
)

// flowStatsFixedLen is the length of ofp_flow_stats up to its match (§7.3.5.2).
const flowStatsFixedLen = 48

// AppendFlowStatsRequest appends a MULTIPART_REQUEST for OFPMP_FLOW
// (§7.3.5.2) that selects flows by cookie/mask in every table, with any
// out_port/out_group and an empty (all-wildcard) match.
func AppendFlowStatsRequest(b []byte, xid uint32, cookie, cookieMask uint64) []byte {
	return AppendTableFlowStatsRequest(b, xid, uint8(ofp.TableAll), cookie, cookieMask)
}

// AppendTableFlowStatsRequest is AppendFlowStatsRequest for one table
// (OFPTT_ALL, 0xff, for every table): the drop-count and offender tables'
// counters are read with it.
func AppendTableFlowStatsRequest(b []byte, xid uint32, table uint8, cookie, cookieMask uint64) []byte {
	start := len(b)
	b = appendMultipartRequestHeader(b, xid, ofp.MultipartTypeFlow)
	b = append(b, table)
	b = pad(b, 3)
	b = be32(b, uint32(ofp.PortAny))
	b = be32(b, uint32(ofp.GroupAny))
	b = pad(b, 4)
	b = be64(b, cookie)
	b = be64(b, cookieMask)
	b = appendMatch(b, flows.Match{})
	return finish(b, start)
}

// appendMultipartRequestHeader appends the header and ofp_multipart_request
// fields (§7.3.5) of a single-part request; the caller appends the body and
// calls finish.
func appendMultipartRequestHeader(b []byte, xid uint32, typ ofp.MultipartType) []byte {
	b = appendHeader(b, of.TypeMultipartRequest, xid)
	b = be16(b, uint16(typ))
	b = be16(b, 0) // flags: no OFPMPF_REQ_MORE, op25b's requests fit one part
	return pad(b, 4)
}

// MultipartReply is one part of a MULTIPART_REPLY (§7.3.5). A reply to one
// request may come in many parts with the request's xid; all but the last
// have More set. Reassembly (collecting parts by xid) is the caller's, and
// does not depend on the type: Body of each part is decoded by the
// type's decoder (DecodeFlowStats for OFPMP_FLOW). For OFPMP_EXPERIMENTER
// (0xffff) Body starts with the experimenter id and exp_type.
type MultipartReply struct {
	Type  ofp.MultipartType
	Flags ofp.MultipartReplyFlag
	Body  []byte
}

// More reports OFPMPF_REPLY_MORE: further parts follow.
func (m MultipartReply) More() bool { return m.Flags&ofp.MultipartReplyMode != 0 }

// ParseMultipartReply decodes the body of a MULTIPART_REPLY message.
func ParseMultipartReply(body []byte) (MultipartReply, error) {
	if len(body) < 8 {
		return MultipartReply{}, fmt.Errorf("multipart reply: %w", ErrShortMessage)
	}
	return MultipartReply{
		Type:  ofp.MultipartType(binary.BigEndian.Uint16(body)),
		Flags: ofp.MultipartReplyFlag(binary.BigEndian.Uint16(body[2:])),
		Body:  body[8:],
	}, nil
}

// FlowStatsEntry is one decoded ofp_flow_stats entry. When Foreign is set
// the entry uses fields, instructions or actions op25b never writes; Flow
// then holds only Table, Priority and Cookie, and RawMatch (when the match
// header was readable) lets a strict delete address exactly that entry.
type FlowStatsEntry struct {
	Flow            flows.Flow
	Foreign         bool
	ForeignReason   string
	RawMatch        []byte
	Packets, Bytes  uint64
	DurationSeconds uint32
	// DurationNanoseconds is the part of the flow's age beyond
	// DurationSeconds (duration_nsec).
	DurationNanoseconds uint32
}

// Age is how long the flow has been installed.
func (e FlowStatsEntry) Age() time.Duration {
	return time.Duration(e.DurationSeconds)*time.Second + time.Duration(e.DurationNanoseconds)
}

// DecodeFlowStats decodes the concatenated ofp_flow_stats entries in the
// Body of an OFPMP_FLOW reply part and appends them to out, entry by entry
// using each entry's length field (§7.3.5.2). An entry op25b cannot
// represent is reported as Foreign instead of aborting the dump (a switch
// may carry other controllers' flows with Nicira actions or experimenter
// OXM fields); only a length that breaks the framing is an error.
//
// Decoded flows are in Canonical form. RawMatch slices alias body.
func DecodeFlowStats(body []byte, out []FlowStatsEntry) ([]FlowStatsEntry, error) {
	for len(body) > 0 {
		if len(body) < flowStatsFixedLen+8 {
			return out, fmt.Errorf("flow stats entry: %w (%d bytes left)", ErrShortMessage, len(body))
		}
		l := int(binary.BigEndian.Uint16(body))
		if l < flowStatsFixedLen+8 || l > len(body) {
			return out, fmt.Errorf("flow stats entry length %d with %d bytes left: %w", l, len(body), ErrShortMessage)
		}
		out = append(out, decodeFlowStatsEntry(body[:l]))
		body = body[l:]
	}
	return out, nil
}

func decodeFlowStatsEntry(e []byte) FlowStatsEntry {
	var ie FlowStatsEntry
	ie.Flow.Table = e[2]
	ie.DurationSeconds = binary.BigEndian.Uint32(e[4:])
	ie.DurationNanoseconds = binary.BigEndian.Uint32(e[8:])
	ie.Flow.Priority = binary.BigEndian.Uint16(e[12:])
	ie.Flow.Cookie = binary.BigEndian.Uint64(e[24:])
	ie.Packets = binary.BigEndian.Uint64(e[32:])
	ie.Bytes = binary.BigEndian.Uint64(e[40:])
	rest := e[flowStatsFixedLen:]
	mlen := int(binary.BigEndian.Uint16(rest[2:]))
	padded := (mlen + 7) / 8 * 8
	if ofp.MatchType(binary.BigEndian.Uint16(rest)) != ofp.MatchTypeXM || mlen < 4 || padded > len(rest) {
		ie.Foreign, ie.ForeignReason = true, "bad match header"
		// Without a parseable match the entry cannot even be addressed.
		return ie
	}
	// A sub-slice, not a copy: the reply buffer lives as long as the plan.
	ie.RawMatch = rest[:padded:padded]
	m, reason := decodeMatch(rest[4:mlen])
	a, areason := decodeInstructions(rest[padded:])
	if reason == "" {
		reason = areason
	}
	if reason != "" {
		ie.Foreign, ie.ForeignReason = true, reason
		return ie
	}
	ie.Flow.Match, ie.Flow.Actions = m, a
	return ie
}

// decodeMatch returns a non-empty reason when the match uses anything op25b
// does not write (another OXM class, another field, a mask it never uses).
// The class is checked before the field: an experimenter or Nicira field
// can carry a field number that is also a basic one.
func decodeMatch(b []byte) (flows.Match, string) {
	var m flows.Match
	for len(b) > 0 {
		if len(b) < 4 {
			return m, "truncated oxm"
		}
		class := ofp.XMClass(binary.BigEndian.Uint16(b))
		field, hasMask := ofp.XMType(b[2]>>1), b[2]&1 == 1
		l := int(b[3])
		if 4+l > len(b) {
			return m, "truncated oxm"
		}
		v := b[4 : 4+l]
		b = b[4+l:]
		if uint16(class) == oxmClassExperimenter {
			if !decodeExperimenterField(uint8(field), hasMask, v, &m) {
				return m, fmt.Sprintf("experimenter oxm field %d len %d", uint8(field), l)
			}
			continue
		}
		if class != ofp.XMClassOpenflowBasic {
			return m, fmt.Sprintf("oxm class %#x", uint16(class))
		}
		size := l
		if hasMask {
			size = l / 2
		}
		var ok bool
		switch field {
		case ofp.XMTypeMetadata:
			if ok = size == 8; ok {
				m.Metadata, m.MetadataMask = binary.BigEndian.Uint64(v), ^uint64(0)
				if hasMask {
					m.MetadataMask = binary.BigEndian.Uint64(v[8:])
				}
				// A value bit outside the mask is invalid (§7.2.3.5,
				// BAD_WILDCARDS), as host bits of a prefix are below.
				ok = m.Metadata&^m.MetadataMask == 0
			}
		case ofp.XMTypeEthType:
			if ok = l == 2 && !hasMask; ok {
				m.EthType = binary.BigEndian.Uint16(v)
			}
		case ofp.XMTypeIPProto:
			if ok = l == 1 && !hasMask; ok {
				m.IPProto = v[0]
			}
		case ofp.XMTypeTCPDst:
			if ok = l == 2 && !hasMask; ok {
				m.TCPDst = binary.BigEndian.Uint16(v)
			}
		case ofp.XMTypeTCPSrc:
			if ok = size == 2 && m.TCPSrcMask == 0; ok {
				m.TCPSrc, m.TCPSrcMask = binary.BigEndian.Uint16(v), 0xffff
				if hasMask {
					m.TCPSrcMask = binary.BigEndian.Uint16(v[2:])
				}
				ok = m.TCPSrcMask != 0 && m.TCPSrc&^m.TCPSrcMask == 0
			}
		case ofp.XMTypeIPv4Src, ofp.XMTypeIPv4Dst:
			var p netip.Prefix
			if p, ok = decodePrefix(v, hasMask, 4); ok {
				if field == ofp.XMTypeIPv4Src {
					m.Src = p
				} else {
					m.Dst = p
				}
			}
		case ofp.XMTypeIPv6Src, ofp.XMTypeIPv6Dst:
			var p netip.Prefix
			if p, ok = decodePrefix(v, hasMask, 16); ok {
				if field == ofp.XMTypeIPv6Src {
					m.Src = p
				} else {
					m.Dst = p
				}
			}
		}
		if !ok {
			return m, fmt.Sprintf("oxm field %d len %d", uint8(field), l)
		}
	}
	return m, ""
}

// decodePrefix decodes an address field; only CIDR masks are op25b's.
func decodePrefix(v []byte, hasMask bool, size int) (netip.Prefix, bool) {
	if (!hasMask && len(v) != size) || (hasMask && len(v) != 2*size) {
		return netip.Prefix{}, false
	}
	addr, _ := netip.AddrFromSlice(v[:size])
	bits := size * 8
	if hasMask {
		bits = 0
		seenZero := false
		for _, octet := range v[size:] {
			for i := 7; i >= 0; i-- {
				if octet&(1<<i) != 0 {
					if seenZero {
						return netip.Prefix{}, false
					}
					bits++
				} else {
					seenZero = true
				}
			}
		}
	}
	p := netip.PrefixFrom(addr, bits)
	if p.Masked() != p {
		return netip.Prefix{}, false
	}
	return p, true
}

// decodeInstructions returns a non-empty reason for instructions or actions
// op25b never writes (write_actions, meters, several outputs, set-field,
// experimenter actions...).
func decodeInstructions(b []byte) (flows.Actions, string) {
	var a flows.Actions
	for len(b) > 0 {
		if len(b) < 4 {
			return a, "truncated instruction"
		}
		typ, l := ofp.InstructionType(binary.BigEndian.Uint16(b)), int(binary.BigEndian.Uint16(b[2:]))
		if l < 4 || l > len(b) {
			return a, "bad instruction length"
		}
		in := b[:l]
		b = b[l:]
		switch {
		case typ == ofp.InstructionTypeGotoTable && l == 8 && !a.Goto:
			a.Goto, a.GotoTable = true, in[4]
		case typ == ofp.InstructionTypeWriteMetadata && l == 24 && a.WriteMetadataMask == 0:
			a.WriteMetadata, a.WriteMetadataMask = binary.BigEndian.Uint64(in[8:]), binary.BigEndian.Uint64(in[16:])
			if a.WriteMetadataMask == 0 {
				return a, "write_metadata with empty mask"
			}
		case typ == ofp.InstructionTypeApplyActions && l >= 8:
			if reason := decodeApplyActions(in[8:], &a); reason != "" {
				return a, reason
			}
		default:
			return a, fmt.Sprintf("instruction type %d", uint16(typ))
		}
	}
	return a, ""
}

// decodeApplyActions accepts only what op25b writes, in the order it
// writes it: a resubmit to a table, op25b's learn action, one output, each
// at most once.
func decodeApplyActions(acts []byte, a *flows.Actions) string {
	for len(acts) > 0 {
		if len(acts) < 4 {
			return "truncated action"
		}
		at, al := ofp.ActionType(binary.BigEndian.Uint16(acts)), int(binary.BigEndian.Uint16(acts[2:]))
		if al < 4 || al > len(acts) {
			return "bad action length"
		}
		act := acts[:al]
		acts = acts[al:]
		if at == ofp.ActionTypeExperimenter {
			if reason := decodeNicira(act, a); reason != "" {
				return reason
			}
			continue
		}
		if at != ofp.ActionTypeOutput || al != 16 || a.Output != 0 {
			return fmt.Sprintf("action type %d", uint16(at))
		}
		a.Output = binary.BigEndian.Uint32(act[4:])
		if a.Output == 0 {
			return "output to port 0"
		}
	}
	return ""
}

// Canonical puts a flow in the form DecodeFlowStats reports it after
// AppendFlowMod wrote it: masked values, /0 prefixes and empty masks as
// wildcards, IPv4-mapped IPv6 prefixes as IPv4. A diff between a desired
// set and a dump is empty when nothing changed only if the desired set is
// canonical too.
func Canonical(f flows.Flow) flows.Flow {
	canon := func(p netip.Prefix) netip.Prefix {
		if !p.IsValid() || p.Bits() == 0 {
			return netip.Prefix{}
		}
		p = p.Masked()
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		return p
	}
	f.Match.Src, f.Match.Dst = canon(f.Match.Src), canon(f.Match.Dst)
	f.Match.Metadata &= f.Match.MetadataMask
	f.Match.TCPFlags &= f.Match.TCPFlagsMask
	f.Match.TCPSrc &= f.Match.TCPSrcMask
	if !f.Actions.Resubmit {
		f.Actions.ResubmitTable = 0
	}
	f.Actions.WriteMetadata &= f.Actions.WriteMetadataMask
	if f.Actions.WriteMetadataMask == 0 {
		f.Actions.WriteMetadata = 0
	}
	if !f.Actions.Goto {
		f.Actions.GotoTable = 0
	}
	return f
}
