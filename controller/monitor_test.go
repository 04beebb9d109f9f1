package controller

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/netrack/openflow/ofp"

	"github.com/op25b/op25b/controller/ofwire"
	"github.com/op25b/op25b/controller/ofwire/ofwiretest"
	"github.com/op25b/op25b/flows"
)

// update is a decoded flow update for f, as the switch would report it.
func update(ev ofwire.FlowUpdateEvent, f flows.Flow) ofwire.FlowUpdate {
	return ofwire.FlowUpdate{Event: ev, Flow: ofwire.Canonical(f), MatchKnown: true}
}

// modString renders a flow-mod for comparisons in tests.
func modString(m ofwire.FlowMod) string {
	cmd := map[ofp.FlowModCommand]string{ofp.FlowAdd: "add", ofp.FlowModifyStrict: "modify_strict", ofp.FlowDeleteStrict: "delete_strict"}[m.Command]
	if m.RawMatch != nil {
		return fmt.Sprintf("%s table=%d priority=%d cookie=%#x raw=%x", cmd, m.Table, m.Priority, m.Cookie, m.RawMatch)
	}
	f := flows.Flow{Table: m.Table, Priority: m.Priority, Cookie: m.Cookie, Match: m.Match}
	if m.Command != ofp.FlowDeleteStrict {
		f.Actions = m.Actions
	}
	return cmd + " " + flows.Render(f)
}

func modStrings(mods []ofwire.FlowMod) []string {
	out := make([]string, len(mods))
	for i, m := range mods {
		out[i] = modString(m)
	}
	return out
}

// Each kind of foreign change is undone by the flow-mod a full reconcile
// would send for it, computed from the updates alone.
func TestRepairPlan(t *testing.T) {
	desired := pipelineFlows()
	idx := newDesiredIndex(desired)
	d0, d3, d8 := desired[0], desired[3], desired[8]
	extra := flows.Flow{Table: 1, Priority: 1200, Cookie: flows.CookieMarker | 1<<40 | 77,
		Match: flows.Match{EthType: flows.EthTypeIPv4, Src: netip.MustParsePrefix("10.9.0.0/16")}, Actions: flows.Actions{Output: flows.PortNormal}}
	foreignCookie := d3
	foreignCookie.Cookie = 0x1234
	otherController := extra
	otherController.Cookie = 0x1234
	changedActions := d8
	changedActions.Actions = flows.Actions{Output: flows.PortNormal}
	raw := []byte{0, 1, 0, 8, 0, 1, 0, 4, 0, 0, 0, 5, 0, 0, 0, 0} // reg0=5: a Nicira OXM
	setField := ofwire.FlowUpdate{Event: ofwire.FlowModified, Flow: flows.Flow{Table: d3.Table, Priority: d3.Priority, Cookie: d3.Cookie, Match: d3.Match},
		MatchKnown: true, Foreign: true, ForeignReason: "action type 25", RawMatch: raw}
	nicira := ofwire.FlowUpdate{Event: ofwire.FlowAdded, Flow: flows.Flow{Table: 2, Priority: 60, Cookie: flows.CookieMarker | 9},
		Foreign: true, ForeignReason: "oxm class 0x1", RawMatch: raw}
	withActions := func(f flows.Flow, a flows.Actions) flows.Flow { f.Actions = a; return f }

	cases := []struct {
		name    string
		updates []ofwire.FlowUpdate
		want    []string
		foreign int
	}{
		{"deleted desired flow is added back",
			[]ofwire.FlowUpdate{update(ofwire.FlowDeleted, d3)},
			[]string{"add " + flows.Render(d3)}, 0},
		{"added op25b-cookie flow is deleted",
			[]ofwire.FlowUpdate{update(ofwire.FlowAdded, extra)},
			[]string{"delete_strict " + flows.Render(withActions(extra, flows.Actions{}))}, 0},
		{"changed actions are modified back",
			[]ofwire.FlowUpdate{update(ofwire.FlowModified, changedActions)},
			[]string{"modify_strict " + flows.Render(d8)}, 0},
		{"another cookie on a desired key is replaced by an add",
			[]ofwire.FlowUpdate{update(ofwire.FlowAdded, foreignCookie)},
			[]string{"add " + flows.Render(d3)}, 0},
		{"another controller's flow is left alone",
			[]ofwire.FlowUpdate{update(ofwire.FlowAdded, otherController), update(ofwire.FlowDeleted, otherController)},
			nil, 0},
		{"changed and changed back: nothing",
			[]ofwire.FlowUpdate{update(ofwire.FlowModified, changedActions), update(ofwire.FlowModified, d8)},
			nil, 0},
		{"deleted and re-added as it was: nothing",
			[]ofwire.FlowUpdate{update(ofwire.FlowDeleted, d0), update(ofwire.FlowAdded, d0)},
			nil, 0},
		{"added and deleted again: nothing",
			[]ofwire.FlowUpdate{update(ofwire.FlowAdded, extra), update(ofwire.FlowDeleted, extra)},
			nil, 0},
		{"own changes (abbreviated) are ignored",
			[]ofwire.FlowUpdate{{Event: ofwire.FlowAbbrev, XID: 7}},
			nil, 0},
		{"foreign action on a desired key: strict delete by raw match, then the desired flow",
			[]ofwire.FlowUpdate{setField},
			[]string{fmt.Sprintf("delete_strict table=%d priority=%d cookie=%#x raw=%x", d3.Table, d3.Priority, d3.Cookie, raw), "add " + flows.Render(d3)}, 1},
		{"foreign match with op25b's cookie: strict delete by raw match",
			[]ofwire.FlowUpdate{nicira},
			[]string{fmt.Sprintf("delete_strict table=2 priority=60 cookie=%#x raw=%x", flows.CookieMarker|9, raw)}, 1},
		// Changes to other controllers' flows are not even queued, so
		// after an op25b-cookie flow is replaced by another cookie on the
		// same key the repair still deletes the op25b one: strict and with
		// the exact cookie, that delete matches nothing on the switch.
		{"op25b-cookie flow replaced by another cookie: a delete that matches nothing",
			[]ofwire.FlowUpdate{update(ofwire.FlowAdded, extra), update(ofwire.FlowAdded, otherController)},
			[]string{"delete_strict " + flows.Render(withActions(extra, flows.Actions{}))}, 0},
		{"foreign match removed again: nothing",
			[]ofwire.FlowUpdate{nicira, {Event: ofwire.FlowDeleted, Flow: nicira.Flow, Foreign: true, RawMatch: raw}},
			nil, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := idx.repairPlan(tc.updates)
			if got := modStrings(p.Mods); !slices.Equal(got, tc.want) || p.Foreign != tc.foreign {
				t.Fatalf("mods:\n%s\nwant:\n%s\nforeign %d, want %d", strings.Join(got, "\n"), strings.Join(tc.want, "\n"), p.Foreign, tc.foreign)
			}
			for _, m := range p.Mods {
				if m.Command != ofp.FlowAdd && (!flows.Owned(m.Cookie) || m.CookieMask != ^uint64(0)) {
					t.Fatalf("touches a flow that is not exactly ours: %s", modString(m))
				}
			}
		})
	}
}

// For random foreign changes to a switch that held the desired set, the
// targeted repair sends the same flow-mods as a full reconcile of the
// resulting flow table would.
func TestRepairPlanEqualsFullPlan(t *testing.T) {
	desired := pipelineFlows()
	idx := newDesiredIndex(desired)
	r := rand.New(rand.NewPCG(16, 1))
	pool := append([]flows.Flow(nil), desired...)
	for i := range 6 {
		pool = append(pool, flows.Flow{Table: uint8(i % 4), Priority: uint16(500 + i), Cookie: flows.CookieMarker | uint64(i)<<40 | 99,
			Match: flows.Match{EthType: flows.EthTypeIPv4, Dst: netip.MustParsePrefix(fmt.Sprintf("203.0.113.%d/32", i))}})
	}
	variants := []flows.Actions{{}, {Output: flows.PortNormal}, {Output: 3}, {Goto: true, GotoTable: 3}}
	for iter := range 500 {
		table := map[flows.Key]flows.Flow{}
		for _, f := range desired {
			table[f.Key()] = ofwire.Canonical(f)
		}
		var updates []ofwire.FlowUpdate
		for range 1 + r.IntN(6) {
			f := ofwire.Canonical(pool[r.IntN(len(pool))])
			switch r.IntN(4) {
			case 0:
				delete(table, f.Key())
				updates = append(updates, update(ofwire.FlowDeleted, f))
			case 1:
				f.Actions = variants[r.IntN(len(variants))]
				table[f.Key()] = f
				updates = append(updates, update(ofwire.FlowModified, f))
			case 2:
				if _, ok := idx.byKey[f.Key()]; !ok {
					continue // TestRepairPlan: another cookie on a key op25b does not want
				}
				f.Cookie = 0x4242 // another cookie on the key (an ADD replacing it)
				table[f.Key()] = f
				updates = append(updates, update(ofwire.FlowAdded, f))
			default:
				table[f.Key()] = f
				updates = append(updates, update(ofwire.FlowAdded, f))
			}
		}
		// The full reconcile sees only op25b-cookie flows (its dump filters
		// by cookie); a foreign cookie on a desired key looks missing.
		var dump []ofwire.FlowStatsEntry
		for _, f := range table {
			if flows.Owned(f.Cookie) {
				dump = append(dump, ofwire.FlowStatsEntry{Flow: f})
			}
		}
		full := modStrings(idx.plan(dump).Mods)
		repair := modStrings(idx.repairPlan(updates).Mods)
		slices.Sort(full)
		slices.Sort(repair)
		if !slices.Equal(full, repair) {
			t.Fatalf("case %d: updates %+v\nfull reconcile:\n%s\nrepair:\n%s", iter, updates, strings.Join(full, "\n"), strings.Join(repair, "\n"))
		}
	}
}

func TestMonitorQueue(t *testing.T) {
	desired := pipelineFlows()
	idx := newDesiredIndex(desired)
	body := func(fs ...flows.Flow) []byte {
		var ups [][]byte
		for _, f := range fs {
			ups = append(ups, ofwiretest.FlowUpdate(ofwire.FlowAdded, 0, f))
		}
		ups = append(ups, ofwiretest.FlowUpdateAbbrev(3))
		m := ofwiretest.FlowMonitorReply(0, ups...)
		return m[ofwire.HeaderLen+8:] // after the header and the multipart header
	}
	other := flows.Flow{Table: 1, Priority: 3, Cookie: 0x1234, Match: flows.Match{EthType: flows.EthTypeIPv4}}

	q := newMonitorQueue()
	q.relevant.Store(idx)
	if err := q.notify(body(desired[0], other)); err != nil {
		t.Fatal(err)
	}
	mark := q.mark()
	if err := q.notify(body(desired[1])); err != nil {
		t.Fatal(err)
	}
	select {
	case <-q.wake:
	default:
		t.Fatal("worker not woken")
	}
	// A dump completed at mark reflects the first notification.
	q.settled(mark)
	b := q.take()
	if len(b.updates) != 1 || b.updates[0].Flow.Cookie != desired[1].Cookie || b.resync {
		t.Fatalf("after settled: %+v", b)
	}

	// Pause: nothing queues, take owes nothing until RESUMED, which owes one audit.
	q.pause()
	_ = q.notify(body(desired[2]))
	if b := q.take(); !b.paused || len(b.updates) != 0 || b.resync {
		t.Fatalf("while paused: %+v", b)
	}
	q.resume()
	if b := q.take(); b.paused || !b.resync || len(b.updates) != 0 {
		t.Fatalf("after resume: %+v", b)
	}
	if b := q.take(); b.resync {
		t.Fatal("one pause owed two audits")
	}
	// An audit owed before a dump completed is settled by that dump.
	q.resume()
	q.settled(q.mark())
	if b := q.take(); b.resync {
		t.Fatal("audit still owed after a later dump")
	}

	// Overflow: more relevant updates than the bound → one full audit.
	var many []flows.Flow
	for i := range maxQueuedUpdates + 1 {
		many = append(many, flows.Flow{Table: 1, Priority: uint16(i % 60000), Cookie: flows.CookieMarker | uint64(i),
			Match: flows.Match{EthType: flows.EthTypeIPv4, Dst: netip.MustParsePrefix(fmt.Sprintf("10.%d.%d.%d/32", i>>16, i>>8&0xff, i&0xff))}})
	}
	for len(many) > 0 { // notifications of at most 500 updates (64 KiB)
		n := min(len(many), 500)
		_ = q.notify(body(many[:n]...))
		many = many[n:]
	}
	if b := q.take(); !b.resync || len(b.updates) != 0 {
		t.Fatalf("overflow: resync %v, %d updates", b.resync, len(b.updates))
	}
	if _, overflows := q.counts(); overflows != 1 {
		t.Fatalf("overflows = %d", overflows)
	}

	// An undecodable notification owes an audit too.
	if err := q.notify([]byte{0x4f, 0x4e, 0x46, 0, 0, 0, 7, 0x4e, 0, 9}); err == nil {
		t.Fatal("undecodable notification accepted")
	}
	if b := q.take(); !b.resync {
		t.Fatal("undecodable notification owed no audit")
	}
}

func TestMonitorIDs(t *testing.T) {
	if got := monitorIDs(newDesiredIndex(pipelineFlows())); len(got) != 4 || !got[1] || !got[4] {
		t.Fatalf("pipeline monitors %v, want tables 0-3 (ids 1-4)", got)
	}
	if got := monitorIDs(newDesiredIndex(nil)); len(got) != 1 || !got[monitorTableAll] {
		t.Fatalf("empty desired set monitors %v, want every table", got)
	}
}
