package controller

// The OpenFlow 1.3 wire codec op25b needs, as pure functions over byte
// slices. Message layouts follow the OpenFlow Switch Specification 1.3.5
// (section numbers cited per function) and the ONF bundle extension (EXT-230).
//
// Why hand-written instead of netrack/openflow's reflection encoder: a 100k
// flow install must encode 100k FLOW_MODs well under the time ovs-ofctl needs
// (platform-notes: netrack alone spends ~217 ms), and the dump decoder must be
// tolerant entry by entry (netrack aborts a whole dump on one experimenter
// field). netrack's ofp package is still the source of error type/code names
// and of the message type numbers.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"

	of "github.com/netrack/openflow"
	"github.com/netrack/openflow/ofp"

	"github.com/op25b/op25b/flows"
)

// Version13 is the only OpenFlow version op25b speaks (wire value 0x04).
const Version13 uint8 = 0x04

const headerLen = 8

// Message types used by op25b (OpenFlow 1.3 §7.1, enum ofp_type).
const (
	typeHello        = uint8(of.TypeHello)
	typeError        = uint8(of.TypeError)
	typeEchoRequest  = uint8(of.TypeEchoRequest)
	typeEchoReply    = uint8(of.TypeEchoReply)
	typeExperimenter = uint8(of.TypeExperiment)
	typeFeaturesReq  = uint8(of.TypeFeaturesRequest)
	typeFeaturesRep  = uint8(of.TypeFeaturesReply)
	typeFlowMod      = uint8(of.TypeFlowMod)
	typeMultipartReq = uint8(of.TypeMultipartRequest)
	typeMultipartRep = uint8(of.TypeMultipartReply)
	typeBarrierReq   = uint8(of.TypeBarrierRequest)
	typeBarrierRep   = uint8(of.TypeBarrierReply)
	typeRoleRequest  = uint8(of.TypeRoleRequest)
	typeRoleReply    = uint8(of.TypeRoleReply)
)

// Flow-mod commands (§7.3.4.1).
const (
	fmcAdd          = uint8(ofp.FlowAdd)
	fmcModifyStrict = uint8(ofp.FlowModifyStrict)
	fmcDeleteStrict = uint8(ofp.FlowDeleteStrict)
)

// Controller roles (§7.3.9).
const (
	roleMaster = uint32(ofp.ControllerRoleMaster)
	roleSlave  = uint32(ofp.ControllerRoleSlave)
)

// ONF bundle extension for OpenFlow 1.3 (EXT-230), as implemented by OVS.
const (
	onfExperimenterID   uint32 = 0x4F4E4600
	onfBundleControl    uint32 = 2300
	onfBundleAdd        uint32 = 2301
	bundleOpenRequest   uint16 = 0
	bundleOpenReply     uint16 = 1
	bundleCommitRequest uint16 = 4
	bundleCommitReply   uint16 = 5
	bundleDiscardReq    uint16 = 6
	bundleDiscardReply  uint16 = 7
	bundleFlagsAtomicOr uint16 = 1 | 2 // ATOMIC | ORDERED
)

const (
	multipartFlow      uint16 = 1 // OFPMP_FLOW (§7.3.5.2)
	multipartReplyMore uint16 = 1 // OFPMPF_REPLY_MORE
)

// OXM basic class fields (§7.2.3.7).
const (
	oxmClassBasic  uint16 = 0x8000
	oxmMetadata    uint8  = 2
	oxmEthType     uint8  = 5
	oxmIPProto     uint8  = 10
	oxmIPv4Src     uint8  = 11
	oxmIPv4Dst     uint8  = 12
	oxmTCPDst      uint8  = 14
	oxmIPv6Src     uint8  = 26
	oxmIPv6Dst     uint8  = 27
	instrGoto      uint16 = 1
	instrWriteMeta uint16 = 2
	instrApply     uint16 = 4
	actionOutput   uint16 = 0
)

// ErrShortMessage reports a message shorter than its own length fields say.
var ErrShortMessage = errors.New("openflow: truncated message")

// header is the fixed OpenFlow header (§7.1).
type header struct {
	Version uint8
	Type    uint8
	Length  uint16
	XID     uint32
}

func parseHeader(b []byte) (header, error) {
	if len(b) < headerLen {
		return header{}, ErrShortMessage
	}
	h := header{Version: b[0], Type: b[1], Length: binary.BigEndian.Uint16(b[2:4]), XID: binary.BigEndian.Uint32(b[4:8])}
	if h.Length < headerLen {
		return h, fmt.Errorf("openflow: header length %d below 8", h.Length)
	}
	return h, nil
}

// appendHeader appends a header whose length is fixed up by finish.
func appendHeader(b []byte, typ uint8, xid uint32) []byte {
	return append(b, Version13, typ, 0, 0, byte(xid>>24), byte(xid>>16), byte(xid>>8), byte(xid))
}

// finish writes the length of the message that starts at b[start:].
func finish(b []byte, start int) []byte {
	binary.BigEndian.PutUint16(b[start+2:], uint16(len(b)-start))
	return b
}

func be16(b []byte, v uint16) []byte { return binary.BigEndian.AppendUint16(b, v) }
func be32(b []byte, v uint32) []byte { return binary.BigEndian.AppendUint32(b, v) }
func be64(b []byte, v uint64) []byte { return binary.BigEndian.AppendUint64(b, v) }
func pad(b []byte, n int) []byte {
	for i := 0; i < n; i++ {
		b = append(b, 0)
	}
	return b
}

// encodeSimple encodes a message with a body (HELLO, ECHO, FEATURES, BARRIER).
func encodeSimple(b []byte, typ uint8, xid uint32, body []byte) []byte {
	start := len(b)
	b = appendHeader(b, typ, xid)
	b = append(b, body...)
	return finish(b, start)
}

// encodeHello sends a HELLO with a version bitmap element (§7.5.1) that
// offers only 1.3, so a peer that supports several versions picks 1.3.
func encodeHello(b []byte, xid uint32) []byte {
	start := len(b)
	b = appendHeader(b, typeHello, xid)
	b = be16(b, 1) // OFPHET_VERSIONBITMAP
	b = be16(b, 8)
	b = be32(b, 1<<Version13)
	return finish(b, start)
}

// helloAccepts applies the version negotiation of §6.3.1: with a bitmap the
// common highest version is used, otherwise min(ours, theirs).
func helloAccepts(h header, body []byte) bool {
	for len(body) >= 4 {
		typ := binary.BigEndian.Uint16(body[0:2])
		l := int(binary.BigEndian.Uint16(body[2:4]))
		if l < 4 || l > len(body) {
			break
		}
		if typ == 1 && l >= 8 {
			// The first bitmap word covers versions 0..31.
			return binary.BigEndian.Uint32(body[4:8])&(1<<Version13) != 0
		}
		next := (l + 7) / 8 * 8 // elements are padded to 8 bytes
		if next > len(body) {
			break
		}
		body = body[next:]
	}
	return h.Version >= Version13
}

// encodeRoleRequest: §7.3.9.
func encodeRoleRequest(b []byte, xid uint32, role uint32, generation uint64) []byte {
	start := len(b)
	b = appendHeader(b, typeRoleRequest, xid)
	b = be32(b, role)
	b = pad(b, 4)
	b = be64(b, generation)
	return finish(b, start)
}

// roleReply decodes a ROLE_REPLY body (same layout as the request).
func parseRoleReply(body []byte) (role uint32, generation uint64, err error) {
	if len(body) < 16 {
		return 0, 0, fmt.Errorf("role reply: %w", ErrShortMessage)
	}
	return binary.BigEndian.Uint32(body), binary.BigEndian.Uint64(body[8:]), nil
}

// parseFeatures returns the datapath id and auxiliary id (§7.3.1).
func parseFeatures(body []byte) (dpid uint64, aux uint8, err error) {
	if len(body) < 24 {
		return 0, 0, fmt.Errorf("features reply: %w", ErrShortMessage)
	}
	return binary.BigEndian.Uint64(body), body[13], nil
}

// encodeMatch encodes an OXM match (§7.2.2). Fields are written in
// prerequisite order (eth_type before ip_proto before tcp_dst) as OVS wants.
func encodeMatch(b []byte, m flows.Match) []byte {
	start := len(b)
	b = be16(b, 1) // OFPMT_OXM
	b = be16(b, 0)
	if m.MetadataMask != 0 {
		if m.MetadataMask == ^uint64(0) {
			b = oxmHeader(b, oxmMetadata, false, 8)
			b = be64(b, m.Metadata)
		} else {
			b = oxmHeader(b, oxmMetadata, true, 16)
			b = be64(b, m.Metadata&m.MetadataMask)
			b = be64(b, m.MetadataMask)
		}
	}
	if m.EthType != 0 {
		b = oxmHeader(b, oxmEthType, false, 2)
		b = be16(b, m.EthType)
	}
	if m.IPProto != 0 {
		b = oxmHeader(b, oxmIPProto, false, 1)
		b = append(b, m.IPProto)
	}
	b = encodePrefix(b, m.Src, oxmIPv4Src, oxmIPv6Src)
	b = encodePrefix(b, m.Dst, oxmIPv4Dst, oxmIPv6Dst)
	if m.TCPDst != 0 {
		b = oxmHeader(b, oxmTCPDst, false, 2)
		b = be16(b, m.TCPDst)
	}
	binary.BigEndian.PutUint16(b[start+2:], uint16(len(b)-start))
	return pad(b, (8-(len(b)-start)%8)%8)
}

func oxmHeader(b []byte, field uint8, hasMask bool, length uint8) []byte {
	f := field << 1
	if hasMask {
		f |= 1
	}
	return append(b, 0x80, 0x00, f, length) // OFPXMC_OPENFLOW_BASIC
}

func encodePrefix(b []byte, p netip.Prefix, v4, v6 uint8) []byte {
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
		b = oxmHeader(b, field, false, uint8(size))
		return append(b, raw...)
	}
	b = oxmHeader(b, field, true, uint8(2*size))
	b = append(b, raw...)
	mask := netip.PrefixFrom(addr, p.Bits())
	return appendMask(b, mask.Bits(), size)
}

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

// encodeInstructions encodes flows.Actions (§7.2.4). A drop has none.
func encodeInstructions(b []byte, a flows.Actions) []byte {
	if a.WriteMetadataMask != 0 {
		b = be16(b, instrWriteMeta)
		b = be16(b, 24)
		b = pad(b, 4)
		b = be64(b, a.WriteMetadata&a.WriteMetadataMask)
		b = be64(b, a.WriteMetadataMask)
	}
	if a.Output != 0 {
		b = be16(b, instrApply)
		b = be16(b, 24)
		b = pad(b, 4)
		b = be16(b, actionOutput)
		b = be16(b, 16)
		b = be32(b, a.Output)
		b = be16(b, 0xffff) // max_len: OFPCML_NO_BUFFER, what ovs-ofctl writes
		b = pad(b, 6)
	}
	if a.Goto {
		b = be16(b, instrGoto)
		b = be16(b, 8)
		b = append(b, a.GotoTable)
		b = pad(b, 3)
	}
	return b
}

// flowMod is one FLOW_MOD to encode. Match is either a flows.Match or, for
// strict deletes of entries op25b cannot represent, the raw match bytes
// copied from the dump.
type flowMod struct {
	Command    uint8
	Table      uint8
	Priority   uint16
	Cookie     uint64
	CookieMask uint64
	Match      flows.Match
	RawMatch   []byte
	Actions    flows.Actions
}

// encodeFlowMod: §7.3.4.1. Buffer is OFP_NO_BUFFER and OutPort/OutGroup ANY:
// zero values there make OVS reject adds (buffer 0) or silently delete
// nothing (out_port 0), see platform-notes.
func encodeFlowMod(b []byte, xid uint32, fm flowMod) []byte {
	start := len(b)
	b = appendHeader(b, typeFlowMod, xid)
	b = be64(b, fm.Cookie)
	b = be64(b, fm.CookieMask)
	b = append(b, fm.Table, fm.Command)
	b = be16(b, 0) // idle timeout
	b = be16(b, 0) // hard timeout
	b = be16(b, fm.Priority)
	b = be32(b, uint32(ofp.NoBuffer))
	b = be32(b, uint32(ofp.PortAny))
	b = be32(b, uint32(ofp.GroupAny))
	b = be16(b, 0) // flags: no SEND_FLOW_REM, op25b never asks for removals
	b = pad(b, 2)
	if fm.RawMatch != nil {
		b = append(b, fm.RawMatch...)
	} else {
		b = encodeMatch(b, fm.Match)
	}
	if fm.Command != fmcDeleteStrict {
		b = encodeInstructions(b, fm.Actions)
	}
	return finish(b, start)
}

// encodeBundleControl: EXT-230 bundle control message.
func encodeBundleControl(b []byte, xid, bundleID uint32, typ uint16) []byte {
	start := len(b)
	b = appendHeader(b, typeExperimenter, xid)
	b = be32(b, onfExperimenterID)
	b = be32(b, onfBundleControl)
	b = be32(b, bundleID)
	b = be16(b, typ)
	b = be16(b, bundleFlagsAtomicOr)
	return finish(b, start)
}

// appendBundleAdd wraps a FLOW_MOD into a bundle add. The inner message's
// xid must equal the outer one (OVS rejects the add otherwise).
func appendBundleAdd(b []byte, xid, bundleID uint32, fm flowMod) []byte {
	start := len(b)
	b = appendHeader(b, typeExperimenter, xid)
	b = be32(b, onfExperimenterID)
	b = be32(b, onfBundleAdd)
	b = be32(b, bundleID)
	b = pad(b, 2)
	b = be16(b, bundleFlagsAtomicOr)
	b = encodeFlowMod(b, xid, fm)
	return finish(b, start)
}

// parseBundleControl returns the bundle id and control type of a reply.
func parseBundleControl(body []byte) (bundleID uint32, typ uint16, err error) {
	if len(body) < 16 {
		return 0, 0, fmt.Errorf("bundle control: %w", ErrShortMessage)
	}
	if binary.BigEndian.Uint32(body) != onfExperimenterID || binary.BigEndian.Uint32(body[4:]) != onfBundleControl {
		return 0, 0, fmt.Errorf("bundle control: unexpected experimenter %#x/%d", binary.BigEndian.Uint32(body), binary.BigEndian.Uint32(body[4:]))
	}
	return binary.BigEndian.Uint32(body[8:]), binary.BigEndian.Uint16(body[12:]), nil
}

// encodeFlowStatsRequest asks for op25b's flows only: every table, any
// out_port/out_group, cookie/mask = our marker (§7.3.5.2).
func encodeFlowStatsRequest(b []byte, xid uint32) []byte {
	start := len(b)
	b = appendHeader(b, typeMultipartReq, xid)
	b = be16(b, multipartFlow)
	b = be16(b, 0)
	b = pad(b, 4)
	b = append(b, 0xff) // OFPTT_ALL
	b = pad(b, 3)
	b = be32(b, uint32(ofp.PortAny))
	b = be32(b, uint32(ofp.GroupAny))
	b = pad(b, 4)
	b = be64(b, flows.CookieMarker)
	b = be64(b, flows.CookieMask)
	b = encodeMatch(b, flows.Match{})
	return finish(b, start)
}

// OFError is an OFPT_ERROR received from a switch, attributed to the
// request (xid) that caused it.
type OFError struct {
	XID  uint32
	Type uint16
	Code uint16
	// Experimenter is set for OFPET_EXPERIMENTER errors (e.g. ONF bundle errors).
	Experimenter uint32
}

// Error names the type and code as the OpenFlow spec does.
func (e *OFError) Error() string {
	if e.Type == uint16(ofp.ErrTypeExperimenter) {
		return fmt.Sprintf("openflow error xid=%d type=%s exp_code=%d experimenter=%#x", e.XID, ofp.ErrType(e.Type), e.Code, e.Experimenter)
	}
	return fmt.Sprintf("openflow error xid=%d type=%s code=%s", e.XID, ofp.ErrType(e.Type), ofp.Error{Type: ofp.ErrType(e.Type), Code: ofp.ErrCode(e.Code)}.String())
}

// TypeName and CodeName are the spec names, for structured logs.
func (e *OFError) TypeName() string { return ofp.ErrType(e.Type).String() }

// CodeName is the name of the code within its type.
func (e *OFError) CodeName() string {
	return ofp.Error{Type: ofp.ErrType(e.Type), Code: ofp.ErrCode(e.Code)}.String()
}

// IsStale reports OFPET_ROLE_REQUEST_FAILED/OFPRRFC_STALE: another
// controller claimed mastership with a newer generation (§6.3.6).
func (e *OFError) IsStale() bool {
	return e.Type == uint16(ofp.ErrTypeRoleRequestFailed) && e.Code == uint16(ofp.ErrCodeRoleRequestFailedStale)
}

// IsSlave reports OFPBRC_IS_SLAVE: we wrote while the switch sees us as slave.
func (e *OFError) IsSlave() bool {
	return e.Type == uint16(ofp.ErrTypeBadRequest) && e.Code == 10
}

// isBundleUnsupported reports the errors a switch without EXT-230 sends for
// a bundle control message.
func (e *OFError) isBundleUnsupported() bool {
	if e.Type != uint16(ofp.ErrTypeBadRequest) {
		return false
	}
	switch ofp.ErrCode(e.Code) {
	case ofp.ErrCodeBadRequestBadType, ofp.ErrCodeBadRequestBadExperimenter, ofp.ErrCodeBadRequestBadExpType:
		return true
	}
	return false
}

// parseError decodes an OFPT_ERROR body (§7.4.4). The offending message is
// attributed by the error's own xid (OVS copies the request's xid) and,
// failing that, by the xid in the echoed request header in Data[4:8].
func parseError(h header, body []byte) (*OFError, error) {
	if len(body) < 4 {
		return nil, fmt.Errorf("error message: %w", ErrShortMessage)
	}
	e := &OFError{XID: h.XID, Type: binary.BigEndian.Uint16(body), Code: binary.BigEndian.Uint16(body[2:])}
	data := body[4:]
	if e.Type == uint16(ofp.ErrTypeExperimenter) {
		if len(data) < 4 {
			return nil, fmt.Errorf("experimenter error: %w", ErrShortMessage)
		}
		e.Experimenter = binary.BigEndian.Uint32(data)
		data = data[4:]
	}
	if e.XID == 0 && len(data) >= 8 {
		e.XID = binary.BigEndian.Uint32(data[4:8])
	}
	return e, nil
}

// multipartPart is one MULTIPART_REPLY (§7.3.5).
func parseMultipart(body []byte) (typ, flags uint16, payload []byte, err error) {
	if len(body) < 8 {
		return 0, 0, nil, fmt.Errorf("multipart reply: %w", ErrShortMessage)
	}
	return binary.BigEndian.Uint16(body), binary.BigEndian.Uint16(body[2:]), body[8:], nil
}

// InstalledEntry is one decoded flow-stats entry. When Foreign is set the
// entry uses fields, instructions or actions op25b never writes; Flow then
// holds only Table, Priority and Cookie, and RawMatch lets a strict delete
// address exactly that entry.
type InstalledEntry struct {
	Flow            flows.Flow
	Foreign         bool
	ForeignReason   string
	RawMatch        []byte
	Packets, Bytes  uint64
	DurationSeconds uint32
}

// decodeFlowStats decodes the concatenated ofp_flow_stats entries of a
// FLOW multipart reply, entry by entry using each entry's length field
// (§7.3.5.2). An entry op25b cannot represent is reported as Foreign rather
// than aborting the dump; only a length that breaks the framing is an error.
func decodeFlowStats(payload []byte, out []InstalledEntry) ([]InstalledEntry, error) {
	for len(payload) > 0 {
		if len(payload) < 56 {
			return out, fmt.Errorf("flow stats entry: %w (%d bytes left)", ErrShortMessage, len(payload))
		}
		l := int(binary.BigEndian.Uint16(payload))
		if l < 56 || l > len(payload) {
			return out, fmt.Errorf("flow stats entry length %d with %d bytes left: %w", l, len(payload), ErrShortMessage)
		}
		out = append(out, decodeFlowStatsEntry(payload[:l]))
		payload = payload[l:]
	}
	return out, nil
}

func decodeFlowStatsEntry(e []byte) InstalledEntry {
	var ie InstalledEntry
	ie.Flow.Table = e[2]
	ie.DurationSeconds = binary.BigEndian.Uint32(e[4:])
	ie.Flow.Priority = binary.BigEndian.Uint16(e[12:])
	ie.Flow.Cookie = binary.BigEndian.Uint64(e[24:])
	ie.Packets = binary.BigEndian.Uint64(e[32:])
	ie.Bytes = binary.BigEndian.Uint64(e[40:])
	rest := e[48:]
	mlen := int(binary.BigEndian.Uint16(rest[2:]))
	padded := (mlen + 7) / 8 * 8
	if binary.BigEndian.Uint16(rest) != 1 || mlen < 4 || padded > len(rest) {
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
func decodeMatch(b []byte) (flows.Match, string) {
	var m flows.Match
	for len(b) > 0 {
		if len(b) < 4 {
			return m, "truncated oxm"
		}
		class := binary.BigEndian.Uint16(b)
		field, hasMask := b[2]>>1, b[2]&1 == 1
		l := int(b[3])
		if 4+l > len(b) {
			return m, "truncated oxm"
		}
		v := b[4 : 4+l]
		b = b[4+l:]
		if class != oxmClassBasic {
			return m, fmt.Sprintf("oxm class %#x", class)
		}
		size := l
		if hasMask {
			size = l / 2
		}
		var ok bool
		switch field {
		case oxmMetadata:
			if ok = size == 8; ok {
				m.Metadata, m.MetadataMask = binary.BigEndian.Uint64(v), ^uint64(0)
				if hasMask {
					m.MetadataMask = binary.BigEndian.Uint64(v[8:])
				}
			}
		case oxmEthType:
			if ok = l == 2 && !hasMask; ok {
				m.EthType = binary.BigEndian.Uint16(v)
			}
		case oxmIPProto:
			if ok = l == 1 && !hasMask; ok {
				m.IPProto = v[0]
			}
		case oxmTCPDst:
			if ok = l == 2 && !hasMask; ok {
				m.TCPDst = binary.BigEndian.Uint16(v)
			}
		case oxmIPv4Src, oxmIPv4Dst:
			var p netip.Prefix
			if p, ok = decodePrefix(v, hasMask, 4); ok {
				if field == oxmIPv4Src {
					m.Src = p
				} else {
					m.Dst = p
				}
			}
		case oxmIPv6Src, oxmIPv6Dst:
			var p netip.Prefix
			if p, ok = decodePrefix(v, hasMask, 16); ok {
				if field == oxmIPv6Src {
					m.Src = p
				} else {
					m.Dst = p
				}
			}
		}
		if !ok {
			return m, fmt.Sprintf("oxm field %d len %d", field, l)
		}
	}
	return m, ""
}

func decodePrefix(v []byte, hasMask bool, size int) (netip.Prefix, bool) {
	if (!hasMask && len(v) != size) || (hasMask && len(v) != 2*size) {
		return netip.Prefix{}, false
	}
	addr, _ := netip.AddrFromSlice(v[:size])
	bits := size * 8
	if hasMask {
		// Only contiguous (CIDR) masks are op25b's.
		bits = 0
		mask := v[size:]
		seenZero := false
		for _, octet := range mask {
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
// op25b never writes (write_actions, meters, several outputs, set-field...).
func decodeInstructions(b []byte) (flows.Actions, string) {
	var a flows.Actions
	for len(b) > 0 {
		if len(b) < 4 {
			return a, "truncated instruction"
		}
		typ, l := binary.BigEndian.Uint16(b), int(binary.BigEndian.Uint16(b[2:]))
		if l < 4 || l > len(b) {
			return a, "bad instruction length"
		}
		in := b[:l]
		b = b[l:]
		switch {
		case typ == instrGoto && l == 8 && !a.Goto:
			a.Goto, a.GotoTable = true, in[4]
		case typ == instrWriteMeta && l == 24 && a.WriteMetadataMask == 0:
			a.WriteMetadata, a.WriteMetadataMask = binary.BigEndian.Uint64(in[8:]), binary.BigEndian.Uint64(in[16:])
			if a.WriteMetadataMask == 0 {
				return a, "write_metadata with empty mask"
			}
		case typ == instrApply && l >= 8:
			acts := in[8:]
			for len(acts) > 0 {
				if len(acts) < 4 {
					return a, "truncated action"
				}
				at, al := binary.BigEndian.Uint16(acts), int(binary.BigEndian.Uint16(acts[2:]))
				if al < 4 || al > len(acts) {
					return a, "bad action length"
				}
				if at != actionOutput || al != 16 || a.Output != 0 {
					return a, fmt.Sprintf("action type %d", at)
				}
				a.Output = binary.BigEndian.Uint32(acts[4:])
				if a.Output == 0 {
					return a, "output to port 0"
				}
				acts = acts[al:]
			}
		default:
			return a, fmt.Sprintf("instruction type %d", typ)
		}
	}
	return a, ""
}

// canonicalFlow puts a desired flow in the form OVS reports back, so a
// diff against a dump is empty when nothing changed: masked values, /0
// prefixes and empty masks as wildcards.
func canonicalFlow(f flows.Flow) flows.Flow {
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
	f.Actions.WriteMetadata &= f.Actions.WriteMetadataMask
	if f.Actions.WriteMetadataMask == 0 {
		f.Actions.WriteMetadata = 0
	}
	if !f.Actions.Goto {
		f.Actions.GotoTable = 0
	}
	return f
}
