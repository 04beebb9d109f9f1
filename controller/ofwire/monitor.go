package ofwire

import (
	"encoding/binary"
	"fmt"

	of "github.com/netrack/openflow"
	"github.com/netrack/openflow/ofp"

	"github.com/op25b/op25b/flows"
)

// Flow monitoring for OpenFlow 1.3, as Open vSwitch implements it: the ONF
// experimenter form of the flow monitor that OpenFlow 1.4 standardised
// (Open vSwitch's include/openflow/openflow-1.3.h). Open vSwitch accepts
// the older Nicira form (NXST_FLOW_MONITOR) only for OpenFlow 1.0–1.2.
//
//   - The request is an OFPMP_EXPERIMENTER multipart request with the ONF
//     experimenter id and exp_type ONFTypeFlowMonitor; its body is one or
//     more onf_flow_monitor_request structures, each followed by an OXM
//     match. The reply (same xid, same experimenter header) lists the
//     flows that match now when MonitorInitial is set, else it is empty.
//   - Afterwards every change to a matching flow arrives as an unsolicited
//     multipart reply of the same kind with xid 0, carrying flow updates.
//     Changes made by the monitoring connection itself are abbreviated to
//     the xid of the request that caused them unless MonitorOwn is set (a
//     bundled flow-mod counts as the connection's own, with its inner xid).
//   - When the switch's queue of notifications for the connection is too
//     long (Open vSwitch: 128 KiB not yet written to the socket) it sends
//     ONFTypeFlowMonitorPaused, stops reporting additions and
//     modifications, and later ONFTypeFlowMonitorResumed once the queue has
//     drained. In between the controller's view is incomplete.
const (
	// ONFTypeFlowMonitor is the exp_type of ONFST_FLOW_MONITOR (multipart
	// request and reply) and of ONFT_FLOW_MONITOR_CANCEL (a plain
	// experimenter message).
	ONFTypeFlowMonitor uint32 = 1870
	// ONFTypeFlowMonitorPaused is the exp_type of ONFT_FLOW_MONITOR_PAUSED.
	ONFTypeFlowMonitorPaused uint32 = 1871
	// ONFTypeFlowMonitorResumed is the exp_type of ONFT_FLOW_MONITOR_RESUMED.
	ONFTypeFlowMonitorResumed uint32 = 1872
)

// MonitorFlags are the ONFFMF_* flags of a flow monitor request.
type MonitorFlags uint16

// Monitor flags: which changes to report, and what to include.
const (
	MonitorInitial MonitorFlags = 1 << iota // list the matching flows in the reply
	MonitorAdd                              // report flows as they are added
	MonitorDelete                           // report flows as they are removed
	MonitorModify                           // report flows as they are changed
	MonitorActions                          // include the instructions
	MonitorOwn                              // report this connection's own changes in full, not abbreviated
)

// FlowMonitorRequest is one onf_flow_monitor_request with an empty
// (all-wildcard) match: the protocol cannot select by cookie, so op25b
// selects by table and filters cookies on receipt.
type FlowMonitorRequest struct {
	ID      uint32 // unique among this connection's monitors
	Flags   MonitorFlags
	OutPort uint32 // ofp.PortAny: any
	Table   uint8  // one table, or ofp.TableAll
	// Match narrows the monitor to flows at least as specific as it, with
	// the same values in its fields (Open vSwitch's "loose match", as for a
	// non-strict flow stats request); zero: every flow.
	Match flows.Match
}

// AppendFlowMonitorRequest appends an ONFST_FLOW_MONITOR multipart request
// holding r.
func AppendFlowMonitorRequest(b []byte, xid uint32, r FlowMonitorRequest) []byte {
	start := len(b)
	b = appendMultipartRequestHeader(b, xid, ofp.MultipartTypeExperimenter)
	b = be32(b, ONFExperimenterID)
	b = be32(b, ONFTypeFlowMonitor)
	b = be32(b, r.ID)
	b = be16(b, uint16(r.Flags))
	lenAt := len(b)
	b = be16(b, 0) // match_len: the OXM match's own length, set below
	b = be32(b, r.OutPort)
	b = append(b, r.Table)
	b = pad(b, 3)
	matchAt := len(b)
	b = appendMatch(b, r.Match)
	binary.BigEndian.PutUint16(b[lenAt:], binary.BigEndian.Uint16(b[matchAt+2:]))
	return finish(b, start)
}

// AppendFlowMonitorCancel appends an ONFT_FLOW_MONITOR_CANCEL for the
// monitor with the given id. The switch sends no reply.
func AppendFlowMonitorCancel(b []byte, xid, id uint32) []byte {
	start := len(b)
	b = appendHeader(b, of.TypeExperiment, xid)
	b = be32(b, ONFExperimenterID)
	b = be32(b, ONFTypeFlowMonitor)
	b = be32(b, id)
	return finish(b, start)
}

// ExperimenterType returns the experimenter id and exp_type that start the
// body of an OFPT_EXPERIMENTER message or, after ParseMultipartReply, the
// Body of an OFPMP_EXPERIMENTER reply.
func ExperimenterType(body []byte) (experimenter, expType uint32, err error) {
	if len(body) < 8 {
		return 0, 0, fmt.Errorf("experimenter header: %w", ErrShortMessage)
	}
	return binary.BigEndian.Uint32(body), binary.BigEndian.Uint32(body[4:]), nil
}

// IsFlowMonitorReply reports whether a multipart reply part is an
// ONFST_FLOW_MONITOR reply (a request's answer or a notification).
func IsFlowMonitorReply(m MultipartReply) bool {
	if m.Type != ofp.MultipartTypeExperimenter {
		return false
	}
	exp, typ, err := ExperimenterType(m.Body)
	return err == nil && exp == ONFExperimenterID && typ == ONFTypeFlowMonitor
}

// FlowUpdateEvent is the event of a flow update (ONFFME_*).
type FlowUpdateEvent uint16

// Flow update events.
const (
	FlowAdded    FlowUpdateEvent = 0 // added, or replaced by an add
	FlowDeleted  FlowUpdateEvent = 1 // removed (Reason says why)
	FlowModified FlowUpdateEvent = 2 // instructions or cookie changed
	FlowAbbrev   FlowUpdateEvent = 3 // the monitoring connection's own change, by xid
)

func (e FlowUpdateEvent) String() string {
	switch e {
	case FlowAdded:
		return "added"
	case FlowDeleted:
		return "deleted"
	case FlowModified:
		return "modified"
	case FlowAbbrev:
		return "abbrev"
	}
	return fmt.Sprintf("event(%d)", uint16(e))
}

// flowUpdateFullLen is the length of onf_flow_update_full before its match.
const flowUpdateFullLen = 24

// FlowUpdate is one decoded flow update.
//
// For FlowAbbrev only XID is set. Otherwise Flow holds Table, Priority and
// Cookie; Flow.Match is set when MatchKnown; Flow.Actions when the entry is
// not Foreign (a FlowDeleted update carries no instructions, so its
// Actions are empty). Foreign means the entry uses something op25b never
// writes (ForeignReason says what); the match may still be known when only
// the instructions are foreign. RawMatch (aliasing the input) lets a strict
// delete address the entry whatever its shape.
type FlowUpdate struct {
	Event         FlowUpdateEvent
	Reason        uint16 // OFPRR_* for FlowDeleted
	XID           uint32 // FlowAbbrev
	Flow          flows.Flow
	MatchKnown    bool
	Foreign       bool
	ForeignReason string
	RawMatch      []byte
	IdleTimeout   uint16
	HardTimeout   uint16
}

// DecodeFlowUpdates decodes the Body of an ONFST_FLOW_MONITOR reply part
// (experimenter header first) and appends its updates to out. An update
// op25b cannot represent is reported Foreign instead of failing the rest;
// only a length that breaks the framing, or an unknown event, is an error.
// Decoded flows are in Canonical form.
func DecodeFlowUpdates(body []byte, out []FlowUpdate) ([]FlowUpdate, error) {
	exp, typ, err := ExperimenterType(body)
	if err != nil {
		return out, fmt.Errorf("flow monitor reply: %w", err)
	}
	if exp != ONFExperimenterID || typ != ONFTypeFlowMonitor {
		return out, fmt.Errorf("flow monitor reply: experimenter %#x type %d", exp, typ)
	}
	body = body[8:]
	for len(body) > 0 {
		if len(body) < 4 {
			return out, fmt.Errorf("flow update: %w (%d bytes left)", ErrShortMessage, len(body))
		}
		l, ev := int(binary.BigEndian.Uint16(body)), FlowUpdateEvent(binary.BigEndian.Uint16(body[2:]))
		if l < 8 || l%8 != 0 || l > len(body) {
			return out, fmt.Errorf("flow update length %d with %d bytes left: %w", l, len(body), ErrShortMessage)
		}
		u, err := decodeFlowUpdate(body[:l], ev)
		if err != nil {
			return out, err
		}
		out = append(out, u)
		body = body[l:]
	}
	return out, nil
}

func decodeFlowUpdate(e []byte, ev FlowUpdateEvent) (FlowUpdate, error) {
	u := FlowUpdate{Event: ev}
	switch ev {
	case FlowAbbrev:
		if len(e) != 8 {
			return u, fmt.Errorf("abbreviated flow update of %d bytes, want 8", len(e))
		}
		u.XID = binary.BigEndian.Uint32(e[4:])
		return u, nil
	case FlowAdded, FlowDeleted, FlowModified:
	default:
		return u, fmt.Errorf("flow update with unknown event %d", uint16(ev))
	}
	if len(e) < flowUpdateFullLen+8 {
		return u, fmt.Errorf("flow update of %d bytes: %w", len(e), ErrShortMessage)
	}
	u.Reason = binary.BigEndian.Uint16(e[4:])
	u.Flow.Priority = binary.BigEndian.Uint16(e[6:])
	u.IdleTimeout = binary.BigEndian.Uint16(e[8:])
	u.HardTimeout = binary.BigEndian.Uint16(e[10:])
	u.Flow.Table = e[14]
	u.Flow.Cookie = binary.BigEndian.Uint64(e[16:])
	rest := e[flowUpdateFullLen:]
	mlen := int(binary.BigEndian.Uint16(rest[2:]))
	padded := (mlen + 7) / 8 * 8
	if ofp.MatchType(binary.BigEndian.Uint16(rest)) != ofp.MatchTypeXM || mlen < 4 || padded > len(rest) {
		u.Foreign, u.ForeignReason = true, "bad match header"
		return u, nil
	}
	u.RawMatch = rest[:padded:padded]
	m, reason := decodeMatch(rest[4:mlen])
	if reason != "" {
		u.Foreign, u.ForeignReason = true, reason
		return u, nil
	}
	u.MatchKnown = true
	u.Flow.Match = m
	a, reason := decodeInstructions(rest[padded:])
	if reason != "" {
		u.Foreign, u.ForeignReason = true, reason
		u.Flow = Canonical(u.Flow)
		return u, nil
	}
	u.Flow.Actions = a
	u.Flow = Canonical(u.Flow)
	return u, nil
}
