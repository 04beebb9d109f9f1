package flows

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/op25b/op25b/internal/testenv"

	"github.com/op25b/op25b/topology"
)

func benchmarkCompile(b *testing.B, pools int) {
	doc := syntheticDoc(pools, 8)
	if err := topology.Validate(doc); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	var n int
	for b.Loop() {
		c, err := Compile(doc, stray, genBase, DefaultOptions())
		if err != nil {
			b.Fatal(err)
		}
		n = len(c.Flows)
	}
	b.ReportMetric(float64(n), "flows")
}

func BenchmarkCompile100(b *testing.B)  { benchmarkCompile(b, 100) }
func BenchmarkCompile10k(b *testing.B)  { benchmarkCompile(b, 10_000) }
func BenchmarkCompile100k(b *testing.B) { benchmarkCompile(b, 100_000) }

// benchmarkDiff measures the two diffs a controller computes all the time:
// nothing changed (every audit), and one pool added (a typical API write).
func benchmarkDiff(b *testing.B, pools int) {
	installed := mustCompile(b, syntheticDoc(pools, 8), stray, genBase, DefaultOptions()).Flows
	grown := syntheticDoc(pools, 8)
	grown.Pools = append(grown.Pools, topology.Pool{Name: "added", Prefix: "172.16.0.0/24", Kind: topology.KindDynamic, Service: "svc-1"})
	desired := mustCompile(b, grown, stray, genBase, DefaultOptions()).Flows
	for _, bc := range []struct {
		name    string
		desired []Flow
		want    int
	}{{"unchanged", installed, 0}, {"one-pool-added", desired, 2}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if got := len(Diff(bc.desired, installed)); got != bc.want {
					b.Fatalf("%d changes, want %d", got, bc.want)
				}
			}
			b.ReportMetric(float64(len(installed)), "flows")
		})
	}
}

func BenchmarkDiff100(b *testing.B)  { benchmarkDiff(b, 100) }
func BenchmarkDiff10k(b *testing.B)  { benchmarkDiff(b, 10_000) }
func BenchmarkDiff100k(b *testing.B) { benchmarkDiff(b, 100_000) }

// BenchmarkRenderSet100k is the cost of showing a bridge's flows (API,
// op25bctl flows) or feeding them to ovs-ofctl.
func BenchmarkRenderSet100k(b *testing.B) {
	fs := mustCompile(b, syntheticDoc(100_000, 8), stray, genBase, DefaultOptions()).Flows
	b.ReportAllocs()
	for b.Loop() {
		_ = RenderSet(fs)
	}
	b.ReportMetric(float64(len(fs)), "flows")
}

// BenchmarkCompileVsOfctl100k puts Compile+RenderSet of 100k pools next to
// loading the same flows with `ovs-ofctl -O OpenFlow13 --bundle add-flows`
// into an empty netdev bridge, measured in the same run: compile must be a
// small fraction of getting the flows into a switch.
func BenchmarkCompileVsOfctl100k(b *testing.B) {
	br := testenv.NewBridge(b, "")
	doc := syntheticDoc(100_000, 8)
	path := filepath.Join(b.TempDir(), "flows.txt")
	var compiling, loading time.Duration
	var n int
	for b.Loop() {
		start := time.Now()
		c, err := Compile(doc, stray, genBase, DefaultOptions())
		if err != nil {
			b.Fatal(err)
		}
		text := RenderSet(c.Flows)
		compiling += time.Since(start)
		n = len(c.Flows)

		b.StopTimer()
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			b.Fatal(err)
		}
		br.Ofctl(b, "del-flows", br.Name) // the benchmark's own bridge
		start = time.Now()
		br.Ofctl(b, "--bundle", "add-flows", br.Name, path)
		loading += time.Since(start)
		b.StartTimer()
	}
	iterations := time.Duration(b.N)
	msg := fmt.Sprintf("flows: %d flows; compile+render %v/op, ovs-ofctl --bundle add-flows %v/op; ratio ovs-ofctl/compile = %.1fx",
		n, (compiling / iterations).Round(time.Millisecond), (loading / iterations).Round(time.Millisecond),
		float64(loading)/float64(compiling))
	b.Log(msg)
	fmt.Println("ratio", msg)
}

// BenchmarkCompileOverrides100k: 100k pools with 10k exemptions and 10k
// quarantines in force next to the same pools without them, in the same run:
// the helpdesk's entries must not change what a compile costs by much.
//
//	go test ./flows -run XXX -bench CompileOverrides -benchtime 3x
func BenchmarkCompileOverrides100k(b *testing.B) {
	plain := syntheticDoc(100_000, 8)
	with := syntheticDoc(100_000, 8)
	until := genBase.Add(time.Hour).Format(time.RFC3339)
	for i := range 10_000 {
		with.Exemptions = append(with.Exemptions, topology.Exemption{Name: fmt.Sprintf("e-%d", i),
			Prefix: fmt.Sprintf("10.%d.%d.%d/32", i>>8&0xff, i&0xff, 7), Until: until, Reason: "bench", Ticket: "B"})
		with.Quarantines = append(with.Quarantines, topology.Quarantine{Name: fmt.Sprintf("q-%d", i),
			Prefix: fmt.Sprintf("10.%d.%d.%d/32", i>>8&0xff, i&0xff, 9), Until: until, Reason: "bench", Ticket: "B"})
	}
	for _, d := range []*topology.Document{plain, with} {
		if err := topology.Validate(d); err != nil {
			b.Fatal(err)
		}
	}
	measure := func(doc *topology.Document) (time.Duration, int) {
		start := time.Now()
		c, err := Compile(doc, stray, genBase, DefaultOptions())
		if err != nil {
			b.Fatal(err)
		}
		return time.Since(start), len(c.Flows)
	}
	var tPlain, tWith time.Duration
	var nPlain, nWith int
	for b.Loop() {
		d, n := measure(plain)
		tPlain, nPlain = tPlain+d, n
		d, n = measure(with)
		tWith, nWith = tWith+d, n
	}
	b.ReportMetric(float64(nPlain), "flows-plain")
	b.ReportMetric(float64(nWith), "flows-with")
	b.ReportMetric(float64(tWith)/float64(tPlain), "ratio-with/plain")
}

// BenchmarkExplain100k is the reference evaluator behind GET /v1/explain on
// a 100k-pool document with 10k quarantines: a loop over the document per
// question, which a helpdesk asks a few times a minute.
func BenchmarkExplain100k(b *testing.B) {
	doc := syntheticDoc(100_000, 8)
	until := genBase.Add(time.Hour).Format(time.RFC3339)
	for i := range 10_000 {
		doc.Quarantines = append(doc.Quarantines, topology.Quarantine{Name: fmt.Sprintf("q-%d", i),
			Prefix: fmt.Sprintf("10.%d.%d.%d/32", i>>8&0xff, i&0xff, 9), Until: until, Reason: "bench", Ticket: "B"})
	}
	p := tcp("10.1.2.3", "203.0.113.25", 25)
	for b.Loop() {
		_ = Explain(doc, "", genBase, p)
	}
}
