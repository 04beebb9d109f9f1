package controller

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/op25b/op25b/flows"
)

func TestFlowStatsRoundTrip(t *testing.T) {
	fs := pipelineFlows()
	fs = append(fs,
		flows.Flow{Table: 1, Priority: 5, Cookie: flows.CookieMarker | 9,
			Match: flows.Match{EthType: flows.EthTypeIPv6, IPProto: 6, TCPDst: 25, Src: netip.MustParsePrefix("2001:db8::/32"), Dst: netip.MustParsePrefix("2001:db8:ffff::1/128")}},
		flows.Flow{Table: 2, Priority: 6, Cookie: flows.CookieMarker | 10,
			Match:   flows.Match{Metadata: 0xabc, MetadataMask: ^uint64(0)},
			Actions: flows.Actions{WriteMetadata: 5, WriteMetadataMask: 0xff, Output: 3, Goto: true, GotoTable: 9}},
	)
	entries, err := decodeFlowStats(encodeDump(fs), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != len(fs) {
		t.Fatalf("decoded %d entries, want %d", len(entries), len(fs))
	}
	for i, e := range entries {
		if e.Foreign {
			t.Fatalf("entry %d foreign: %s", i, e.ForeignReason)
		}
		if want := canonicalFlow(fs[i]); e.Flow != want {
			t.Errorf("entry %d:\n got %+v\nwant %+v", i, e.Flow, want)
		}
		if e.Packets != 1 || e.Bytes != 64 {
			t.Errorf("entry %d counters %d/%d", i, e.Packets, e.Bytes)
		}
	}
}

func TestCanonicalFlow(t *testing.T) {
	f := flows.Flow{Match: flows.Match{Src: netip.MustParsePrefix("0.0.0.0/0"), Dst: netip.MustParsePrefix("10.1.2.3/16"), Metadata: 0xff, MetadataMask: 0xf},
		Actions: flows.Actions{WriteMetadata: 0xff, WriteMetadataMask: 0x0f, GotoTable: 3}}
	got := canonicalFlow(f)
	if got.Match.Src.IsValid() || got.Match.Dst != netip.MustParsePrefix("10.1.0.0/16") || got.Match.Metadata != 0xf ||
		got.Actions.WriteMetadata != 0xf || got.Actions.GotoTable != 0 {
		t.Fatalf("canonicalFlow = %+v", got)
	}
}

// foreignEntry replaces the match or instructions of an encoded entry.
func rawEntry(cookie uint64, match, instr []byte) []byte {
	b := be16(nil, 0)
	b = append(b, 4, 0)
	b = pad(b, 8)
	b = be16(b, 77)
	b = pad(b, 10)
	b = be64(b, cookie)
	b = pad(b, 16)
	b = append(b, match...)
	b = append(b, instr...)
	binary.BigEndian.PutUint16(b, uint16(len(b)))
	return b
}

func rawMatch(oxms ...[]byte) []byte {
	b := be16(nil, 1)
	b = be16(b, 0)
	for _, o := range oxms {
		b = append(b, o...)
	}
	binary.BigEndian.PutUint16(b[2:], uint16(len(b)))
	return pad(b, (8-len(b)%8)%8)
}

func TestDecodeForeignShapes(t *testing.T) {
	ethIP := []byte{0x80, 0, oxmEthType << 1, 2, 0x08, 0x00}
	good := encodeFlowStatsEntry(flows.Flow{Table: 1, Priority: 2, Cookie: flows.CookieMarker | 1, Match: flows.Match{EthType: 0x0800}}, 0)
	good2 := encodeFlowStatsEntry(flows.Flow{Table: 1, Priority: 3, Cookie: flows.CookieMarker | 2, Match: flows.Match{EthType: 0x0800}}, 0)
	cases := []struct {
		name  string
		entry []byte
	}{
		{"experimenter oxm class", rawEntry(flows.CookieMarker, rawMatch([]byte{0xff, 0xff, 2, 8, 0, 0, 0x23, 0x20, 1, 2, 3, 4}), nil)},
		{"nicira oxm class", rawEntry(flows.CookieMarker, rawMatch([]byte{0, 1, 2, 4, 0, 0, 0, 1}), nil)},
		{"unknown basic field", rawEntry(flows.CookieMarker, rawMatch(ethIP, []byte{0x80, 0, 8 << 1, 1, 4}), nil)},
		{"non-contiguous mask", rawEntry(flows.CookieMarker, rawMatch(ethIP, []byte{0x80, 0, oxmIPv4Src<<1 | 1, 8, 10, 0, 0, 0, 255, 0, 255, 0}), nil)},
		{"set-field action", rawEntry(flows.CookieMarker, rawMatch(ethIP), []byte{0, 4, 0, 24, 0, 0, 0, 0, 0, 25, 0, 16, 0x80, 0, 16, 1, 4, 0, 0, 0, 0, 0, 0, 0})},
		{"experimenter action", rawEntry(flows.CookieMarker, rawMatch(ethIP), []byte{0, 4, 0, 24, 0, 0, 0, 0, 0xff, 0xff, 0, 16, 0, 0, 0x23, 0x20, 0, 1, 0, 0, 0, 0, 0, 0})},
		{"write_actions", rawEntry(flows.CookieMarker, rawMatch(ethIP), []byte{0, 3, 0, 8, 0, 0, 0, 0})},
		{"meter", rawEntry(flows.CookieMarker, rawMatch(ethIP), []byte{0, 6, 0, 8, 0, 0, 0, 1})},
		{"two outputs", rawEntry(flows.CookieMarker, rawMatch(ethIP), []byte{0, 4, 0, 40, 0, 0, 0, 0, 0, 0, 0, 16, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 16, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0})},
		{"bad match type", rawEntry(flows.CookieMarker, []byte{0, 0, 0, 8, 0, 0, 0, 0}, nil)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			payload := append(append(append([]byte(nil), good...), tc.entry...), good2...)
			entries, err := decodeFlowStats(payload, nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(entries) != 3 || entries[0].Foreign || !entries[1].Foreign || entries[2].Foreign {
				t.Fatalf("entries = %+v", entries)
			}
			if entries[1].Flow.Priority != 77 || entries[1].Flow.Cookie != flows.CookieMarker {
				t.Fatalf("foreign entry lost its identity: %+v", entries[1])
			}
			plan := planChanges(nil, entries)
			// 2 good entries not desired → 2 deletes; the foreign one is
			// deleted by raw match when it is addressable.
			wantDeletes := 3
			if tc.name == "bad match type" {
				wantDeletes = 2
			}
			if len(plan.Mods) != wantDeletes {
				t.Fatalf("plan = %d mods, want %d", len(plan.Mods), wantDeletes)
			}
			for _, m := range plan.Mods {
				if m.Command != fmcDeleteStrict || m.CookieMask != ^uint64(0) {
					t.Fatalf("non-strict or non-exact delete %+v", m)
				}
			}
		})
	}
}

func TestDecodeFlowStatsBadFraming(t *testing.T) {
	good := encodeFlowStatsEntry(flows.Flow{Cookie: flows.CookieMarker}, 0)
	for name, payload := range map[string][]byte{
		"short tail":      append(append([]byte(nil), good...), 1, 2, 3),
		"length too big":  append([]byte{0xff, 0xff}, good[2:]...),
		"length below 56": append([]byte{0, 8}, good[2:]...),
	} {
		if _, err := decodeFlowStats(payload, nil); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// planChanges never deletes or modifies a flow without op25b's cookie and
// turns cookie-only changes into ADDs.
func TestPlanChanges(t *testing.T) {
	desired := pipelineFlows()
	installed := pipelineFlows()
	installed[0].Cookie |= 0x77                                                                      // cookie differs → ADD
	installed[1].Actions = flows.Actions{Output: 2}                                                  // actions differ → MODIFY_STRICT
	installed = append(installed[:5], installed[6:]...)                                              // missing → ADD
	installed = append(installed, flows.Flow{Table: 9, Priority: 1, Cookie: flows.CookieMarker | 5}) // extra → DELETE_STRICT
	var entries []InstalledEntry
	for _, f := range installed {
		entries = append(entries, InstalledEntry{Flow: f})
	}
	plan := planChanges(desired, entries)
	count := map[uint8]int{}
	for _, m := range plan.Mods {
		count[m.Command]++
		if m.Command == fmcModifyStrict && m.CookieMask != ^uint64(0) {
			t.Fatalf("modify not restricted to the exact cookie: %+v", m)
		}
	}
	if count[fmcAdd] != 2 || count[fmcModifyStrict] != 1 || count[fmcDeleteStrict] != 1 {
		t.Fatalf("plan commands = %v", count)
	}
	if p := planChanges(desired, entriesOf(desired)); len(p.Mods) != 0 {
		t.Fatalf("no-op plan has %d mods", len(p.Mods))
	}
}

func entriesOf(fs []flows.Flow) []InstalledEntry {
	var out []InstalledEntry
	for _, f := range fs {
		out = append(out, InstalledEntry{Flow: canonicalFlow(f)})
	}
	return out
}

func TestHelloAccepts(t *testing.T) {
	bitmap := func(bits uint32) []byte { return be32(be16(be16(nil, 1), 8), bits) }
	cases := []struct {
		version uint8
		body    []byte
		want    bool
	}{
		{4, nil, true},
		{5, nil, true}, // min(5, 4) = 4
		{1, nil, false},
		{6, bitmap(1<<4 | 1<<6), true},
		{6, bitmap(1 << 6), false},
		{4, []byte{0, 1, 0}, true},                // truncated element ignored
		{4, []byte{0, 9, 0, 4, 0, 0, 0, 0}, true}, // unknown element skipped
	}
	for i, tc := range cases {
		if got := helloAccepts(header{Version: tc.version}, tc.body); got != tc.want {
			t.Errorf("case %d: helloAccepts = %v, want %v", i, got, tc.want)
		}
	}
}

func TestParseErrorAttribution(t *testing.T) {
	// xid 0 in the header: fall back to the echoed request's xid.
	body := []byte{0, 5, 0, 1, 4, 14, 0, 8, 0, 0, 0, 42}
	e, err := parseError(header{XID: 0}, body)
	if err != nil || e.XID != 42 || e.TypeName() != "ErrTypeFlowModFailed" {
		t.Fatalf("parseError = %+v, %v", e, err)
	}
	if _, err := parseError(header{}, []byte{0xff, 0xff, 0, 1}); err == nil {
		t.Fatal("short experimenter error accepted")
	}
}

// FuzzDecode feeds arbitrary bytes through the framing and every decoder
// the session uses on switch input. It must never panic, and any entry that
// decodes as op25b's must survive a re-encode unchanged.
func FuzzDecode(f *testing.F) {
	f.Add(encodeHello(nil, 1))
	f.Add(encodeSimple(nil, typeEchoRequest, 3, []byte("x")))
	f.Add(append(appendHeader(nil, typeError, 5), 0, 1, 0, 2))
	mp := appendHeader(nil, typeMultipartRep, 7)
	mp = be16(mp, multipartFlow)
	mp = be16(mp, 0)
	mp = pad(mp, 4)
	mp = append(mp, encodeDump(pipelineFlows()[:4])...)
	f.Add(finish(mp, 0))
	f.Add(encodeBundleControl(nil, 9, 1, bundleCommitReply))
	f.Add(encodeRoleRequest(nil, 11, roleMaster, 5))
	f.Add([]byte{4, 0, 0, 4})
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bufio.NewReader(bytes.NewReader(data))
		for {
			h, body, err := readMessage(r)
			if err != nil {
				return
			}
			decodeAny(t, h, body)
		}
	})
}

func decodeAny(t *testing.T, h header, body []byte) {
	_ = helloAccepts(h, body)
	_, _ = parseError(h, body)
	_, _, _ = parseFeatures(body)
	_, _, _ = parseRoleReply(body)
	_, _, _ = parseBundleControl(body)
	_, _, payload, err := parseMultipart(body)
	if err != nil {
		payload = body
	}
	entries, _ := decodeFlowStats(payload, nil)
	for _, e := range entries {
		if e.Foreign {
			continue
		}
		again, err := decodeFlowStats(encodeFlowStatsEntry(e.Flow, 0), nil)
		if err != nil || len(again) != 1 || again[0].Foreign || again[0].Flow != canonicalFlow(e.Flow) {
			t.Fatalf("re-encode of %+v: %+v %v", e.Flow, again, err)
		}
	}
}

// referencePlan is the obvious plan: flows.Diff over the complete sets.
func referencePlan(desired []flows.Flow, entries []InstalledEntry) []flowMod {
	p := planChanges(nil, nil)
	var installed []flows.Flow
	cookieOf := map[flows.Key]uint64{}
	for _, e := range entries {
		installed = append(installed, e.Flow)
		cookieOf[e.Flow.Key()] = e.Flow.Cookie
	}
	for _, ch := range flows.Diff(canonicalAll(desired), installed) {
		f := ch.Flow
		switch {
		case ch.Op == flows.OpAdd || (ch.Op == flows.OpModify && cookieOf[f.Key()] != f.Cookie):
			p.Mods = append(p.Mods, flowMod{Command: fmcAdd, Table: f.Table, Priority: f.Priority, Cookie: f.Cookie, Match: f.Match, Actions: f.Actions})
		case ch.Op == flows.OpModify:
			p.Mods = append(p.Mods, flowMod{Command: fmcModifyStrict, Table: f.Table, Priority: f.Priority, Cookie: f.Cookie, CookieMask: ^uint64(0), Match: f.Match, Actions: f.Actions})
		case ch.Op == flows.OpDelete:
			p.Mods = append(p.Mods, flowMod{Command: fmcDeleteStrict, Table: f.Table, Priority: f.Priority, Cookie: f.Cookie, CookieMask: ^uint64(0), Match: f.Match})
		}
	}
	return p.Mods
}

// The indexed plan (diffing only what differs) equals flows.Diff over the
// complete sets, for random perturbations of a policy.
func TestPlanEqualsFullDiff(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	extra := dropFlows(200, netip.MustParseAddr("10.9.0.0"))
	base := append(pipelineFlows(), extra[:len(extra)-1]...) // without its catch-all: keys unique, as Compile guarantees
	for iter := 0; iter < 300; iter++ {
		var installed []flows.Flow
		for _, f := range base {
			switch rng.IntN(10) {
			case 0: // missing
			case 1:
				f.Actions = flows.Actions{Output: flows.PortNormal}
				installed = append(installed, f)
			case 2:
				f.Cookie ^= 0x10
				installed = append(installed, f)
			default:
				installed = append(installed, f)
			}
		}
		for i := 0; i < rng.IntN(5); i++ {
			installed = append(installed, flows.Flow{Table: 7, Priority: uint16(i), Cookie: flows.CookieMarker | 77})
		}
		entries := entriesOf(installed)
		got := planChanges(base, entries).Mods
		want := referencePlan(base, entries)
		if len(got) != len(want) {
			t.Fatalf("iter %d: %d mods, reference %d", iter, len(got), len(want))
		}
		for i := range got {
			if fmt.Sprint(got[i]) != fmt.Sprint(want[i]) {
				t.Fatalf("iter %d mod %d:\n got %+v\nwant %+v", iter, i, got[i], want[i])
			}
		}
	}
}
