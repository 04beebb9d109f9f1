package controller

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/netrack/openflow/ofp"

	"github.com/op25b/op25b/controller/ofwire"
	"github.com/op25b/op25b/flows"
)

// Entries op25b cannot represent are deleted strictly by their raw match
// when they carry op25b's cookie and can be addressed, never otherwise;
// the decoding itself is ofwire's (TestDecodeForeignShapes there).
func TestPlanForeignEntries(t *testing.T) {
	raw := []byte{0, 1, 0, 8, 0, 1, 2, 4, 0, 0, 0, 1, 0, 0, 0, 0}
	entries := []ofwire.FlowStatsEntry{
		{Flow: flows.Flow{Table: 1, Priority: 2, Cookie: flows.CookieMarker | 1, Match: flows.Match{EthType: 0x0800}}},
		{Flow: flows.Flow{Table: 4, Priority: 77, Cookie: flows.CookieMarker}, Foreign: true, ForeignReason: "oxm class 0x1", RawMatch: raw},
		{Flow: flows.Flow{Table: 4, Priority: 78, Cookie: flows.CookieMarker}, Foreign: true, ForeignReason: "bad match header"},     // unaddressable
		{Flow: flows.Flow{Table: 4, Priority: 79, Cookie: 0x1234}, Foreign: true, ForeignReason: "action type 65535", RawMatch: raw}, // not ours
	}
	plan := planChanges(nil, entries)
	if len(plan.Mods) != 2 || plan.Foreign != 1 {
		t.Fatalf("plan = %d mods, %d foreign; want 2 deletes, 1 foreign", len(plan.Mods), plan.Foreign)
	}
	for _, m := range plan.Mods {
		if m.Command != ofp.FlowDeleteStrict || m.CookieMask != ^uint64(0) || !flows.Owned(m.Cookie) {
			t.Fatalf("non-strict, non-exact or foreign-cookie delete %+v", m)
		}
	}
	if m := plan.Mods[0]; m.Priority != 77 || string(m.RawMatch) != string(raw) {
		t.Fatalf("foreign entry not deleted by its raw match: %+v", m)
	}
	// A desired flow with the foreign entry's key comes back in the same plan.
	want := flows.Flow{Table: 4, Priority: 77, Cookie: flows.CookieMarker, Match: flows.Match{EthType: 0x0800}}
	plan = planChanges([]flows.Flow{entries[0].Flow, want}, entries)
	if len(plan.Mods) != 2 || plan.Mods[0].Command != ofp.FlowDeleteStrict || plan.Mods[1].Command != ofp.FlowAdd || plan.Mods[1].Priority != 77 {
		t.Fatalf("plan = %+v", plan.Mods)
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
	var entries []ofwire.FlowStatsEntry
	for _, f := range installed {
		entries = append(entries, ofwire.FlowStatsEntry{Flow: f})
	}
	plan := planChanges(desired, entries)
	count := map[ofp.FlowModCommand]int{}
	for _, m := range plan.Mods {
		count[m.Command]++
		if m.Command == ofp.FlowModifyStrict && m.CookieMask != ^uint64(0) {
			t.Fatalf("modify not restricted to the exact cookie: %+v", m)
		}
	}
	if count[ofp.FlowAdd] != 2 || count[ofp.FlowModifyStrict] != 1 || count[ofp.FlowDeleteStrict] != 1 {
		t.Fatalf("plan commands = %v", count)
	}
	if p := planChanges(desired, entriesOf(desired)); len(p.Mods) != 0 {
		t.Fatalf("no-op plan has %d mods", len(p.Mods))
	}
}

// entriesOf is a dump of fs as the switch reports them.
func entriesOf(fs []flows.Flow) []ofwire.FlowStatsEntry {
	var out []ofwire.FlowStatsEntry
	for _, f := range fs {
		out = append(out, ofwire.FlowStatsEntry{Flow: ofwire.Canonical(f)})
	}
	return out
}

// referencePlan is the obvious plan: flows.Diff over the complete sets.
func referencePlan(desired []flows.Flow, entries []ofwire.FlowStatsEntry) []ofwire.FlowMod {
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
			p.Mods = append(p.Mods, ofwire.FlowMod{Command: ofp.FlowAdd, Table: f.Table, Priority: f.Priority, Cookie: f.Cookie, Match: f.Match, Actions: f.Actions})
		case ch.Op == flows.OpModify:
			p.Mods = append(p.Mods, ofwire.FlowMod{Command: ofp.FlowModifyStrict, Table: f.Table, Priority: f.Priority, Cookie: f.Cookie, CookieMask: ^uint64(0), Match: f.Match, Actions: f.Actions})
		case ch.Op == flows.OpDelete:
			p.Mods = append(p.Mods, ofwire.FlowMod{Command: ofp.FlowDeleteStrict, Table: f.Table, Priority: f.Priority, Cookie: f.Cookie, CookieMask: ^uint64(0), Match: f.Match})
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

// Planning from the set the last reconcile installed (no dump, while flow
// monitoring vouches that nothing else changed) gives exactly the plan a
// dump of that set would: for random pairs of desired sets, old and new.
func TestPlanFromKnownEqualsDump(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	extra := dropFlows(200, netip.MustParseAddr("10.9.0.0"))
	base := append(pipelineFlows(), extra[:len(extra)-1]...)
	perturb := func() []flows.Flow {
		var out []flows.Flow
		for _, f := range base {
			switch rng.IntN(12) {
			case 0: // left out
			case 1:
				f.Actions = flows.Actions{Output: flows.PortNormal}
				out = append(out, f)
			case 2:
				f.Cookie ^= 0x10
				out = append(out, f)
			default:
				out = append(out, f)
			}
		}
		for i := 0; i < rng.IntN(5); i++ {
			out = append(out, flows.Flow{Table: 3, Priority: uint16(1000 + i), Cookie: flows.CookieMarker,
				Match: flows.Match{EthType: 0x0800, Src: netip.PrefixFrom(netip.AddrFrom4([4]byte{192, 168, byte(i), byte(rng.IntN(200))}), 32)}})
		}
		return out
	}
	for iter := 0; iter < 300; iter++ {
		old, neu := perturb(), perturb()
		got := newDesiredIndex(neu).planFrom(newDesiredIndex(old)).Mods
		want := newDesiredIndex(neu).plan(entriesOf(old)).Mods
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("iter %d:\n from known %v\n from dump  %v", iter, got, want)
		}
	}
}
