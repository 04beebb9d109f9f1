package flows

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/op25b/op25b/topology"
)

// checkAgainstReference compiles doc for every bridge and instant of
// interest and asserts Simulate(Compile) == Evaluate for every packet.
func checkAgainstReference(t *testing.T, doc *topology.Document, packets []Packet, opts Options) {
	t.Helper()
	for _, dpid := range genDPIDs {
		pop := dpidPop(doc, dpid)
		for _, at := range genInstants(doc) {
			c, err := Compile(doc, dpid, at, opts)
			if err != nil {
				t.Fatalf("compile: %v", err)
			}
			for _, p := range packets {
				e := Explain(doc, pop, at, p)
				want := e.Verdict
				referenceRules[e.Rule]++
				if e.Observe {
					referenceRules["observe"]++
				}
				if len(e.Lapsed) > 0 {
					referenceRules["lapsed"]++
				}
				if got := Simulate(c.Flows, opts, p); got != want {
					js, _ := json.Marshal(doc)
					t.Fatalf("pop %q at %s packet %+v: Simulate = %v, Evaluate = %v\ndocument: %s\nflows:\n%s",
						pop, at.Format(time.RFC3339Nano), p, got, want, js, RenderSet(c.Flows))
				}
			}
		}
	}
}

// referenceRules counts the rules that decided the packets
// checkAgainstReference compared, so that a generator change that stops
// exercising one is noticed.
var referenceRules = map[Rule]int{}

func TestCompileMatchesReference(t *testing.T) {
	clear(referenceRules)
	defer func() {
		t.Logf("rules: %v", referenceRules)
		for _, r := range []Rule{RuleQuarantine, RuleExemption, RuleNoPool, RuleStatic, RuleNoPhase, RuleRelay, RuleBlockAll, RuleBlockedSet, RuleNotBlocked, RuleNotSMTP, "observe", "lapsed"} {
			if referenceRules[r] < 100 {
				t.Errorf("only %d packets decided by %s: the generator no longer exercises it", referenceRules[r], r)
			}
		}
	}()
	docs := 300
	if testing.Short() {
		docs = 50
	}
	for seed := range uint64(docs) {
		r := rand.New(rand.NewPCG(seed, 1))
		doc := genDoc(t, r)
		opts := DefaultOptions()
		if seed%5 == 0 {
			opts = Options{FirstTable: 5, Continue: Actions{Goto: true, GotoTable: 30}}
		}
		checkAgainstReference(t, doc, genPackets(r, doc, 60), opts)
	}
}

// apply performs one change the way an OpenFlow 1.3 switch does: add
// replaces an identical (table, priority, match) entry, modify-strict
// changes an existing entry's actions only (never adds, OF1.3 §6.4), delete
// strict removes it.
func apply(set map[Key]Flow, c Change) {
	k := c.Flow.Key()
	switch c.Op {
	case OpAdd:
		set[k] = c.Flow
	case OpModify:
		if old, ok := set[k]; ok {
			old.Actions = c.Flow.Actions
			old.Cookie = c.Flow.Cookie // sent as an ADD when the cookie differs
			set[k] = old
		}
	case OpDelete:
		delete(set, k)
	}
}

func flowsOf(set map[Key]Flow) []Flow {
	out := make([]Flow, 0, len(set))
	for _, f := range set {
		out = append(out, f)
	}
	return out
}

func keyed(fs []Flow) map[Key]Flow {
	m := make(map[Key]Flow, len(fs))
	for _, f := range fs {
		m[f.Key()] = f
	}
	return m
}

// diffChecks counts what the diff property tests exercised, so a generator
// change that stops producing interesting cases is noticed.
var diffChecks struct{ runs, changes, verdicts int }

// checkDiff asserts that applying Diff(desired, installed) one change at a
// time ends at desired, that every intermediate state drops every packet
// both ends drop, and that the diff is minimal.
func checkDiff(t *testing.T, installed, desired []Flow, opts Options, packets []Packet) []Change {
	t.Helper()
	diffChecks.runs++
	changes := Diff(desired, installed)
	oldV := make([]Verdict, len(packets))
	newV := make([]Verdict, len(packets))
	for i, p := range packets {
		oldV[i], newV[i] = Simulate(installed, opts, p), Simulate(desired, opts, p)
	}
	state := keyed(installed)
	for step, c := range changes {
		diffChecks.changes++
		apply(state, c)
		current := flowsOf(state)
		for i, p := range packets {
			if oldV[i] == Drop && newV[i] == Drop {
				diffChecks.verdicts++
			}
			if oldV[i] == Drop && newV[i] == Drop && Simulate(current, opts, p) != Drop {
				var log string
				for j, c := range changes {
					mark := "  "
					if j == step {
						mark = "=>"
					}
					log += mark + RenderChange(c) + "\n"
				}
				t.Fatalf("after change %d of %d, packet %+v is forwarded although old and new both drop it\nchanges:\n%s\ninstalled:\n%s\ndesired:\n%s",
					step+1, len(changes), p, log, RenderSet(installed), RenderSet(desired))
			}
		}
	}
	if got, want := RenderSet(flowsOf(state)), RenderSet(desired); got != want {
		t.Fatalf("applying the diff gives\n%s\nwant\n%s", got, want)
	}
	// Minimal: nothing for identical flows, one change per differing key.
	old := keyed(installed)
	seen := map[Key]bool{}
	for _, c := range changes {
		k := c.Flow.Key()
		if seen[k] {
			t.Fatalf("two changes for %s", Render(c.Flow))
		}
		seen[k] = true
		if f, ok := old[k]; ok && c.Op != OpDelete && f == c.Flow {
			t.Fatalf("change for an identical flow: %s", RenderChange(c))
		}
	}
	return changes
}

func TestDiffMakeBeforeBreak(t *testing.T) {
	pairs := 1000
	if testing.Short() {
		pairs = 100
	}
	for seed := range uint64(pairs) {
		r := rand.New(rand.NewPCG(seed, 2))
		a, b := genDoc(t, r), genDoc(t, r)
		if seed%3 == 0 {
			b = mutate(r, a)
			if err := topology.Validate(b); err != nil {
				t.Fatalf("mutate made an invalid document: %v", err)
			}
		}
		opts := DefaultOptions()
		if seed%5 == 1 {
			opts = Options{FirstTable: 7, Continue: Actions{Goto: true, GotoTable: 40}}
		}
		dpid := pick(r, genDPIDs)
		atA, atB := pick(r, genInstants(a)), pick(r, genInstants(b))
		if seed%4 == 0 {
			atB = atA // same instant, different document
		}
		fa := mustCompile(t, a, dpid, atA, opts).Flows
		fb := mustCompile(t, b, dpid, atB, opts).Flows
		packets := append(genPackets(r, a, 40), genPackets(r, b, 40)...)
		checkDiff(t, fa, fb, opts, packets)
		if seed%10 == 0 {
			checkDiff(t, nil, fb, opts, packets) // first install on an empty bridge
			checkDiff(t, fa, nil, opts, packets) // removing op25b
		}
	}
	t.Logf("%d diffs, %d intermediate verdicts checked", diffChecks.runs, diffChecks.verdicts)
	if diffChecks.verdicts < 10*pairs {
		t.Errorf("only %d intermediate verdicts checked: the generator no longer makes interesting pairs", diffChecks.verdicts)
	}
}

// mutate returns a copy of doc with one small edit, the kind an operator
// makes: a pool added, removed, or switched static↔dynamic; a phase
// switched between enforce and observe; a quarantine or an exemption added
// or removed.
func mutate(r *rand.Rand, doc *topology.Document) *topology.Document {
	data, _ := json.Marshal(doc)
	var out topology.Document
	_ = json.Unmarshal(data, &out)
	switch i := r.IntN(len(out.Pools)); r.IntN(6) {
	case 3:
		s := &out.Services[r.IntN(len(out.Services))]
		ph := &s.Phases[r.IntN(len(s.Phases))]
		if ph.Observes() {
			ph.Mode = ""
		} else {
			ph.Mode = topology.ModeObserve
		}
	case 4:
		if len(out.Quarantines) > 0 && r.IntN(2) == 0 {
			out.Quarantines = out.Quarantines[1:]
			break
		}
		p := out.Pools[i].Prefix
		for _, q := range out.Quarantines {
			if q.Prefix == p {
				return &out
			}
		}
		out.Quarantines = append(out.Quarantines, topology.Quarantine{Name: "added", Prefix: p, Until: genBase.Add(time.Hour).Format(time.RFC3339),
			Reason: "mutated", Ticket: "M-1"})
	case 5:
		if len(out.Exemptions) > 0 && r.IntN(2) == 0 {
			out.Exemptions = out.Exemptions[1:]
			break
		}
		p := out.Pools[i].Prefix
		for _, e := range out.Exemptions {
			if e.Prefix == p {
				return &out
			}
		}
		out.Exemptions = append(out.Exemptions, topology.Exemption{Name: "added", Prefix: p, Until: genBase.Add(time.Hour).Format(time.RFC3339),
			Reason: "mutated", Ticket: "M-1"})
	case 0:
		out.Pools = append(out.Pools[:i], out.Pools[i+1:]...)
	case 1:
		if out.Pools[i].Kind == topology.KindStatic {
			out.Pools[i].Kind, out.Pools[i].Service = topology.KindDynamic, pick(r, out.Services).Name
		} else {
			out.Pools[i].Kind, out.Pools[i].Service = topology.KindStatic, ""
		}
	case 2:
		used := map[string]bool{}
		for _, p := range out.Pools {
			used[p.Prefix] = true
		}
		if p := genPrefix(r); !used[p] {
			out.Pools = append(out.Pools, topology.Pool{Name: "added", Prefix: p, Kind: topology.KindDynamic, Service: pick(r, out.Services).Name})
		}
	}
	return &out
}

// TestDiffOnePoolIsSmall proves id stability: at 10k pools, adding or
// removing one pool changes at most two flows (its source flow and its
// drop-count flow) and touches no other pool.
func TestDiffOnePoolIsSmall(t *testing.T) {
	doc := syntheticDoc(10_000, 4)
	base := mustCompile(t, doc, stray, genBase, DefaultOptions()).Flows

	grown := syntheticDoc(10_000, 4)
	grown.Pools = append(grown.Pools, topology.Pool{Name: "aaa-new", Prefix: "172.16.0.0/24", Kind: topology.KindDynamic, Service: "svc-1"})
	added := Diff(mustCompile(t, grown, stray, genBase, DefaultOptions()).Flows, base)
	if len(added) != 2 || added[0].Op != OpAdd || added[1].Op != OpAdd {
		t.Errorf("adding one dynamic pool: %d changes, want 2 adds:\n%s", len(added), renderChanges(added))
	}

	shrunk := syntheticDoc(10_000, 4)
	shrunk.Pools = append(shrunk.Pools[:5], shrunk.Pools[6:]...) // pool-000005, dynamic
	removed := Diff(mustCompile(t, shrunk, stray, genBase, DefaultOptions()).Flows, base)
	if len(removed) != 2 || removed[0].Op != OpDelete || removed[1].Op != OpDelete {
		t.Errorf("removing one dynamic pool: %d changes, want 2 deletes:\n%s", len(removed), renderChanges(removed))
	}

	static := syntheticDoc(10_000, 4)
	static.Pools[5].Kind, static.Pools[5].Service = topology.KindStatic, ""
	switched := Diff(mustCompile(t, static, stray, genBase, DefaultOptions()).Flows, base)
	if len(switched) != 2 {
		t.Errorf("making one pool static: %d changes, want a modify and a delete:\n%s", len(switched), renderChanges(switched))
	}
}

func renderChanges(cs []Change) string {
	var s string
	for _, c := range cs {
		s += RenderChange(c) + "\n"
	}
	return s
}

func TestStableIDs(t *testing.T) {
	names := []string{"a", "b", "c", "tokyo-dyn", "osaka-dyn"}
	ids := stableIDs(names)
	more := stableIDs(append([]string{"zzz", "0first"}, names...))
	for _, n := range names {
		if ids[n] == 0 || ids[n] != more[n] {
			t.Errorf("id of %q changed from %d to %d when other names were added", n, ids[n], more[n])
		}
	}
	// Collisions probe deterministically and stay unique.
	big := make([]string, 0, 200_000)
	for i := range 200_000 {
		big = append(big, fmt.Sprintf("pool-%d", i))
	}
	seen := map[uint32]bool{}
	for _, id := range stableIDs(big) {
		if id == 0 || seen[id] {
			t.Fatalf("id %d zero or reused", id)
		}
		seen[id] = true
	}
}

// TestDiffPhaseBoundaryIsSmall: a scheduled phase change (block
// mobile-carriers → block all) at 10k pools touches only the service's
// destination-table flows, never the pools' source flows.
func TestDiffPhaseBoundaryIsSmall(t *testing.T) {
	doc := syntheticDoc(10_000, 4)
	boundary := genBase.Add(time.Hour)
	doc.Services[1].Phases = append(doc.Services[1].Phases, topology.Phase{
		From: boundary.Format(time.RFC3339), Block: topology.Block{All: true},
	})
	if err := topology.Validate(doc); err != nil {
		t.Fatal(err)
	}
	before := mustCompile(t, doc, stray, boundary.Add(-time.Nanosecond), DefaultOptions()).Flows
	after := mustCompile(t, doc, stray, boundary, DefaultOptions()).Flows
	changes := Diff(after, before)
	// svc-1 blocked 8 mobile prefixes: 8 deletes and its default modified.
	if len(changes) != 9 {
		t.Fatalf("phase boundary: %d changes, want 9:\n%s", len(changes), renderChanges(changes))
	}
	for _, c := range changes {
		if CookieRole(c.Flow.Cookie) != RoleDestination {
			t.Errorf("phase boundary touched %s", RenderChange(c))
		}
	}
}
