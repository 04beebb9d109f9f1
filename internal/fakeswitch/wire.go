package fakeswitch

import (
	"encoding/binary"
	"errors"
	"fmt"

	of "github.com/netrack/openflow"
	"github.com/netrack/openflow/ofp"

	"github.com/op25b/op25b/controller/ofwire"
)

// The switch side of the messages op25b's controller sends, encoded and
// decoded here by hand after the OpenFlow Switch Specification 1.3.5 and
// Open vSwitch's openflow-1.3.h (the ONF bundle and flow monitor
// extensions). Only the controller's side of the protocol lives in
// controller/ofwire; this is the other side, kept apart so that a
// simulator bug cannot hide a codec bug in the same function.

// message starts a message of type typ with xid; finish sets its length.
func message(typ of.Type, xid uint32) []byte {
	b := make([]byte, ofwire.HeaderLen, 64)
	b[0], b[1] = ofwire.Version13, byte(typ)
	binary.BigEndian.PutUint32(b[4:], xid)
	return b
}

func finish(b []byte) []byte {
	binary.BigEndian.PutUint16(b[2:], uint16(len(b)))
	return b
}

func be16(b []byte, v uint16) []byte { return binary.BigEndian.AppendUint16(b, v) }
func be32(b []byte, v uint32) []byte { return binary.BigEndian.AppendUint32(b, v) }
func be64(b []byte, v uint64) []byte { return binary.BigEndian.AppendUint64(b, v) }

// helloMessage offers OpenFlow 1.3 only, with a version bitmap as Open
// vSwitch sends it (§7.5.1).
func helloMessage() []byte {
	b := message(of.TypeHello, 1)
	b = be16(b, uint16(ofp.HelloElemTypeVersionBitmap))
	b = be16(b, 8)
	b = be32(b, 1<<ofwire.Version13)
	return finish(b)
}

// featuresReply answers FEATURES_REQUEST (§7.3.1).
func featuresReply(xid uint32, dpid uint64, tables uint8) []byte {
	b := message(of.TypeFeaturesReply, xid)
	b = be64(b, dpid)
	b = be32(b, 0) // n_buffers
	b = append(b, tables, 0, 0, 0)
	b = be32(b, 0x4f) // capabilities: flow, table, port, group stats, ...
	b = be32(b, 0)
	return finish(b)
}

// errorMessage is an OFPT_ERROR whose data is the start of the offending
// message, as Open vSwitch sends it (§7.4.4): the controller finds the
// request's xid at data[4:8].
func errorMessage(xid uint32, typ ofp.ErrType, code ofp.ErrCode, offending []byte) []byte {
	b := message(of.TypeError, xid)
	b = be16(b, uint16(typ))
	b = be16(b, uint16(code))
	b = append(b, offending[:min(len(offending), 64)]...)
	return finish(b)
}

// roleReply answers ROLE_REQUEST (§7.3.9).
func roleReply(xid uint32, role ofp.ControllerRole, generation uint64) []byte {
	b := message(of.TypeRoleReply, xid)
	b = be32(b, uint32(role))
	b = be32(b, 0)
	b = be64(b, generation)
	return finish(b)
}

// multipartReply is one part of a multipart reply (§7.3.5).
func multipartReply(xid uint32, typ ofp.MultipartType, more bool, body []byte) []byte {
	b := message(of.TypeMultipartReply, xid)
	b = be16(b, uint16(typ))
	flags := uint16(0)
	if more {
		flags = 1 // OFPMPF_REPLY_MORE
	}
	b = be16(b, flags)
	b = be32(b, 0)
	b = append(b, body...)
	return finish(b)
}

// errBadMessage: a message this switch cannot parse.
var errBadMessage = errors.New("fakeswitch: malformed message")

// flowMod is a parsed FLOW_MOD (§7.3.4.1): the fields op25b sets, with the
// match (OXM, padded) and the instructions kept as the bytes they came in.
type flowMod struct {
	cookie, cookieMask uint64
	table              uint8
	command            ofp.FlowModCommand
	idle, hard         uint16
	priority           uint16
	flags              uint16
	match              []byte // ofp_match header, OXM fields and padding
	instructions       []byte
}

// flowModFixedLen is ofp_flow_mod's length before its match.
const flowModFixedLen = 40

func parseFlowMod(body []byte) (flowMod, error) {
	var fm flowMod
	if len(body) < flowModFixedLen+8 {
		return fm, fmt.Errorf("flow mod of %d bytes: %w", len(body), errBadMessage)
	}
	fm.cookie = binary.BigEndian.Uint64(body[0:])
	fm.cookieMask = binary.BigEndian.Uint64(body[8:])
	fm.table = body[16]
	fm.command = ofp.FlowModCommand(body[17])
	fm.idle = binary.BigEndian.Uint16(body[18:])
	fm.hard = binary.BigEndian.Uint16(body[20:])
	fm.priority = binary.BigEndian.Uint16(body[22:])
	fm.flags = binary.BigEndian.Uint16(body[36:])
	match, rest, err := splitMatch(body[flowModFixedLen:])
	if err != nil {
		return fm, err
	}
	fm.match = match
	fm.instructions = append([]byte(nil), rest...)
	return fm, nil
}

// splitMatch cuts an ofp_match (OXM type, padded to 8 bytes, §7.2.2) off
// the front of b.
func splitMatch(b []byte) (match, rest []byte, err error) {
	if len(b) < 4 || ofp.MatchType(binary.BigEndian.Uint16(b)) != ofp.MatchTypeXM {
		return nil, nil, fmt.Errorf("match is not OXM: %w", errBadMessage)
	}
	l := int(binary.BigEndian.Uint16(b[2:]))
	padded := (l + 7) / 8 * 8
	if l < 4 || padded > len(b) {
		return nil, nil, fmt.Errorf("match length %d of %d bytes: %w", l, len(b), errBadMessage)
	}
	return append([]byte(nil), b[:padded]...), b[padded:], nil
}

// emptyMatch reports whether an ofp_match has no OXM fields.
func emptyMatch(m []byte) bool { return binary.BigEndian.Uint16(m[2:]) == 4 }

// flowStatsEntry appends one ofp_flow_stats (§7.3.5.2).
func flowStatsEntry(b []byte, k flowKey, e *entry) []byte {
	start := len(b)
	b = be16(b, 0) // length, below
	b = append(b, k.table, 0)
	b = be32(b, 1) // duration_sec
	b = be32(b, 0)
	b = be16(b, k.priority)
	b = be16(b, e.idle)
	b = be16(b, e.hard)
	b = be16(b, e.flags)
	b = be32(b, 0)
	b = be64(b, e.cookie)
	b = be64(b, e.packets)
	b = be64(b, e.bytes)
	b = append(b, k.match...)
	b = append(b, e.instructions...)
	binary.BigEndian.PutUint16(b[start:], uint16(len(b)-start))
	return b
}

// flowUpdate appends one onf_flow_update_full (Open vSwitch's
// openflow-1.3.h): length, event, reason, priority, timeouts, match
// length, table, cookie, then the match and the instructions.
func flowUpdate(b []byte, event ofwire.FlowUpdateEvent, reason uint16, k flowKey, e *entry) []byte {
	start := len(b)
	b = be16(b, 0)
	b = be16(b, uint16(event))
	b = be16(b, reason)
	b = be16(b, k.priority)
	b = be16(b, e.idle)
	b = be16(b, e.hard)
	b = be16(b, uint16(k.match[2])<<8|uint16(k.match[3]))
	b = append(b, k.table, 0)
	b = be64(b, e.cookie)
	b = append(b, k.match...)
	b = append(b, e.instructions...)
	binary.BigEndian.PutUint16(b[start:], uint16(len(b)-start))
	return b
}

// flowUpdateAbbrev appends an onf_flow_update_abbrev: a change made by the
// monitoring connection itself, named by the xid that caused it.
func flowUpdateAbbrev(b []byte, xid uint32) []byte {
	b = be16(b, 8)
	b = be16(b, uint16(ofwire.FlowAbbrev))
	return be32(b, xid)
}

// flowMonitorBody starts the body of an ONFST_FLOW_MONITOR reply.
func flowMonitorBody() []byte {
	b := make([]byte, 0, 256)
	b = be32(b, ofwire.ONFExperimenterID)
	return be32(b, ofwire.ONFTypeFlowMonitor)
}

// monitorRequest is one onf_flow_monitor_request: id, flags, out port,
// table; its match is not kept (op25b sends an empty one).
type monitorRequest struct {
	id    uint32
	flags ofwire.MonitorFlags
	table uint8
}

// parseMonitorRequests decodes the requests of an ONFST_FLOW_MONITOR
// multipart request body (after the experimenter header).
func parseMonitorRequests(b []byte) ([]monitorRequest, error) {
	var out []monitorRequest
	for len(b) > 0 {
		if len(b) < 16 {
			return nil, fmt.Errorf("flow monitor request of %d bytes: %w", len(b), errBadMessage)
		}
		r := monitorRequest{id: binary.BigEndian.Uint32(b), flags: ofwire.MonitorFlags(binary.BigEndian.Uint16(b[4:])), table: b[12]}
		_, rest, err := splitMatch(b[16:])
		if err != nil {
			return nil, err
		}
		out = append(out, r)
		b = rest
	}
	return out, nil
}
