package ofwire_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"

	of "github.com/netrack/openflow"
	"github.com/netrack/openflow/ofp"

	"github.com/op25b/op25b/controller/ofwire"
	"github.com/op25b/op25b/controller/ofwire/ofwiretest"
	"github.com/op25b/op25b/flows"
)

// netrack has no flow-monitor types: op25b's request is checked against
// what `ovs-ofctl monitor` sends for the same watch (TestCaptureOvsOfctlMonitor).
func TestFlowMonitorRequestMatchesOvsOfctl(t *testing.T) {
	for _, tc := range []struct {
		name string
		req  ofwire.FlowMonitorRequest
	}{
		// ovs-ofctl numbers its monitors from 0; op25b uses table+1.
		{"flow-monitor-request-table0", ofwire.FlowMonitorRequest{ID: 0, OutPort: uint32(ofp.PortAny), Table: 0,
			Flags: ofwire.MonitorAdd | ofwire.MonitorDelete | ofwire.MonitorModify | ofwire.MonitorActions}},
		{"flow-monitor-request-default", ofwire.FlowMonitorRequest{ID: 0, OutPort: uint32(ofp.PortAny), Table: uint8(ofp.TableAll),
			Flags: ofwire.MonitorInitial | ofwire.MonitorAdd | ofwire.MonitorDelete | ofwire.MonitorModify | ofwire.MonitorActions | ofwire.MonitorOwn}},
	} {
		f := ofctlFixture(t, tc.name)
		mustEqualBytes(t, tc.name, ofwire.AppendFlowMonitorRequest(nil, xidOf(f.Bytes), tc.req), f.Bytes)
	}
}

// The cancel has no second encoder and ovs-ofctl never sends one: OVS's
// own decoder must read it as a cancel of that monitor (the controller's
// real-OVS tests check that a cancelled monitor reports nothing more).
func TestFlowMonitorCancelDecodesWithOvsOfctl(t *testing.T) {
	requireOfctl(t)
	got, err := ofpPrint(ofwire.AppendFlowMonitorCancel(nil, 9, 4))
	if err != nil {
		t.Fatal(err)
	}
	if want := "ONFT_FLOW_MONITOR_CANCEL (OF1.3) (xid=0x9): id=4"; strings.Join(got, "\n") != want {
		t.Fatalf("ofp-print of op25b's cancel:\n%s\nwant\n%s", strings.Join(got, "\n"), want)
	}
}

// A monitor narrowed by a match (the offender table's learn flows, not the
// flows they learn) must decode in OVS as that match, with match_len the
// match's own length.
func TestFlowMonitorRequestWithMatchDecodesWithOvsOfctl(t *testing.T) {
	requireOfctl(t)
	req := ofwire.FlowMonitorRequest{ID: 0x10401, Flags: ofwire.MonitorAdd | ofwire.MonitorDelete | ofwire.MonitorModify | ofwire.MonitorActions,
		OutPort: uint32(ofp.PortAny), Table: 4,
		Match: flows.Match{EthType: flows.EthTypeIPv6, IPProto: flows.IPProtoTCP, TCPSrc: 1, TCPSrcMask: 1}}
	got, err := ofpPrint(ofwire.AppendFlowMonitorRequest(nil, 7, req))
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Join(got, "\n")
	for _, want := range []string{"id=66561", "table=4", "tcp6", "tp_src=0x1/0x1"} {
		if !strings.Contains(text, want) {
			t.Fatalf("ofp-print of a monitor request with a match lacks %q:\n%s", want, text)
		}
	}
}

// monitorBody returns the Body of the flow monitor reply in a fixture.
func monitorBody(t *testing.T, name string) (ofwire.Header, []byte) {
	t.Helper()
	h, body := ovsMessage(t, name)
	mp, err := ofwire.ParseMultipartReply(body)
	if err != nil || h.Type != of.TypeMultipartReply || !ofwire.IsFlowMonitorReply(mp) || mp.More() {
		t.Fatalf("%s: not a single-part flow monitor reply: %+v %+v %v", name, h, mp, err)
	}
	return h, mp.Body
}

func TestDecodeFlowUpdatesFromOVS(t *testing.T) {
	added := flows.Flow{Table: 0, Priority: 5, Cookie: 0x25b0000000000001,
		Match:   flows.Match{EthType: flows.EthTypeIPv4, Src: mustPrefix("10.0.0.0/8")},
		Actions: flows.Actions{Goto: true, GotoTable: 2}}
	normal := added
	normal.Actions = flows.Actions{Output: flows.PortNormal}
	cases := []struct {
		name string
		want ofwire.FlowUpdate // RawMatch is checked separately
	}{
		{"flow-update-added", ofwire.FlowUpdate{Event: ofwire.FlowAdded, Flow: added, MatchKnown: true}},
		{"flow-update-modified", ofwire.FlowUpdate{Event: ofwire.FlowModified, Flow: normal, MatchKnown: true}},
		// OVS 3.1 sends the instructions of a deleted flow too; reason 2 is OFPRR_DELETE.
		{"flow-update-deleted", ofwire.FlowUpdate{Event: ofwire.FlowDeleted, Reason: 2, Flow: normal, MatchKnown: true}},
		// The match is op25b's kind, the action is not: the key is still known.
		{"flow-update-added-set-field", ofwire.FlowUpdate{Event: ofwire.FlowAdded, MatchKnown: true, Foreign: true, ForeignReason: "action type 25",
			Flow: flows.Flow{Table: 0, Priority: 6, Cookie: 0x25b0000000000002, Match: flows.Match{EthType: flows.EthTypeIPv4, Dst: mustPrefix("192.0.2.0/24")}}}},
		{"flow-update-added-nicira-oxm", ofwire.FlowUpdate{Event: ofwire.FlowAdded, Foreign: true, ForeignReason: "oxm class 0x1",
			Flow: flows.Flow{Table: 0, Priority: 7, Cookie: 0x25b0000000000003}}},
		{"flow-update-abbrev-flow-mod", ofwire.FlowUpdate{Event: ofwire.FlowAbbrev, XID: xidOwnFlowMod}},
		// A bundle commit is one abbreviated update naming its first add.
		{"flow-update-abbrev-bundle", ofwire.FlowUpdate{Event: ofwire.FlowAbbrev, XID: xidOwnBundle + 1}},
	}
	for _, tc := range cases {
		h, body := monitorBody(t, tc.name)
		if h.XID != 0 {
			t.Errorf("%s: notification xid %d, want 0", tc.name, h.XID)
		}
		got, err := ofwire.DecodeFlowUpdates(body, nil)
		if err != nil || len(got) != 1 {
			t.Fatalf("%s: %d updates, %v", tc.name, len(got), err)
		}
		u := got[0]
		if (u.RawMatch == nil) != (u.Event == ofwire.FlowAbbrev) {
			t.Errorf("%s: raw match %x", tc.name, u.RawMatch)
		}
		u.RawMatch = nil
		if fmt.Sprint(u) != fmt.Sprint(tc.want) {
			t.Errorf("%s:\n got %+v\nwant %+v", tc.name, u, tc.want)
		}
	}
	// The answer to the subscription itself: empty, with the request's xid.
	h, body := monitorBody(t, "flow-monitor-reply")
	if got, err := ofwire.DecodeFlowUpdates(body, nil); h.XID != xidMonitor || err != nil || len(got) != 0 {
		t.Fatalf("monitor reply: xid %#x, %d updates, %v", h.XID, len(got), err)
	}
}

func TestFlowMonitorNoticesFromOVS(t *testing.T) {
	for name, want := range map[string]uint32{"flow-monitor-paused": ofwire.ONFTypeFlowMonitorPaused, "flow-monitor-resumed": ofwire.ONFTypeFlowMonitorResumed} {
		h, body := ovsMessage(t, name)
		exp, typ, err := ofwire.ExperimenterType(body)
		if h.Type != of.TypeExperiment || h.XID != 0 || err != nil || exp != ofwire.ONFExperimenterID || typ != want {
			t.Errorf("%s: %+v experimenter %#x type %d %v", name, h, exp, typ, err)
		}
	}
	// The Nicira form is refused on a 1.3 connection, attributed to the request.
	h, body := ovsMessage(t, "error-flow-monitor-nicira")
	e, err := ofwire.ParseError(h, body)
	if err != nil || e.XID != xidMonitorNicira || e.Type != ofp.ErrTypeBadRequest || e.Code != ofp.ErrCodeBadRequestBadExpType {
		t.Fatalf("nicira-form refusal: %v %v", e, err)
	}
	// An invalid ONF request gets an error in an OpenFlow 1.0 header with
	// xid 0: a 1.3 session cannot attribute it (op25b never sends one).
	h, _ = ovsMessage(t, "error-flow-monitor-bad-flags")
	if h.Version != 0x01 || h.Type != of.TypeError || h.XID != 0 {
		t.Fatalf("bad-flags error header %+v", h)
	}
}

// Updates built with netrack's match and instruction encoders (not
// ofwire's) decode to the flows they were made from, in Canonical form.
func TestDecodeFlowUpdatesFromNetrack(t *testing.T) {
	var updates [][]byte
	var want []ofwire.FlowUpdate
	for i, f := range pipelineFlows() {
		ev := []ofwire.FlowUpdateEvent{ofwire.FlowAdded, ofwire.FlowModified, ofwire.FlowDeleted}[i%3]
		updates = append(updates, ofwiretest.FlowUpdate(ev, uint16(i%3), f))
		want = append(want, ofwire.FlowUpdate{Event: ev, Reason: uint16(i % 3), Flow: ofwire.Canonical(f), MatchKnown: true})
		updates = append(updates, ofwiretest.FlowUpdateAbbrev(uint32(i)))
		want = append(want, ofwire.FlowUpdate{Event: ofwire.FlowAbbrev, XID: uint32(i)})
	}
	msg := ofwiretest.FlowMonitorReply(0, updates...)
	h, body, err := ofwire.ReadMessage(bytes.NewReader(msg))
	if err != nil || h.Type != of.TypeMultipartReply || h.XID != 0 {
		t.Fatal(h, err)
	}
	mp, err := ofwire.ParseMultipartReply(body)
	if err != nil || !ofwire.IsFlowMonitorReply(mp) {
		t.Fatalf("%+v %v", mp, err)
	}
	got, err := ofwire.DecodeFlowUpdates(mp.Body, nil)
	if err != nil || len(got) != len(want) {
		t.Fatalf("%d updates, %v", len(got), err)
	}
	for i := range got {
		got[i].RawMatch = nil
		if fmt.Sprint(got[i]) != fmt.Sprint(want[i]) {
			t.Errorf("update %d:\n got %+v\nwant %+v", i, got[i], want[i])
		}
	}
	// Paused/resumed built from the layout decode as notices.
	for _, m := range [][]byte{ofwiretest.FlowMonitorPaused(), ofwiretest.FlowMonitorResumed()} {
		if _, typ, err := ofwire.ExperimenterType(m[ofwire.HeaderLen:]); err != nil || typ < ofwire.ONFTypeFlowMonitorPaused {
			t.Errorf("notice %x: type %d %v", m, typ, err)
		}
	}
}

func TestDecodeFlowUpdatesBadInput(t *testing.T) {
	header := func(exp, typ uint32) []byte {
		b := make([]byte, 8)
		binary.BigEndian.PutUint32(b, exp)
		binary.BigEndian.PutUint32(b[4:], typ)
		return b
	}
	onf := header(ofwire.ONFExperimenterID, ofwire.ONFTypeFlowMonitor)
	full := ofwiretest.FlowUpdate(ofwire.FlowAdded, 0, pipelineFlows()[3])
	withLen := func(b []byte, l uint16) []byte {
		b = append([]byte(nil), b...)
		binary.BigEndian.PutUint16(b, l)
		return b
	}
	withEvent := func(b []byte, ev uint16) []byte {
		b = append([]byte(nil), b...)
		binary.BigEndian.PutUint16(b[2:], ev)
		return b
	}
	cases := []struct {
		name  string
		body  []byte
		short bool
	}{
		{"no experimenter header", onf[:6], true},
		{"another experimenter", header(0x2320, ofwire.ONFTypeFlowMonitor), false},
		{"another exp_type", header(ofwire.ONFExperimenterID, ofwire.ONFTypeBundleControl), false},
		{"three bytes of an update", append(append([]byte(nil), onf...), 0, 8, 0), true},
		{"length beyond the body", append(append([]byte(nil), onf...), withLen(full, uint16(len(full)+8))...), true},
		{"length not a multiple of 8", append(append([]byte(nil), onf...), withLen(full, uint16(len(full)-4))...), true},
		{"length below 8", append(append([]byte(nil), onf...), withLen(full, 4)...), true},
		{"unknown event", append(append([]byte(nil), onf...), withEvent(full, 9)...), false},
		{"abbrev of 16 bytes", append(append([]byte(nil), onf...), withLen(withEvent(full, 3), 16)[:16]...), false},
		{"full update of 24 bytes", append(append([]byte(nil), onf...), withLen(full, 24)[:24]...), true},
	}
	for _, tc := range cases {
		_, err := ofwire.DecodeFlowUpdates(tc.body, nil)
		if err == nil || errors.Is(err, ofwire.ErrShortMessage) != tc.short {
			t.Errorf("%s: err %v, want error (short: %v)", tc.name, err, tc.short)
		}
	}
	// A match header that breaks its own length is a foreign entry, not
	// an error: the rest of the notification still decodes.
	bad := append([]byte(nil), full...)
	binary.BigEndian.PutUint16(bad[24+2:], 0xff)
	got, err := ofwire.DecodeFlowUpdates(append(append(append([]byte(nil), onf...), bad...), full...), nil)
	if err != nil || len(got) != 2 || !got[0].Foreign || got[0].RawMatch != nil || got[1].Foreign {
		t.Fatalf("bad match header: %+v %v", got, err)
	}
}
