package topology

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"
)

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	data, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestContractExampleParsesAndValidates(t *testing.T) {
	jsonDoc, err := ParseJSON(readTestdata(t, "contract-example.json"))
	if err != nil {
		t.Fatalf("ParseJSON: %v", err)
	}
	if err := Validate(jsonDoc); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	yamlDoc, err := ParseYAML(readTestdata(t, "contract-example.yaml"))
	if err != nil {
		t.Fatalf("ParseYAML: %v", err)
	}
	if !reflect.DeepEqual(jsonDoc, yamlDoc) {
		t.Errorf("YAML and JSON forms differ:\njson %+v\nyaml %+v", jsonDoc, yamlDoc)
	}
	// Spot checks that the encoding of the contract's fields is right.
	if !jsonDoc.Services[0].Phases[1].Block.All || !reflect.DeepEqual(jsonDoc.Services[0].Phases[0].Block.Sets, []string{"mobile-carriers"}) {
		t.Errorf("block decoded wrongly: %+v", jsonDoc.Services[0].Phases)
	}
	if jsonDoc.Services[1].Phases[0].PermitsRelays() {
		t.Errorf("v6plus says relays: false")
	}
	for _, name := range []string{"contract-example.json", "contract-example.yaml"} {
		doc, err := Parse(readTestdata(t, name))
		if err != nil || !reflect.DeepEqual(doc, jsonDoc) {
			t.Errorf("Parse(%s) = %+v, %v", name, doc, err)
		}
	}
}

func TestParseJSONRejects(t *testing.T) {
	for _, tc := range []struct {
		name, input string
		field       string // expected ParseError.Field
		contains    string
	}{
		{"unknown top-level field", `{"pool": []}`, "pool", `unknown field "pool"`},
		{"unknown nested field", `{"pools": [{"name": "a", "prefx": "10.0.0.0/8"}]}`, "pools[0].prefx", `unknown field "prefx"`},
		{"unknown phase field", `{"services": [{"name": "s", "phases": [{"block": "all", "until": "x"}]}]}`, "services[0].phases[0].until", "unknown field"},
		{"case-mismatched key", `{"pools": [{"Name": "a"}]}`, "pools[0].Name", `did you mean "name"?`},
		{"duplicate key", `{"ports": [25], "ports": [26]}`, "ports", "twice"},
		{"trailing data", `{"ports": [25]} {"ports": [26]}`, "", "unexpected data after the document"},
		{"trailing garbage", `{"ports": [25]} x`, "", "after the document"},
		{"null document", `null`, "", "must be a JSON object"},
		{"array document", `[]`, "", "must be a JSON object, not a list"},
		{"string port", `{"ports": ["25"]}`, "ports[0]", "must be an integer, not a string"},
		{"fractional port", `{"ports": [25.5]}`, "ports[0]", "not an integer"},
		{"huge port", `{"ports": [1e400]}`, "ports[0]", "not an integer"},
		{"prefix number", `{"pools": [{"prefix": 10}]}`, "pools[0].prefix", "must be a string, not a number"},
		{"null pool", `{"pools": [null]}`, "pools[0]", "not null"},
		{"relays flag string", `{"services": [{"phases": [{"relays": "yes"}]}]}`, "services[0].phases[0].relays", "true or false"},
		{"block number", `{"services": [{"phases": [{"block": 1}]}]}`, "services[0].phases[0].block", `block must be "all"`},
		{"block other word", `{"services": [{"phases": [{"block": "none"}]}]}`, "services[0].phases[0].block", `"none"`},
		{"block list of numbers", `{"services": [{"phases": [{"block": [1]}]}]}`, "services[0].phases[0].block[0]", "must be a string"},
		{"truncated", `{"pools": [`, "pools[0]", "end of input"},
		{"syntax error", `{"pools": [}`, "pools[0]", "invalid JSON"},
		{"trailing comma", `{"ports": [25,]}`, "ports[1]", "invalid JSON"},
		{"trailing comma in object", `{"ports": [25],}`, "", "after ','"},
		{"control character", "{\"pools\": [{\"name\": \"a\tb\"}]}", "pools[0].name", "control character"},
		{"bad escape", `{"pools": [{"name": "a\qb"}]}`, "pools[0].name", "bad escape"},
		{"nested lists in block", `{"services": [{"phases": [{"block": [["a"]]}]}]}`, "services[0].phases[0].block[0]", "must be a string, not a list"},
		{"nested lists in pools", `{"pools": [[[[[[[[]]]]]]]]}`, "pools[0]", "must be an object, not a list"},
		{"revision in a plain document", `{"revision": 1}`, "revision", "unknown field"},
		{"leading zero", `{"ports": [025]}`, "ports", "invalid JSON"},
		{"bare minus", `{"ports": [-]}`, "ports[0]", "invalid JSON"},
		{"literal typo", `{"services": [{"phases": [{"relays": tru}]}]}`, "services[0].phases[0].relays", "invalid JSON"},
		{"empty", ``, "", "end of input"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			doc, err := ParseJSON([]byte(tc.input))
			if err == nil {
				t.Fatalf("accepted: %+v", doc)
			}
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error %T %v is not a *ParseError", err, err)
			}
			if pe.Field != tc.field {
				t.Errorf("field = %q, want %q (%v)", pe.Field, tc.field, err)
			}
			if !strings.Contains(err.Error(), tc.contains) {
				t.Errorf("error %q does not contain %q", err, tc.contains)
			}
		})
	}
}

func TestParseJSONAccepts(t *testing.T) {
	for _, tc := range []struct {
		name, input string
		want        Document
	}{
		{"empty object", `{}`, Document{}},
		{"null collections", `{"pools": null, "ports": null}`, Document{}},
		{"block all", `{"services": [{"name": "s", "phases": [{"block": "all"}]}]}`,
			Document{Services: []Service{{Name: "s", Phases: []Phase{{Block: Block{All: true}}}}}}},
		{"block empty list", `{"services": [{"name": "s", "phases": [{"block": []}]}]}`,
			Document{Services: []Service{{Name: "s", Phases: []Phase{{Block: Block{Sets: []string{}}}}}}}},
		{"relays false", `{"services": [{"name": "s", "phases": [{"block": "all", "relays": false}]}]}`,
			Document{Services: []Service{{Name: "s", Phases: []Phase{{Block: Block{All: true}, Relays: new(false)}}}}}},
		{"surrounding whitespace", " \n{\"ports\": [25]}\n\t", Document{Ports: []int{25}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			doc, err := ParseJSON([]byte(tc.input))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(*doc, tc.want) {
				t.Errorf("got %+v, want %+v", *doc, tc.want)
			}
		})
	}
}

func TestParseYAML(t *testing.T) {
	for _, tc := range []struct {
		name, input string
		wantErr     string // "" = must parse
		check       func(*Document) bool
	}{
		{"block all", "services:\n- name: s\n  phases:\n  - block: all\n", "", func(d *Document) bool { return d.Services[0].Phases[0].Block.All }},
		{"block list", "services:\n- name: s\n  phases:\n  - block: [a, b]\n", "", func(d *Document) bool {
			return reflect.DeepEqual(d.Services[0].Phases[0].Block.Sets, []string{"a", "b"})
		}},
		{"block block-style list", "services:\n- name: s\n  phases:\n  - block:\n    - a\n", "", func(d *Document) bool {
			return reflect.DeepEqual(d.Services[0].Phases[0].Block.Sets, []string{"a"})
		}},
		{"unquoted timestamp stays text", "services:\n- name: s\n  phases:\n  - {from: 2006-12-01T00:00:00+09:00, block: all}\n", "", func(d *Document) bool {
			return d.Services[0].Phases[0].From == "2006-12-01T00:00:00+09:00"
		}},
		{"unquoted dpid keeps its zeros", "bridges:\n- {dpid: 0000000000000001, name: b}\n", "", func(d *Document) bool { return d.Bridges[0].DPID == "0000000000000001" }},
		{"unknown field", "pools:\n- name: a\n  prefx: 10.0.0.0/8\n", "prefx", nil},
		{"duplicate key", "ports: [25]\nports: [26]\n", "already defined", nil},
		{"block other word", "services:\n- phases:\n  - block: none\n", `"none"`, nil},
		{"block mapping", "services:\n- phases:\n  - block: {a: b}\n", "block must be", nil},
		{"two documents", "ports: [25]\n---\nports: [26]\n", "more than one YAML document", nil},
		{"empty", "", "empty", nil},
		{"only a comment", "# nothing\n", "empty", nil},
		{"null", "~\n", "must be a YAML mapping", nil},
		{"scalar", "hello\n", "must be a YAML mapping", nil},
		{"list", "- a\n", "must be a YAML mapping", nil},
		{"bad syntax", "pools: [\n", "", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			doc, err := ParseYAML([]byte(tc.input))
			if tc.check != nil {
				if err != nil {
					t.Fatal(err)
				}
				if !tc.check(doc) {
					t.Errorf("decoded wrongly: %+v", doc)
				}
				return
			}
			if err == nil {
				t.Fatalf("accepted: %+v", doc)
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("error %q does not contain %q", err, tc.wantErr)
			}
		})
	}
}

func TestParseSniffs(t *testing.T) {
	// JSON is also YAML; the sniffing matters for strictness: YAML would
	// accept {"Name": ...} keys differently, and the JSON errors carry paths.
	_, err := Parse([]byte(`  {"pools": [{"prefx": "x"}]}`))
	var pe *ParseError
	if !errors.As(err, &pe) || pe.Field != "pools[0].prefx" {
		t.Errorf("JSON input not parsed as JSON: %v", err)
	}
	doc, err := Parse([]byte("\xef\xbb\xbf{\"ports\": [25]}"))
	if err != nil || !reflect.DeepEqual(doc.Ports, []int{25}) {
		t.Errorf("JSON with a byte-order mark: %+v, %v", doc, err)
	}
	doc, err = Parse([]byte("ports: [587]\n"))
	if err != nil || !reflect.DeepEqual(doc.Ports, []int{587}) {
		t.Errorf("YAML: %+v, %v", doc, err)
	}
}

func TestJSONRoundTripOfContractExample(t *testing.T) {
	doc, err := ParseJSON(readTestdata(t, "contract-example.json"))
	if err != nil {
		t.Fatal(err)
	}
	data, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	again, err := ParseJSON(data)
	if err != nil {
		t.Fatalf("re-parse of %s: %v", data, err)
	}
	if !reflect.DeepEqual(doc, again) {
		t.Errorf("round trip changed the document:\n%+v\n%+v", doc, again)
	}
}

func BenchmarkParseJSON100kPools(b *testing.B) {
	doc := validDoc()
	doc.Pools = doc.Pools[:0]
	for i := 0; i < 100_000; i++ {
		doc.Pools = append(doc.Pools, Pool{Name: fmt.Sprintf("pool-%d", i), Prefix: fmt.Sprintf("10.%d.%d.%d/30", i>>14, i>>6&0xff, i&0x3f<<2), Kind: KindDynamic, Service: "ftth"})
	}
	data, err := json.Marshal(doc)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseJSON(data); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkUnmarshal100kPools is the baseline for BenchmarkParseJSON100kPools:
// plain, non-strict encoding/json.
func BenchmarkUnmarshal100kPools(b *testing.B) {
	doc := validDoc()
	doc.Pools = doc.Pools[:0]
	for i := 0; i < 100_000; i++ {
		doc.Pools = append(doc.Pools, Pool{Name: fmt.Sprintf("pool-%d", i), Prefix: fmt.Sprintf("10.%d.%d.%d/30", i>>14, i>>6&0xff, i&0x3f<<2), Kind: KindDynamic, Service: "ftth"})
	}
	data, err := json.Marshal(doc)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		var d Document
		if err := json.Unmarshal(data, &d); err != nil {
			b.Fatal(err)
		}
	}
}

func TestParseJSONStrictCases(t *testing.T) {
	// Inputs the fast path must hand to the walker, which rejects them.
	for _, input := range []string{
		`{"pools": [{"NAME": "a"}]}`,
		`{"pools": [{"name": "a", "name": "b"}]}`,
		`{"pools": [{"name": null}]}`,
		`{"ports": [null]}`,
	} {
		if doc, err := ParseJSON([]byte(input)); err == nil {
			t.Errorf("ParseJSON(%s) accepted: %+v", input, doc)
		}
	}
	// An escaped key is the same key (RFC 8259 §7): the walker accepts it.
	if doc, err := ParseJSON([]byte(`{"pools": [{"n\u0061me": "a"}]}`)); err != nil || doc.Pools[0].Name != "a" {
		t.Errorf("escaped key: %+v %v", doc, err)
	}
	// And inputs with nulls where they are allowed still parse.
	doc, err := ParseJSON([]byte(`{"pools": null, "services": [{"name": "s", "phases": [{"block": "all", "relays": null, "pops": null}]}]}`))
	if err != nil || doc.Services[0].Phases[0].Relays != nil {
		t.Errorf("nulls: %+v %v", doc, err)
	}
}
