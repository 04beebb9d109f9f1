package repocheck

import (
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/op25b/op25b/flows"
	"github.com/op25b/op25b/topology"
)

// codeBlocks returns the contents of the ```lang fences of a Markdown file.
func codeBlocks(t *testing.T, file, lang string) []string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	var cur *strings.Builder
	for _, line := range strings.Split(string(b), "\n") {
		switch {
		case cur == nil && strings.TrimSpace(line) == "```"+lang:
			cur = &strings.Builder{}
		case cur != nil && strings.TrimSpace(line) == "```":
			out = append(out, cur.String())
			cur = nil
		case cur != nil:
			cur.WriteString(line + "\n")
		}
	}
	return out
}

// policyExample is the example of docs/policy-document.md, which must be
// valid, be the same in JSON and YAML, and be the example the topology
// tests use.
func policyExample(t *testing.T) *topology.Document {
	t.Helper()
	root := repoRoot(t)
	file := filepath.Join(root, "docs", "policy-document.md")
	parse := func(what, text string) *topology.Document {
		doc, err := topology.Parse([]byte(text))
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if err := topology.Validate(doc); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return doc
	}
	jsonBlocks, yamlBlocks := codeBlocks(t, file, "json"), codeBlocks(t, file, "yaml")
	if len(jsonBlocks) == 0 || len(yamlBlocks) == 0 {
		t.Fatalf("docs/policy-document.md lacks its JSON or YAML example")
	}
	doc := parse("docs/policy-document.md JSON example", jsonBlocks[0])
	if y := parse("docs/policy-document.md YAML example", yamlBlocks[0]); !reflect.DeepEqual(doc, y) {
		t.Errorf("the YAML example is not the JSON example:\n%+v\n%+v", y, doc)
	}
	testdata, err := os.ReadFile(filepath.Join(root, "topology", "testdata", "contract-example.json"))
	if err != nil {
		t.Fatal(err)
	}
	if td := parse("topology/testdata/contract-example.json", string(testdata)); !reflect.DeepEqual(doc, td) {
		t.Errorf("docs/policy-document.md's example differs from topology/testdata/contract-example.json")
	}
	return doc
}

func TestPolicyDocumentExample(t *testing.T) { policyExample(t) }

// The example table of docs/semantics.md agrees with flows.Evaluate, the
// reference the compiled flows are tested against.
func TestSemanticsExample(t *testing.T) {
	doc := policyExample(t)
	file := filepath.Join(repoRoot(t), "docs", "semantics.md")
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	start := strings.Index(text, "### Example")
	if start < 0 {
		t.Fatal("docs/semantics.md has no ### Example")
	}
	jst := time.FixedZone("JST", 9*3600)
	dsts := []string{"198.51.100.25", "203.0.113.25", "192.0.2.25"}
	rows := 0
	for _, line := range strings.Split(text[start:], "\n") {
		cells := strings.Split(strings.Trim(line, "| "), "|")
		if len(cells) != 6 || !strings.HasPrefix(strings.TrimSpace(cells[0]), "2006-") {
			continue
		}
		rows++
		day, err := time.ParseInLocation("2006-01-02", strings.TrimSpace(cells[0]), jst)
		if err != nil {
			t.Fatal(err)
		}
		at := day.Add(12 * time.Hour)
		pops := []string{strings.TrimSpace(cells[1])}
		if pops[0] == "any" {
			pops = []string{"tokyo-1", "osaka-1", ""}
		}
		for _, pop := range pops {
			for i, dst := range dsts {
				want := strings.TrimSpace(cells[3+i])
				p := flows.Packet{Src: netip.MustParseAddr("10.1.2.3"), Dst: netip.MustParseAddr(dst), Proto: flows.IPProtoTCP, DstPort: 25}
				if got := flows.Evaluate(doc, pop, at, p).String(); got != want {
					t.Errorf("docs/semantics.md: %s at pop %q, to %s: the table says %s, flows.Evaluate %s", cells[0], pop, dst, want, got)
				}
			}
		}
	}
	if rows < 5 {
		t.Fatalf("read %d rows of the example table", rows)
	}
	for _, c := range []struct{ src, dst, want string }{
		{"10.1.200.3", "203.0.113.25", "forward"},
		{"2001:db8:1::25", "2001:db8:2::25", "drop"},
		{"2001:db8:1::25", "2001:db8:ffff::25", "drop"},
		{"172.16.0.1", "203.0.113.25", "forward"},
	} {
		p := flows.Packet{Src: netip.MustParseAddr(c.src), Dst: netip.MustParseAddr(c.dst), Proto: flows.IPProtoTCP, DstPort: 25}
		if got := flows.Evaluate(doc, "tokyo-1", time.Date(2007, 1, 1, 0, 0, 0, 0, jst), p).String(); got != c.want {
			t.Errorf("docs/semantics.md: %s → %s is said to be %s, flows.Evaluate says %s", c.src, c.dst, c.want, got)
		}
	}
}
