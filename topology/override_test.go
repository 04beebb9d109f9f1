package topology

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// TestValidateOverrides: the rules for exemptions and quarantines (name,
// canonical prefix, a strict RFC 3339 until, reason and ticket), each with
// the exact JSON path an operator reads.
func TestValidateOverrides(t *testing.T) {
	runValidateCases(t, []validateCase{
		{"contract examples", func(d *Document) {}, nil, ""},
		{"no exemptions or quarantines", func(d *Document) { d.Exemptions, d.Quarantines = nil, nil }, nil, ""},
		{"IPv6 quarantine", func(d *Document) { d.Quarantines[0].Prefix = "2001:db8:1::9/128" }, nil, ""},
		{"prefix outside every pool", func(d *Document) { d.Quarantines[0].Prefix = "172.16.0.0/12" }, nil, ""},
		{"exemption and quarantine on one prefix", func(d *Document) { d.Quarantines[0].Prefix = d.Exemptions[0].Prefix }, nil, ""},
		{"a lapsed entry is valid", func(d *Document) { d.Exemptions[0].Until = "2000-01-01T00:00:00Z" }, nil, ""},
		{"year 9999", func(d *Document) { d.Quarantines[0].Until = "9999-12-31T23:59:59.999999999Z" }, nil, ""},
		{"same name as a pool", func(d *Document) { d.Exemptions[0].Name = "tokyo-dyn" }, nil, ""},
		{"reason in Japanese", func(d *Document) { d.Exemptions[0].Reason = "固定IP移行までメールサーバを運用" }, nil, ""},
		{"reason of 256 characters", func(d *Document) { d.Exemptions[0].Reason = strings.Repeat("あ", 256) }, nil, ""},
		{"ticket of 64 characters", func(d *Document) { d.Quarantines[0].Ticket = strings.Repeat("A", 64) }, nil, ""},

		{"empty name", func(d *Document) { d.Exemptions[0].Name = "" }, []string{"exemptions[0].name"}, "exemption name is required"},
		{"bad name", func(d *Document) { d.Quarantines[0].Name = "Bot" }, []string{"quarantines[0].name"}, "quarantine name"},
		{"duplicate name", func(d *Document) {
			d.Quarantines = append(d.Quarantines, d.Quarantines[0])
			d.Quarantines[1].Prefix = "10.1.9.10/32"
		}, []string{"quarantines[1].name"}, `duplicate quarantine name "bot-10-1-9-9"`},
		{"duplicate prefix", func(d *Document) {
			e := d.Exemptions[0]
			e.Name = "ticket-4712"
			d.Exemptions = append(d.Exemptions, e)
		}, []string{"exemptions[1].prefix"}, `already used by exemptions[0] ("ticket-4711")`},
		{"host bits", func(d *Document) { d.Exemptions[0].Prefix = "10.1.3.7/24" }, []string{"exemptions[0].prefix"}, "did you mean 10.1.3.0/24?"},
		{"address without length", func(d *Document) { d.Exemptions[0].Prefix = "10.1.3.7" }, []string{"exemptions[0].prefix"}, "not a CIDR prefix"},
		{"upper-case IPv6", func(d *Document) { d.Quarantines[0].Prefix = "2001:DB8::9/128" }, []string{"quarantines[0].prefix"}, "canonical"},
		{"missing prefix", func(d *Document) { d.Quarantines[0].Prefix = "" }, []string{"quarantines[0].prefix"}, "prefix is required"},
		{"missing until", func(d *Document) { d.Exemptions[0].Until = "" }, []string{"exemptions[0].until"}, "until is required"},
		{"date-only until", func(d *Document) { d.Exemptions[0].Until = "2026-12-01" }, []string{"exemptions[0].until"}, "a date alone is not an instant"},
		{"until without offset", func(d *Document) { d.Quarantines[0].Until = "2026-12-01T00:00:00" }, []string{"quarantines[0].until"}, "too short"},
		{"until with +24:00", func(d *Document) { d.Quarantines[0].Until = "2026-12-01T00:00:00+24:00" }, []string{"quarantines[0].until"}, "offset hour 24"},
		{"until with a space", func(d *Document) { d.Quarantines[0].Until = "2026-12-01 00:00:00Z" }, []string{"quarantines[0].until"}, "upper-case 'T'"},
		{"missing reason", func(d *Document) { d.Exemptions[0].Reason = "" }, []string{"exemptions[0].reason"}, "reason is required"},
		{"missing ticket", func(d *Document) { d.Quarantines[0].Ticket = "" }, []string{"quarantines[0].ticket"}, "ticket is required"},
		{"reason too long", func(d *Document) { d.Exemptions[0].Reason = strings.Repeat("x", 257) }, []string{"exemptions[0].reason"}, "257 characters long; the limit is 256"},
		{"ticket too long", func(d *Document) { d.Exemptions[0].Ticket = strings.Repeat("9", 65) }, []string{"exemptions[0].ticket"}, "the limit is 64"},
		{"reason with a newline", func(d *Document) { d.Exemptions[0].Reason = "line one\nline two" }, []string{"exemptions[0].reason"}, "one line of printable text"},
		{"ticket with a tab", func(d *Document) { d.Quarantines[0].Ticket = "AB\t88" }, []string{"quarantines[0].ticket"}, "U+0009"},
		{"ticket with escape", func(d *Document) { d.Quarantines[0].Ticket = "AB\x1b[31m" }, []string{"quarantines[0].ticket"}, "printable"},
		{"reason of spaces", func(d *Document) { d.Quarantines[0].Reason = "  " }, []string{"quarantines[0].reason"}, "white space"},
		{"every field wrong", func(d *Document) {
			d.Quarantines[0] = Quarantine{Name: "-", Prefix: "10.1.9.9/16", Until: "soon"}
		}, []string{"quarantines[0].name", "quarantines[0].prefix", "quarantines[0].until", "quarantines[0].reason", "quarantines[0].ticket"}, "quarantine name"},
	})
}

func TestValidatePhaseMode(t *testing.T) {
	runValidateCases(t, []validateCase{
		{"observe", func(d *Document) { d.Services[0].Phases[0].Mode = ModeObserve }, nil, ""},
		{"enforce", func(d *Document) { d.Services[0].Phases[2].Mode = ModeEnforce }, nil, ""},
		{"unknown mode", func(d *Document) { d.Services[0].Phases[1].Mode = "dry-run" }, []string{"services[0].phases[1].mode"}, `mode must be "enforce" (the default) or "observe", not "dry-run"`},
		{"upper-case mode", func(d *Document) { d.Services[1].Phases[0].Mode = "Observe" }, []string{"services[1].phases[0].mode"}, "not \"Observe\""},
	})
	if (Phase{}).Observes() || (Phase{Mode: ModeEnforce}).Observes() || !(Phase{Mode: ModeObserve}).Observes() {
		t.Error("Observes: only mode observe observes")
	}
}

func TestValidateOverrideLimits(t *testing.T) {
	doc := &Document{}
	for i := 0; i <= MaxQuarantines; i++ {
		doc.Quarantines = append(doc.Quarantines, Quarantine{Name: fmt.Sprintf("q%d", i), Prefix: fmt.Sprintf("10.%d.%d.%d/32", i>>16, i>>8&0xff, i&0xff),
			Until: "2030-01-01T00:00:00Z", Reason: "bot", Ticket: "T"})
	}
	err := Validate(doc)
	var ve *ValidationError
	if !errors.As(err, &ve) || len(ve.Errors) != 1 || ve.Errors[0].Field != "quarantines" || !strings.Contains(ve.Errors[0].Message, "too many quarantines") {
		t.Fatalf("Validate = %v", err)
	}
	doc.Quarantines = doc.Quarantines[:MaxQuarantines]
	if err := Validate(doc); err != nil {
		t.Errorf("exactly MaxQuarantines: %v", err)
	}
	for i := 0; i <= MaxExemptions; i++ {
		doc.Exemptions = append(doc.Exemptions, Exemption(doc.Quarantines[i%MaxQuarantines]))
	}
	if err := Validate(doc); !errors.As(err, &ve) || ve.Errors[0].Field != "exemptions" {
		t.Errorf("Validate = %v", err)
	}
}

// TestParseOverrides: the new lists decode strictly from JSON and YAML, and
// a document without them encodes as before (no empty lists added).
func TestParseOverrides(t *testing.T) {
	js := `{"pools": [], "relays": [], "destinations": [], "services": [], "bridges": [],
	  "exemptions": [{"name": "ticket-4711", "prefix": "10.1.3.7/32", "until": "2026-12-01T00:00:00+09:00", "reason": "mail server", "ticket": "4711"}],
	  "quarantines": [{"name": "bot", "prefix": "10.1.9.9/32", "until": "2026-11-30T12:00:00+09:00", "reason": "abuse report", "ticket": "AB-88"}]}`
	doc, err := ParseJSON([]byte(js))
	if err != nil {
		t.Fatal(err)
	}
	if err := Validate(doc); err != nil {
		t.Fatal(err)
	}
	if doc.Exemptions[0].Ticket != "4711" || doc.Quarantines[0].Reason != "abuse report" {
		t.Errorf("decoded %+v %+v", doc.Exemptions, doc.Quarantines)
	}
	_, err = ParseJSON([]byte(`{"quarantines": [{"name": "bot", "prefix": "10.1.9.9/32", "untill": "x"}]}`))
	if err == nil || !strings.Contains(err.Error(), `quarantines[0].untill: unknown field "untill" (did you mean "until"?)`) {
		t.Errorf("typo: %v", err)
	}
	_, err = ParseJSON([]byte(`{"exemptions": [{"name": "e", "until": 1}]}`))
	if err == nil || !strings.Contains(err.Error(), "exemptions[0].until") {
		t.Errorf("number until: %v", err)
	}
	_, err = ParseYAML([]byte("exemptions:\n  - name: e\n    reasn: x\n"))
	if err == nil || !strings.Contains(err.Error(), "an exemption") {
		t.Errorf("YAML typo: %v", err)
	}
	y, err := ParseYAML([]byte("quarantines:\n  - name: bot\n    prefix: 10.1.9.9/32\n    until: 2026-11-30T12:00:00+09:00\n    reason: abuse report\n    ticket: AB-88\nservices:\n  - name: s\n    phases:\n      - block: all\n        mode: observe\n"))
	if err != nil {
		t.Fatal(err)
	}
	if y.Quarantines[0].Until != "2026-11-30T12:00:00+09:00" || !y.Services[0].Phases[0].Observes() {
		t.Errorf("YAML: %+v %+v", y.Quarantines, y.Services)
	}
	plain, err := ParseJSON([]byte(`{"pools": []}`))
	if err != nil {
		t.Fatal(err)
	}
	if out, _ := json.Marshal(plain); strings.Contains(string(out), "exemptions") || strings.Contains(string(out), "quarantines") {
		t.Errorf("a document without the new lists encodes them: %s", out)
	}
}
