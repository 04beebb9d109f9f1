package ofwiretest

import (
	"bytes"
	"encoding/binary"

	of "github.com/netrack/openflow"
	"github.com/netrack/openflow/ofp"

	"github.com/op25b/op25b/controller/ofwire"
	"github.com/op25b/op25b/flows"
)

// netrack has no flow-monitor types; these put its encodings of the match
// and the instructions (the variable parts) into the fixed ONF layouts
// written out here from Open vSwitch's openflow-1.3.h, independently of
// ofwire's encoder.

// FlowUpdate is one onf_flow_update_full for f: event, reason, then
// netrack's OXM match (padded) and instructions. Deleted updates carry the
// instructions too, as Open vSwitch 3.1 sends them.
func FlowUpdate(event ofwire.FlowUpdateEvent, reason uint16, f flows.Flow) []byte {
	var m, in bytes.Buffer
	match := Match(f.Match)
	if _, err := match.WriteTo(&m); err != nil {
		panic("netrack encode: " + err.Error())
	}
	instructions := Instructions(f.Actions)
	if _, err := instructions.WriteTo(&in); err != nil {
		panic("netrack encode: " + err.Error())
	}
	// netrack's match writes its padding; the header's length excludes it.
	matchLen := binary.BigEndian.Uint16(m.Bytes()[2:])
	b := make([]byte, 24, 24+m.Len()+in.Len())
	binary.BigEndian.PutUint16(b[0:], uint16(24+m.Len()+in.Len()))
	binary.BigEndian.PutUint16(b[2:], uint16(event))
	binary.BigEndian.PutUint16(b[4:], reason)
	binary.BigEndian.PutUint16(b[6:], f.Priority)
	binary.BigEndian.PutUint16(b[12:], matchLen)
	b[14] = f.Table
	binary.BigEndian.PutUint64(b[16:], f.Cookie)
	b = append(b, m.Bytes()...)
	return append(b, in.Bytes()...)
}

// FlowUpdateAbbrev is an onf_flow_update_abbrev for xid.
func FlowUpdateAbbrev(xid uint32) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint16(b[0:], 8)
	binary.BigEndian.PutUint16(b[2:], uint16(ofwire.FlowAbbrev))
	binary.BigEndian.PutUint32(b[4:], xid)
	return b
}

// FlowMonitorReply is an ONFST_FLOW_MONITOR reply (a notification when xid
// is 0) carrying the concatenated updates.
func FlowMonitorReply(xid uint32, updates ...[]byte) []byte {
	body := make([]byte, 8)
	binary.BigEndian.PutUint32(body, ofwire.ONFExperimenterID)
	binary.BigEndian.PutUint32(body[4:], ofwire.ONFTypeFlowMonitor)
	for _, u := range updates {
		body = append(body, u...)
	}
	return MultipartReply(xid, ofp.MultipartTypeExperimenter, false, body)
}

// FlowMonitorPaused and FlowMonitorResumed are the ONF notices a switch
// sends (xid 0) when it stops and restarts reporting changes.
func FlowMonitorPaused() []byte  { return onfMessage(ofwire.ONFTypeFlowMonitorPaused) }
func FlowMonitorResumed() []byte { return onfMessage(ofwire.ONFTypeFlowMonitorResumed) }

func onfMessage(expType uint32) []byte {
	body := make([]byte, 8)
	binary.BigEndian.PutUint32(body, ofwire.ONFExperimenterID)
	binary.BigEndian.PutUint32(body[4:], expType)
	return Message(of.TypeExperiment, 0, bytes.NewReader(body))
}
