package topology

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// FuzzParseValidate feeds arbitrary bytes through Parse and Validate. It
// asserts that nothing panics and that a document accepted by Validate
// survives a JSON round trip (encode, ParseJSON) unchanged and still valid:
// that is what the store and the API do with every accepted document. Seeds
// are every file in testdata/ (new crashers land in testdata/fuzz/ and
// become regression cases).
func FuzzParseValidate(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/*.*")
	more, _ := filepath.Glob("testdata/errors/*.*")
	seeds = append(seeds, more...)
	for _, name := range seeds {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(`{"pools":[{"name":"a","prefix":"10.0.0.0/8","kind":"dynamic","service":"s"}],"services":[{"name":"s","phases":[{"from":"2030-01-01T00:00:00Z","block":"all","pops":["x"]}]}]}`))
	f.Add([]byte("services:\n- name: s\n  phases:\n  - {block: [], relays: false}\n"))
	// Nesting and duplicate keys (issue 11).
	f.Add([]byte(`{"pools":` + strings.Repeat("[", 200)))
	f.Add([]byte(`{"services":[{"name":"s","phases":[{"block":[[["a"]]]}]}]}`))
	f.Add([]byte(`{"ports":[25],"ports":[26]}`))
	f.Add([]byte(`{"pools":[{"name":"a","n\u0061me":"b"}]}`))
	f.Add([]byte("a: " + strings.Repeat("[", 100)))
	// Exemptions, quarantines and a phase's mode (issue 14).
	f.Add([]byte(`{"exemptions":[],"quarantines":[{"name":"bot","prefix":"10.1.9.9/32","until":"2026-11-30T12:00:00+09:00","reason":"abuse report","ticket":"AB-88"}],"services":[{"name":"s","phases":[{"block":"all","mode":"observe"}]}]}`))
	f.Add([]byte("exemptions:\n- {name: e, prefix: '2001:db8::7/128', until: '2026-12-01T00:00:00.5-03:30', reason: \"mail \\u00e9\", ticket: '4711'}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		// Whatever the strict decoder accepts, encoding/json (laxer:
		// case-folded and repeated keys) reads as the same document. One
		// exception: a bridge dpid that is not one, which ParseJSON keeps
		// for Validate to report and encoding/json refuses (DPID's
		// UnmarshalText).
		if strict, err := ParseJSON(data); err == nil {
			var lax Document
			err := json.Unmarshal(bytes.TrimPrefix(data, utf8BOM), &lax)
			if err != nil && !hasBadDPID(strict) || err == nil && !reflect.DeepEqual(strict, &lax) {
				t.Fatalf("ParseJSON and encoding/json disagree:\nstrict %+v\nlax    %+v %v", strict, &lax, err)
			}
		}

		doc, err := Parse(data)
		if err != nil {
			return
		}
		if err := Validate(doc); err != nil {
			return
		}
		// Everything downstream relies on these never panicking on a
		// valid document.
		at := time.Date(2006, 12, 1, 0, 0, 0, 0, time.UTC)
		for _, s := range doc.Services {
			for _, b := range doc.Bridges {
				doc.ActivePhase(s.Name, b.Pop, at)
				doc.Timeline(s.Name, b.Pop, at)
			}
		}
		doc.Pops()
		doc.NextChange(at)

		encoded, err := json.Marshal(doc)
		if err != nil {
			t.Fatalf("valid document does not encode: %v", err)
		}
		again, err := ParseJSON(encoded)
		if err != nil {
			t.Fatalf("encoded valid document does not parse: %v\n%s", err, encoded)
		}
		if err := Validate(again); err != nil {
			t.Fatalf("round trip no longer validates: %v\n%s", err, encoded)
		}
		// An empty optional list (exemptions, quarantines) is left out
		// of the JSON: absent and empty are the same document.
		for _, k := range ItemKinds {
			k.MakeNonNil(doc)
			k.MakeNonNil(again)
		}
		if !reflect.DeepEqual(doc, again) {
			t.Fatalf("round trip changed the document:\nbefore %+v\nafter  %+v", doc, again)
		}
		if clone := doc.Clone(); !reflect.DeepEqual(doc, clone) {
			t.Fatalf("Clone differs:\n%+v\n%+v", doc, clone)
		}
	})
}

// FuzzValidateNearValid mutates one field of the contract's example with a
// fuzzed string, so the fuzzer spends its time on documents that are almost
// valid (random bytes rarely parse). When Validate accepts the result, the
// guarantees downstream code relies on must hold: prefixes parse with
// netip.MustParsePrefix, every reference resolves, dpids are canonicalisable.
func FuzzValidateNearValid(f *testing.F) {
	for i, s := range []string{"10.1.0.1/16", "2001:DB8::/32", "", "all", "0000000000000001", "2006-12-01T00:00:00Z", "osaka-1", "::ffff:0.0.0.0/96", "1.2.3.4/32"} {
		f.Add(uint8(i), s)
	}
	// The fields of issue 14: exemption prefix and until, quarantine
	// reason, ticket and name, a phase's mode.
	for i, s := range []string{"10.1.3.7/32", "2026-12-01T00:00:00+09:00", "a\u2028b", "AB 88 ", "bot", "observe"} {
		f.Add(uint8(13+i), s)
	}
	f.Fuzz(func(t *testing.T, which uint8, value string) {
		doc := validDoc()
		setters := []func(){
			func() { doc.Pools[0].Prefix = value },
			func() { doc.Pools[1].Name = value },
			func() { doc.Pools[0].Service = value },
			func() { doc.Pools[1].Kind = value },
			func() { doc.Relays[0].Prefix = value },
			func() { doc.Destinations[0].Prefixes[0] = value },
			func() { doc.Services[0].Phases[1].From = value },
			func() { doc.Services[0].Phases[0].Block.Sets[0] = value },
			func() { doc.Services[0].Phases[1].Pops = append(doc.Services[0].Phases[1].Pops, value) },
			func() { doc.Services[1].Phases[0].From = value },
			func() { doc.Bridges[0].DPID = DPID(value) },
			func() { doc.Bridges[0].Pop = value },
			func() { doc.Services[0].Name = value },
			func() { doc.Exemptions[0].Prefix = value },
			func() { doc.Exemptions[0].Until = value },
			func() { doc.Quarantines[0].Reason = value },
			func() { doc.Quarantines[0].Ticket = value },
			func() { doc.Quarantines[0].Name = value },
			func() { doc.Services[0].Phases[2].Mode = value },
		}
		setters[int(which)%len(setters)]()
		if err := Validate(doc); err != nil {
			var ve *ValidationError
			if !errors.As(err, &ve) || len(ve.Errors) == 0 {
				t.Fatalf("Validate returned %T %v", err, err)
			}
			return
		}
		services := map[string]bool{}
		for _, s := range doc.Services {
			services[s.Name] = true
		}
		for _, p := range doc.Pools {
			netip.MustParsePrefix(p.Prefix)
			if p.Kind == KindDynamic && !services[p.Service] {
				t.Fatalf("dynamic pool %q with unknown service %q accepted", p.Name, p.Service)
			}
		}
		for _, r := range doc.Relays {
			netip.MustParsePrefix(r.Prefix)
		}
		for _, d := range doc.Destinations {
			for _, p := range d.Prefixes {
				netip.MustParsePrefix(p)
			}
		}
		for _, e := range doc.Exemptions {
			netip.MustParsePrefix(e.Prefix)
			if _, err := ParseTime(e.Until); err != nil {
				t.Fatalf("exemption until %q accepted: %v", e.Until, err)
			}
		}
		for _, q := range doc.Quarantines {
			netip.MustParsePrefix(q.Prefix)
			if q.Reason == "" || q.Ticket == "" || strings.ContainsAny(q.Reason+q.Ticket, "\n\r\t") {
				t.Fatalf("quarantine reason %q ticket %q accepted", q.Reason, q.Ticket)
			}
		}
		for _, s := range doc.Services {
			for _, ph := range s.Phases {
				if ph.Mode != "" && ph.Mode != ModeEnforce && ph.Mode != ModeObserve {
					t.Fatalf("mode %q accepted", ph.Mode)
				}
			}
		}
		for _, b := range doc.Bridges {
			if canonical, err := ParseDPID(string(b.DPID)); err != nil || canonical != b.DPID {
				t.Fatalf("dpid %q accepted", b.DPID)
			}
		}
		encoded, err := json.Marshal(doc)
		if err != nil {
			t.Fatal(err)
		}
		again, err := ParseJSON(encoded)
		if err != nil || !reflect.DeepEqual(doc, again) {
			t.Fatalf("round trip: %v\n%+v\n%+v", err, doc, again)
		}
	})
}

func hasBadDPID(doc *Document) bool {
	for _, b := range doc.Bridges {
		if _, err := ParseDPID(string(b.DPID)); err != nil {
			return true
		}
	}
	return false
}
