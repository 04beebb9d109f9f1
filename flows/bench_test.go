package flows

import (
	"testing"

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
