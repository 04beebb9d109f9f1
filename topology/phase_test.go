package topology

import (
	"testing"
	"time"
)

func mustTime(t testing.TB, s string) time.Time {
	t.Helper()
	at, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatal(err)
	}
	return at
}

// phaseName identifies a phase in test output by its from and pops.
func phaseName(p Phase, ok bool) string {
	if !ok {
		return "none"
	}
	name := p.From
	if name == "" {
		name = "always"
	}
	for _, pop := range p.Pops {
		name += "@" + pop
	}
	return name
}

func TestActivePhase(t *testing.T) {
	doc := validDoc()
	// ftth: 11-01 (sets, everywhere), 12-01 (all, osaka-1), 12-15 (all, everywhere), all +09:00.
	for _, tc := range []struct {
		name, service, pop, at, want string
	}{
		{"before any phase", "ftth", "tokyo-1", "2006-10-31T23:59:59+09:00", "none"},
		{"1ns before the first phase", "ftth", "tokyo-1", "2006-10-31T14:59:59.999999999Z", "none"},
		{"exactly at the first phase", "ftth", "tokyo-1", "2006-11-01T00:00:00+09:00", "2006-11-01T00:00:00+09:00"},
		{"at the first phase, written in UTC", "ftth", "tokyo-1", "2006-10-31T15:00:00Z", "2006-11-01T00:00:00+09:00"},
		{"1ns after the first phase", "ftth", "tokyo-1", "2006-10-31T15:00:00.000000001Z", "2006-11-01T00:00:00+09:00"},
		{"osaka 1ns before its phase", "ftth", "osaka-1", "2006-11-30T14:59:59.999999999Z", "2006-11-01T00:00:00+09:00"},
		{"osaka at its phase", "ftth", "osaka-1", "2006-11-30T15:00:00Z", "2006-12-01T00:00:00+09:00@osaka-1"},
		{"tokyo does not get osaka's phase", "ftth", "tokyo-1", "2006-12-05T00:00:00+09:00", "2006-11-01T00:00:00+09:00"},
		{"unregistered bridge does not get osaka's phase", "ftth", "", "2006-12-05T00:00:00+09:00", "2006-11-01T00:00:00+09:00"},
		{"osaka gets the later global phase", "ftth", "osaka-1", "2006-12-15T00:00:00+09:00", "2006-12-15T00:00:00+09:00"},
		{"tokyo 1ns before the global phase", "ftth", "tokyo-1", "2006-12-14T14:59:59.999999999Z", "2006-11-01T00:00:00+09:00"},
		{"tokyo at the global phase", "ftth", "tokyo-1", "2006-12-14T15:00:00Z", "2006-12-15T00:00:00+09:00"},
		{"unregistered bridge at the global phase", "ftth", "", "2006-12-15T00:00:00+09:00", "2006-12-15T00:00:00+09:00"},
		{"long after", "ftth", "tokyo-1", "2999-01-01T00:00:00Z", "2006-12-15T00:00:00+09:00"},
		{"phase without from, any time", "v6plus", "tokyo-1", "0001-01-01T00:00:00Z", "always"},
		{"phase without from, unregistered", "v6plus", "", "2006-12-15T00:00:00+09:00", "always"},
		{"unknown service", "adsl", "tokyo-1", "2006-12-15T00:00:00+09:00", "none"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := phaseName(doc.ActivePhase(tc.service, tc.pop, mustTime(t, tc.at)))
			if got != tc.want {
				t.Errorf("ActivePhase(%s, %q, %s) = %s, want %s", tc.service, tc.pop, tc.at, got, tc.want)
			}
		})
	}
}

func TestActivePhaseScopedAfterGlobal(t *testing.T) {
	// A later scoped phase overrides an earlier global one only in its pops,
	// and a scoped phase without from applies from the beginning of time.
	doc := &Document{Services: []Service{{Name: "s", Phases: []Phase{
		{Block: Block{Sets: []string{}}, Pops: []string{"kobe-1"}},
		{From: "2030-01-01T00:00:00Z", Block: Block{All: true}},
		{From: "2031-01-01T00:00:00+09:00", Block: Block{Sets: []string{}}, Pops: []string{"kobe-1", "osaka-1"}},
		{From: "9999-12-31T23:59:59Z", Block: Block{All: true}, Pops: []string{"nara-1"}},
	}}}}
	for _, tc := range []struct{ pop, at, want string }{
		{"kobe-1", "2000-01-01T00:00:00Z", "always@kobe-1"},
		{"osaka-1", "2000-01-01T00:00:00Z", "none"},
		{"kobe-1", "2030-01-01T00:00:00Z", "2030-01-01T00:00:00Z"},
		{"osaka-1", "2031-06-01T00:00:00Z", "2031-01-01T00:00:00+09:00@kobe-1@osaka-1"},
		{"tokyo-1", "2031-06-01T00:00:00Z", "2030-01-01T00:00:00Z"},
		{"nara-1", "9999-12-31T23:59:58Z", "2030-01-01T00:00:00Z"},
		{"nara-1", "9999-12-31T23:59:59Z", "9999-12-31T23:59:59Z@nara-1"},
	} {
		got := phaseName(doc.ActivePhase("s", tc.pop, mustTime(t, tc.at)))
		if got != tc.want {
			t.Errorf("ActivePhase(s, %q, %s) = %s, want %s", tc.pop, tc.at, got, tc.want)
		}
	}
	if err := Validate(doc); err != nil {
		t.Fatalf("test document must be valid: %v", err)
	}
}

func TestActivePhaseUnvalidatedDocument(t *testing.T) {
	// Never panics, skips unparseable from, ties go to the later phase.
	doc := &Document{Services: []Service{{Name: "s", Phases: []Phase{
		{From: "garbage", Block: Block{All: true}},
		{From: "2020-01-01T00:00:00Z", Block: Block{Sets: []string{"first"}}},
		{From: "2020-01-01T09:00:00+09:00", Block: Block{Sets: []string{"second"}}},
	}}}}
	p, ok := doc.ActivePhase("s", "", mustTime(t, "2021-01-01T00:00:00Z"))
	if !ok || p.Block.Sets[0] != "second" {
		t.Errorf("got %+v %v", p, ok)
	}
	var nilDoc *Document
	if _, ok := nilDoc.ActivePhase("s", "", time.Now()); ok {
		t.Error("nil document has no phases")
	}
}

func TestNextChange(t *testing.T) {
	doc := validDoc()
	for _, tc := range []struct{ at, want string }{
		{"2000-01-01T00:00:00Z", "2006-11-01T00:00:00+09:00"},
		{"2006-10-31T14:59:59.999999999Z", "2006-11-01T00:00:00+09:00"},
		// Strictly after: at a boundary, the next one is the following.
		{"2006-10-31T15:00:00Z", "2006-12-01T00:00:00+09:00"},
		{"2006-11-15T00:00:00Z", "2006-12-01T00:00:00+09:00"},
		{"2006-12-14T14:59:59.999999999Z", "2006-12-15T00:00:00+09:00"},
		// Then the quarantine's until (2026-11-30T12:00:00+09:00) and the
		// exemption's (2026-12-01T00:00:00+09:00).
		{"2006-12-14T15:00:00Z", "2026-11-30T12:00:00+09:00"},
		{"2026-01-01T00:00:00Z", "2026-11-30T03:00:00Z"},
		{"2026-11-30T02:59:59.999999999Z", "2026-11-30T12:00:00+09:00"},
		{"2026-11-30T03:00:00Z", "2026-12-01T00:00:00+09:00"},
		{"2026-11-30T14:59:59.999999999Z", "2026-11-30T15:00:00Z"},
		{"2026-11-30T15:00:00Z", ""},
		{"2030-01-01T00:00:00Z", ""},
	} {
		next, ok := doc.NextChange(mustTime(t, tc.at))
		switch {
		case tc.want == "" && ok:
			t.Errorf("NextChange(%s) = %s, want none", tc.at, next)
		case tc.want != "" && (!ok || !next.Equal(mustTime(t, tc.want))):
			t.Errorf("NextChange(%s) = %s %v, want %s", tc.at, next, ok, tc.want)
		}
	}

	// Earliest across services, whatever the order in the document.
	doc.Services = append(doc.Services, Service{Name: "late", Phases: []Phase{
		{From: "2006-11-20T00:00:00Z", Block: Block{All: true}},
		{From: "9999-12-31T23:59:59Z", Block: Block{All: true}},
	}})
	next, ok := doc.NextChange(mustTime(t, "2006-11-10T00:00:00Z"))
	if !ok || !next.Equal(mustTime(t, "2006-11-20T00:00:00Z")) {
		t.Errorf("across services: %s %v", next, ok)
	}
	// Far-future boundaries are returned as they are; more than
	// time.Duration can hold from now, the caller must clamp its timer.
	next, ok = doc.NextChange(mustTime(t, "2027-01-01T00:00:00Z"))
	if !ok || next.Year() != 9999 {
		t.Errorf("far future: %s %v", next, ok)
	}
	var nilDoc *Document
	if _, ok := nilDoc.NextChange(time.Now()); ok {
		t.Error("nil document has no boundaries")
	}
}

func TestBridgePopAndPorts(t *testing.T) {
	doc := validDoc()
	doc.Bridges = append(doc.Bridges, Bridge{DPID: "00000000000000ab", Name: "osaka", Pop: "osaka-1"})
	for _, tc := range []struct {
		dpid       DPID
		pop        string
		registered bool
	}{
		{"0000000000000001", "tokyo-1", true},
		{"00000000000000ab", "osaka-1", true},
		{"0000000000000002", "", false},
		{"", "", false},
	} {
		pop, ok := doc.BridgePop(tc.dpid)
		if pop != tc.pop || ok != tc.registered {
			t.Errorf("BridgePop(%q) = %q, %v; want %q, %v", tc.dpid, pop, ok, tc.pop, tc.registered)
		}
	}
	if got := doc.EffectivePorts(); len(got) != 1 || got[0] != 25 {
		t.Errorf("EffectivePorts = %v", got)
	}
	doc.Ports = nil
	if got := doc.EffectivePorts(); len(got) != 1 || got[0] != 25 {
		t.Errorf("EffectivePorts default = %v", got)
	}
	doc.Ports = []int{25, 2525}
	if got := doc.EffectivePorts(); len(got) != 2 {
		t.Errorf("EffectivePorts = %v", got)
	}
}

// TestOverrideActiveAt: an exemption or a quarantine acts strictly before
// its until, whatever offset either instant is written in; an until that
// does not parse never acts.
func TestOverrideActiveAt(t *testing.T) {
	for _, tc := range []struct {
		until, at string
		want      bool
	}{
		{"2026-12-01T00:00:00+09:00", "2026-11-30T14:59:59.999999999Z", true},
		{"2026-12-01T00:00:00+09:00", "2026-11-30T15:00:00Z", false},
		{"2026-12-01T00:00:00+09:00", "2026-12-01T00:00:00+09:00", false},
		{"2026-12-01T00:00:00+09:00", "2026-11-30T15:00:00.000000001Z", false},
		{"2026-12-01T00:00:00+09:00", "2026-11-30T10:00:00-04:59", true},  // 14:59Z
		{"2026-12-01T00:00:00+09:00", "2026-11-30T10:00:00-05:00", false}, // 15:00Z
		{"2026-11-30T15:00:00.5Z", "2026-12-01T00:00:00.499999999+09:00", true},
		{"2026-11-30T15:00:00.5Z", "2026-12-01T00:00:00.5+09:00", false},
		{"0001-01-01T00:00:00Z", "0001-01-01T00:00:00Z", false},
		{"9999-12-31T23:59:59Z", "2026-01-01T00:00:00Z", true},
		{"2026-12-01", "2000-01-01T00:00:00Z", false},
		{"", "2000-01-01T00:00:00Z", false},
		{"2026-12-01T24:00:00Z", "2000-01-01T00:00:00Z", false},
	} {
		at := mustTime(t, tc.at)
		if got := (Exemption{Until: tc.until}).ActiveAt(at); got != tc.want {
			t.Errorf("exemption until %s, at %s: active = %v, want %v", tc.until, tc.at, got, tc.want)
		}
		if got := (Quarantine{Until: tc.until}).ActiveAt(at); got != tc.want {
			t.Errorf("quarantine until %s, at %s: active = %v, want %v", tc.until, tc.at, got, tc.want)
		}
	}
}

// TestNextChangeUntils: untils are boundaries like phase starts, the
// earliest of either wins, and an until that does not parse is ignored.
func TestNextChangeUntils(t *testing.T) {
	doc := &Document{
		Exemptions:  []Exemption{{Until: "2030-01-01T09:00:00+09:00"}, {Until: "garbage"}},
		Quarantines: []Quarantine{{Until: "2029-12-31T23:00:00-01:00"}},
		Services:    []Service{{Name: "s", Phases: []Phase{{From: "2030-06-01T00:00:00Z", Block: Block{All: true}}}}},
	}
	for _, tc := range []struct{ at, want string }{
		{"2029-01-01T00:00:00Z", "2030-01-01T00:00:00Z"},
		{"2029-12-31T23:59:59.999999999Z", "2030-01-01T00:00:00Z"},
		{"2030-01-01T00:00:00Z", "2030-06-01T00:00:00Z"},
		{"2030-06-01T00:00:00Z", ""},
	} {
		next, ok := doc.NextChange(mustTime(t, tc.at))
		switch {
		case tc.want == "" && ok:
			t.Errorf("NextChange(%s) = %s, want none", tc.at, next)
		case tc.want != "" && (!ok || !next.Equal(mustTime(t, tc.want))):
			t.Errorf("NextChange(%s) = %s %v, want %s", tc.at, next, ok, tc.want)
		}
	}
}
