package ofwire_test

import (
	"bytes"
	"testing"

	"github.com/netrack/openflow/ofp"

	"github.com/op25b/op25b/controller/ofwire"
	"github.com/op25b/op25b/controller/ofwire/ofwiretest"
	"github.com/op25b/op25b/flows"
)

// FuzzDecode feeds arbitrary bytes through the framing and every decoder
// the controller runs on switch input. They must never panic, and any
// entry that decodes as op25b's must, re-encoded by netrack, decode to the
// same flow again (in Canonical form). The seed corpus is every fixture
// under testdata/ (real OVS and ovs-ofctl captures, netrack encodings)
// plus the regressions kept in testdata/fuzz/FuzzDecode:
//
//	go test ./controller/ofwire -run XXX -fuzz FuzzDecode -fuzztime 60s
func FuzzDecode(f *testing.F) {
	for _, p := range fixturePaths(f) {
		f.Add(readFixture(f, p).Bytes)
	}
	f.Add(ofwiretest.MultipartReply(7, ofp.MultipartTypeFlow, false, ofwiretest.FlowStatsEntries(pipelineFlows(), 1)))
	f.Add(ofwiretest.FlowMonitorReply(0, ofwiretest.FlowUpdate(ofwire.FlowAdded, 0, pipelineFlows()[3]), ofwiretest.FlowUpdateAbbrev(5)))
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bytes.NewReader(data)
		for {
			h, body, err := ofwire.ReadMessage(r)
			if err != nil {
				return
			}
			decodeAny(t, h, body)
		}
	})
}

func decodeAny(t *testing.T, h ofwire.Header, body []byte) {
	_ = ofwire.HelloOffersVersion13(h, body)
	_, _ = ofwire.ParseError(h, body)
	_, _ = ofwire.ParseFeaturesReply(body)
	_ = ofwire.CheckRoleReply(body, ofwire.RoleMessage{Role: ofp.ControllerRoleMaster, GenerationID: 1})
	_, _ = ofwire.ParseBundleControl(body)
	_, _, _ = ofwire.ExperimenterType(body)
	payload := body
	if mp, err := ofwire.ParseMultipartReply(body); err == nil {
		payload = mp.Body
		if ofwire.IsFlowMonitorReply(mp) {
			updates, _ := ofwire.DecodeFlowUpdates(mp.Body, nil)
			for _, u := range updates {
				if u.MatchKnown && !u.Foreign && u.Flow != ofwire.Canonical(u.Flow) {
					t.Fatalf("decoded update not canonical: %+v", u.Flow)
				}
			}
		}
	}
	entries, _ := ofwire.DecodeFlowStats(payload, nil)
	for _, e := range entries {
		if e.Foreign {
			continue
		}
		if e.Flow != ofwire.Canonical(e.Flow) {
			t.Fatalf("decoded flow not canonical: %+v", e.Flow)
		}
		entry := ofwiretest.FlowStatsEntries([]flows.Flow{e.Flow}, 0)
		if usesExtensions(e.Flow) {
			// netrack encodes no Nicira action and no experimenter field:
			// ofwire's own encoding is re-decoded instead (its bytes are
			// checked against ovs-ofctl's in TestBundleMessagesMatchOvsOfctl).
			entry = entryOf(e.Flow)
		}
		again, err := ofwire.DecodeFlowStats(entry, nil)
		if err != nil || len(again) != 1 || again[0].Foreign || again[0].Flow != e.Flow {
			t.Fatalf("re-encode of %+v: %+v %v", e.Flow, again, err)
		}
	}
}

// usesExtensions: the flow needs the Open vSwitch extensions (resubmit,
// learn, tcp_flags) that netrack cannot encode.
func usesExtensions(f flows.Flow) bool {
	return f.Actions.Resubmit || !f.Actions.Learn.IsZero() || f.Match.TCPFlagsMask != 0
}

// entryOf is an ofp_flow_stats entry for f built from ofwire's FLOW_MOD
// encoding: the match and instructions of a FLOW_MOD and of a flow stats
// entry have the same layout (§7.3.4.1, §7.3.5.2).
func entryOf(f flows.Flow) []byte {
	fm := ofwire.AppendFlowMod(nil, 1, ofwire.FlowMod{Command: ofp.FlowAdd, Table: f.Table, Priority: f.Priority, Cookie: f.Cookie, Match: f.Match, Actions: f.Actions})
	const flowModFixed = 48 // header and the fields before the match
	return flowStatsEntry(f.Table, f.Priority, f.Cookie, fm[flowModFixed:])
}
