package flows

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/op25b/op25b/topology"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current compiler")

// goldenCase is one document compiled for a few bridges and instants; the
// golden file holds every section, each headed by a comment line (ovs-ofctl
// add-flows ignores '#' lines, so a single section can be fed to it as is).
type goldenCase struct {
	doc      string
	sections []goldenSection
}

type goldenSection struct {
	dpid topology.DPID
	at   string
}

var goldenCases = []goldenCase{
	{"contract-example", []goldenSection{
		{"0000000000000001", "2006-10-01T00:00:00+09:00"},
		{"0000000000000001", "2006-11-20T00:00:00+09:00"},
		{"00000000000000ff", "2006-12-05T00:00:00+09:00"},
		{"0000000000000001", "2006-12-15T00:00:00+09:00"},
	}},
	{"ipv6-heavy", []goldenSection{
		{"00000000000000a1", "2026-05-01T00:00:00Z"},
		{"00000000000000b1", "2026-06-01T00:00:00+09:00"},
	}},
	{"mobile-carrier-phased", []goldenSection{
		{"0000000000001001", "2026-02-15T00:00:00+09:00"},
		{"0000000000001001", "2026-03-01T00:00:00+09:00"},
		{"0000000000002001", "2026-03-01T00:00:00+09:00"},
		{"0000000000002001", "2026-04-01T00:00:00+09:00"},
	}},
	// Exemptions, quarantines, observe mode: before and after each until.
	{"helpdesk", []goldenSection{
		{"0000000000000001", "2026-11-20T00:00:00+09:00"},
		{"0000000000000001", "2026-11-30T12:00:00+09:00"},
		{"0000000000000001", "2026-12-01T00:00:00+09:00"},
		{"00000000000000ff", "2026-12-15T00:00:00+09:00"},
	}},
}

func TestGolden(t *testing.T) {
	for _, gc := range goldenCases {
		t.Run(gc.doc, func(t *testing.T) {
			doc := loadDoc(t, filepath.Join("testdata", gc.doc+".json"))
			var b strings.Builder
			for _, s := range gc.sections {
				at, err := time.Parse(time.RFC3339, s.at)
				if err != nil {
					t.Fatal(err)
				}
				c := mustCompile(t, doc, s.dpid, at, DefaultOptions())
				fmt.Fprintf(&b, "# dpid=%s pop=%q at=%s flows=%d\n", s.dpid, dpidPop(doc, s.dpid), s.at, len(c.Flows))
				b.WriteString(RenderSet(c.Flows))
			}
			path := filepath.Join("testdata", gc.doc+".golden")
			if *update {
				if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test ./flows -update)", err)
			}
			if got := b.String(); got != string(want) {
				t.Errorf("%s differs from the compiler's output (review, then go test ./flows -update):\n%s", path, lineDiff(string(want), got))
			}
		})
	}
}

// lineDiff lists lines only in want (-) or only in got (+).
func lineDiff(want, got string) string {
	count := map[string]int{}
	for _, l := range strings.Split(want, "\n") {
		count[l]++
	}
	for _, l := range strings.Split(got, "\n") {
		count[l]--
	}
	var b strings.Builder
	for l, n := range count {
		for ; n > 0; n-- {
			b.WriteString("- " + l + "\n")
		}
		for ; n < 0; n++ {
			b.WriteString("+ " + l + "\n")
		}
	}
	return b.String()
}
