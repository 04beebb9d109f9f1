package flows

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/op25b/op25b/topology"
)

// helpdeskStage is an instant of testdata/helpdesk.json with verdicts
// written by hand from docs/semantics.md.
type helpdeskStage struct {
	name  string
	at    string
	cases []verdictCase
}

// helpdeskStages: exemptions, quarantines and observe mode, on both sides
// of every until and phase boundary of testdata/helpdesk.json (1 ns
// before, at).
func helpdeskStages() []helpdeskStage {
	const (
		exempted   = "10.1.3.7"
		trial      = "10.1.9.5"   // in exemption ticket-4800 (10.1.9.0/24)
		bot        = "10.1.9.9"   // quarantined, inside ticket-4800 too
		fixedBot   = "10.1.200.3" // quarantined, in a static pool
		fixed      = "10.1.200.4"
		dyn        = "10.1.3.8"
		osakaDyn   = "10.2.0.9"
		v6bot      = "2001:db8:1::9"
		stranger   = "172.16.0.1"
		mx, msa    = "203.0.113.25", "192.0.2.25"
		mobile6    = "2001:db8:ffff::1"
		otherV6Dst = "2001:db8:9::25"
	)
	return []helpdeskStage{
		{"before the rollout", "2026-10-31T23:59:59.999999999+09:00", []verdictCase{
			{"exempted host", tcp(exempted, mx, 25), Forward},
			{"quarantined dynamic host to the MX", tcp(bot, mx, 25), Drop},
			{"quarantined dynamic host to the relay", tcp(bot, msa, 25), Drop},
			{"quarantined host, port 587 untouched", tcp(bot, mx, 587), Forward},
			{"quarantined static host", tcp(fixedBot, mx, 25), Drop},
			{"its static neighbour", tcp(fixed, mx, 25), Forward},
			{"ordinary dynamic host", tcp(dyn, mx, 25), Forward},
			{"v6 quarantine", tcp(v6bot, otherV6Dst, 25), Drop},
		}},
		{"rollout, quarantines in force", "2026-11-01T00:00:00+09:00", []verdictCase{
			{"exempted host to the MX", tcp(exempted, mx, 25), Forward},
			{"exempted host to the relay", tcp(exempted, msa, 25), Forward},
			{"trial prefix", tcp(trial, mx, 25), Forward},
			{"quarantine beats the exemption around it", tcp(bot, mx, 25), Drop},
			{"quarantine drops toward the relay", tcp(bot, msa, 25), Drop},
			{"quarantined static host to the relay", tcp(fixedBot, msa, 25), Drop},
			{"ordinary dynamic host to the MX", tcp(dyn, mx, 25), Drop},
			{"ordinary dynamic host to the relay", tcp(dyn, msa, 25), Forward},
			{"observe mode forwards what it would drop", tcp(osakaDyn, mx, 25), Forward},
			{"v6 quarantine", tcp(v6bot, mobile6, 25), Drop},
			{"not a subscriber", tcp(stranger, mx, 25), Forward},
		}},
		{"1 ns before the quarantines lapse", "2026-11-30T02:59:59.999999999Z", []verdictCase{
			{"quarantined dynamic host", tcp(bot, mx, 25), Drop},
			{"quarantined static host", tcp(fixedBot, mx, 25), Drop},
		}},
		{"the quarantines lapse", "2026-11-30T12:00:00+09:00", []verdictCase{
			{"the bot falls back to its exemption", tcp(bot, mx, 25), Forward},
			{"the static host works again", tcp(fixedBot, mx, 25), Forward},
			{"the static host to the relay", tcp(fixedBot, msa, 25), Forward},
			{"v6 quarantine still in force", tcp(v6bot, otherV6Dst, 25), Drop},
		}},
		{"1 ns before the exemption lapses", "2026-11-30T14:59:59.999999999Z", []verdictCase{
			{"exempted host", tcp(exempted, mx, 25), Forward},
		}},
		{"the exemption lapses", "2026-12-01T00:00:00+09:00", []verdictCase{
			{"formerly exempted host to the MX", tcp(exempted, mx, 25), Drop},
			{"formerly exempted host to the relay", tcp(exempted, msa, 25), Forward},
			{"trial prefix still exempted", tcp(trial, mx, 25), Forward},
		}},
		{"the v6 quarantine lapses", "2026-12-10T00:00:00Z", []verdictCase{
			{"v6plus blocks all anyway", tcp(v6bot, otherV6Dst, 25), Drop},
			{"v6 port 587", tcp(v6bot, otherV6Dst, 587), Forward},
		}},
		{"observe turns into enforce", "2026-12-15T00:00:00+09:00", []verdictCase{
			{"osaka dynamic host", tcp(osakaDyn, mx, 25), Drop},
			{"osaka dynamic host to the relay", tcp(osakaDyn, msa, 25), Forward},
		}},
		{"everything lapsed", "2027-01-01T00:00:00Z", []verdictCase{
			{"trial prefix", tcp(trial, mx, 25), Drop},
			{"bot", tcp(bot, mx, 25), Drop},
			{"fixed bot", tcp(fixedBot, mx, 25), Forward},
		}},
	}
}

func TestCompileHelpdesk(t *testing.T) {
	doc := loadDoc(t, "testdata/helpdesk.json")
	for _, tt := range helpdeskStages() {
		t.Run(tt.name, func(t *testing.T) {
			at := mustParseTime(t, tt.at)
			checkVerdicts(t, doc, tokyo, at, DefaultOptions(), tt.cases)
			checkVerdicts(t, doc, stray, at, Options{FirstTable: 10, Continue: Actions{Goto: true, GotoTable: 20}}, tt.cases)
		})
	}
}

// TestCompileOverridesFlows: what the switch gets. Lapsed entries are not
// compiled; each quarantine in force is a source flow and its own drop
// counter, each exemption one source flow; observing pools get a
// forwarding counter instead of a drop.
func TestCompileOverridesFlows(t *testing.T) {
	doc := loadDoc(t, "testdata/helpdesk.json")
	count := func(c *Compiled, role Role, prioFrom, prioTo uint16) int {
		n := 0
		for _, f := range c.Flows {
			if f.Table == uint8(role) && f.Priority >= prioFrom && f.Priority <= prioTo {
				n++
			}
		}
		return n
	}
	for _, tc := range []struct {
		at                                    string
		quarantines, exemptions, observedPool int
	}{
		{"2026-11-01T00:00:00+09:00", 3, 2, 1},
		{"2026-11-30T12:00:00+09:00", 1, 2, 1},
		{"2026-12-01T00:00:00+09:00", 1, 1, 1},
		{"2026-12-15T00:00:00+09:00", 0, 1, 0},
		{"2027-01-01T00:00:00Z", 0, 0, 0},
	} {
		tm, _ := time.Parse(time.RFC3339, tc.at)
		c := mustCompile(t, doc, tokyo, tm, DefaultOptions())
		if got := count(c, RoleSource, prioQuarantineBase, prioQuarantineBase+128); got != tc.quarantines {
			t.Errorf("%s: %d quarantine source flows, want %d", tc.at, got, tc.quarantines)
		}
		if got := len(c.DropQuarantine); got != tc.quarantines {
			t.Errorf("%s: %d quarantine drop counters, want %d", tc.at, got, tc.quarantines)
		}
		if got := count(c, RoleSource, prioExemptionBase, prioExemptionBase+128); got != tc.exemptions {
			t.Errorf("%s: %d exemption flows, want %d", tc.at, got, tc.exemptions)
		}
		// Two counters per observing pool: its connection attempts (counted
		// per source too) and the rest of its sessions.
		if got := len(c.ObservePool); got != 2*tc.observedPool {
			t.Errorf("%s: %d observing pool counters, want %d", tc.at, got, tc.observedPool)
		}
		for k, pool := range c.ObservePool {
			if pool != "osaka-dyn" || k.Table != uint8(RoleDropCount) {
				t.Errorf("%s: observing counter %+v for %s", tc.at, k, pool)
			}
		}
		for k := range c.DropPool {
			if _, dup := c.ObservePool[k]; dup {
				t.Errorf("%s: %+v both drops and observes", tc.at, k)
			}
		}
		names := make([]string, 0, len(c.DropQuarantine))
		for _, q := range c.DropQuarantine {
			names = append(names, q)
		}
		slices.Sort(names)
		if tc.quarantines == 3 && !slices.Equal(names, []string{"bot-10-1-9-9", "bot-fixed", "bot-v6"}) {
			t.Errorf("%s: quarantine counters for %v", tc.at, names)
		}
	}
}

// TestDiffOverridesAreSmall: adding a quarantine at 10k pools is two flow
// adds (its drop counter first, then its source flow: make-before-break);
// its until passing removes the same two; an exemption is one flow.
func TestDiffOverridesAreSmall(t *testing.T) {
	doc := syntheticDoc(10_000, 4)
	base := mustCompile(t, doc, stray, genBase, DefaultOptions()).Flows
	doc.Quarantines = []topology.Quarantine{{Name: "bot", Prefix: "10.0.0.9/32", Until: genBase.Add(time.Hour).Format(time.RFC3339), Reason: "r", Ticket: "t"}}
	doc.Exemptions = []topology.Exemption{{Name: "mx", Prefix: "10.0.1.0/24", Until: genBase.Add(2 * time.Hour).Format(time.RFC3339), Reason: "r", Ticket: "t"}}
	if err := topology.Validate(doc); err != nil {
		t.Fatal(err)
	}
	with := mustCompile(t, doc, stray, genBase, DefaultOptions()).Flows
	added := Diff(with, base)
	if len(added) != 3 || CookieRole(added[0].Flow.Cookie) != RoleDropCount || added[0].Op != OpAdd {
		t.Fatalf("adding a quarantine and an exemption: %d changes, want 3 adds, the drop counter first:\n%s", len(added), renderChanges(added))
	}
	lapsed := mustCompile(t, doc, stray, genBase.Add(time.Hour), DefaultOptions()).Flows
	removed := Diff(lapsed, with)
	if len(removed) != 2 || removed[1].Op != OpDelete || CookieRole(removed[1].Flow.Cookie) != RoleDropCount {
		t.Fatalf("the quarantine lapsing: %d changes, want 2 deletes, the drop counter last:\n%s", len(removed), renderChanges(removed))
	}
	gone := mustCompile(t, doc, stray, genBase.Add(2*time.Hour), DefaultOptions()).Flows
	if d := Diff(gone, base); len(d) != 0 {
		t.Fatalf("everything lapsed: %d changes from the document without them:\n%s", len(d), renderChanges(d))
	}
}

// TestExplain: the reasons a helpdesk reads, for each rule.
func TestExplain(t *testing.T) {
	doc := loadDoc(t, "testdata/helpdesk.json")
	rollout, _ := time.Parse(time.RFC3339, "2026-11-20T00:00:00+09:00")
	later, _ := time.Parse(time.RFC3339, "2026-12-02T00:00:00+09:00")
	for _, tc := range []struct {
		name    string
		at      time.Time
		p       Packet
		rule    Rule
		verdict Verdict
		observe bool
		pool    string
		has     []string
	}{
		{"quarantine", rollout, tcp("10.1.9.9", "192.0.2.25", 25), RuleQuarantine, Drop, false, "tokyo-dyn",
			[]string{"quarantine: bot-10-1-9-9 (10.1.9.9/32) until 2026-11-30T12:00:00+09:00, ticket AB-88: abuse report",
				"exemption: ticket-4800 (10.1.9.0/24) until 2026-12-20T00:00:00+09:00, ticket 4800: business trial (a quarantine beats an exemption)",
				"relay: the destination is relay msa (192.0.2.25/32), permitted by the phase",
				"verdict: dropped: the source is quarantined by bot-10-1-9-9"}},
		{"quarantined static host", rollout, tcp("10.1.200.3", "203.0.113.25", 25), RuleQuarantine, Drop, false, "tokyo-fixed",
			[]string{"pool: tokyo-fixed (10.1.200.0/29), static"}},
		{"exemption", rollout, tcp("10.1.3.7", "203.0.113.25", 25), RuleExemption, Forward, false, "tokyo-dyn",
			[]string{"exemption: ticket-4711 (10.1.3.7/32)", "phase: phases[0] active since 2026-11-01T00:00:00+09:00: block all, relays true, every pop, enforce",
				"verdict: forwarded: the source is exempted by ticket-4711 until 2026-12-01T00:00:00+09:00 (ticket 4711)"}},
		{"lapsed exemption", later, tcp("10.1.3.7", "203.0.113.25", 25), RuleBlockAll, Drop, false, "tokyo-dyn",
			[]string{"lapsed, no longer in force: exemptions/ticket-4711", "verdict: dropped: the active phase of ftth blocks every destination"}},
		{"observe", rollout, tcp("10.2.0.9", "203.0.113.25", 25), RuleBlockAll, Forward, true, "osaka-dyn",
			[]string{"mode: observe (what the phase would drop is forwarded and counted)", "verdict: forwarded, observed"}},
		{"relays false", rollout, tcp("2001:db8:1::8", "2001:db8:ffff::25", 25), RuleBlockAll, Drop, false, "tokyo-v6",
			[]string{"phase: phases[0] active since the beginning (no from): block all, relays false"}},
		{"static", rollout, tcp("10.1.200.4", "203.0.113.25", 25), RuleStatic, Forward, false, "tokyo-fixed", nil},
		{"no pool", rollout, tcp("172.16.0.1", "203.0.113.25", 25), RuleNoPool, Forward, false, "",
			[]string{"pool: none holds the source (not a subscriber address)"}},
		{"not smtp", rollout, tcp("10.1.9.9", "203.0.113.25", 587), RuleNotSMTP, Forward, false, "", nil},
		{"relay", rollout, tcp("10.1.3.8", "192.0.2.25", 25), RuleRelay, Forward, false, "tokyo-dyn", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := Explain(doc, "tokyo-1", tc.at, tc.p)
			pool := ""
			if e.Pool != nil {
				pool = e.Pool.Name
			}
			if e.Rule != tc.rule || e.Verdict != tc.verdict || e.Observe != tc.observe || pool != tc.pool {
				t.Errorf("Explain = rule %s verdict %v observe %v pool %q, want %s %v %v %q", e.Rule, e.Verdict, e.Observe, pool, tc.rule, tc.verdict, tc.observe, tc.pool)
			}
			reasons := strings.Join(e.Reasons(), "\n")
			for _, want := range tc.has {
				if !strings.Contains(reasons, want) {
					t.Errorf("reasons do not contain %q:\n%s", want, reasons)
				}
			}
			if got := Evaluate(doc, "tokyo-1", tc.at, tc.p); got != e.Verdict {
				t.Errorf("Evaluate = %v, Explain = %v", got, e.Verdict)
			}
		})
	}
}

func mustParseTime(t testing.TB, s string) time.Time {
	t.Helper()
	tm, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatal(err)
	}
	return tm
}
