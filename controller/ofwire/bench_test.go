package ofwire_test

// Benchmarks of the hand encoder and decoder against netrack/openflow's
// reflection encoder and decoder on the same 100k messages, measured in
// the same run; each prints its ratio (ofwire / netrack, lower is better):
//
//	go test ./controller/ofwire -run XXX -bench . -benchtime 3x
//
// Timings are reported, never asserted.

import (
	"bytes"
	"fmt"
	"net/netip"
	"sort"
	"testing"
	"time"

	of "github.com/netrack/openflow"
	"github.com/netrack/openflow/ofp"

	"github.com/op25b/op25b/controller/ofwire"
	"github.com/op25b/op25b/controller/ofwire/ofwiretest"
	"github.com/op25b/op25b/flows"
)

const benchFlows = 100_000

// benchFlowSet is 100k distinct op25b drop flows (one /32 source each,
// tcp_dst 25) plus a catch-all forward: the shape of the controller's
// install benchmark.
func benchFlowSet() []flows.Flow {
	fs := make([]flows.Flow, 0, benchFlows)
	a := netip.MustParseAddr("10.0.0.0")
	for i := 0; i < benchFlows-1; i++ {
		m := flows.Match{EthType: flows.EthTypeIPv4, IPProto: flows.IPProtoTCP, TCPDst: 25, Src: netip.PrefixFrom(a, 32)}
		fs = append(fs, flows.Flow{Table: 0, Priority: 1000, Cookie: flows.CookieMarker | uint64(i+1), Match: m})
		a = a.Next()
	}
	return append(fs, flows.Flow{Table: 0, Priority: 0, Cookie: flows.CookieMarker | 0xffffffff, Actions: flows.Actions{Output: flows.PortNormal}})
}

func median(ds []time.Duration) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

func reportRatio(b *testing.B, what string, ours, theirs []time.Duration, theirName string) {
	o, t := median(ours), median(theirs)
	ratio := float64(o) / float64(t)
	msg := fmt.Sprintf("ratio %s: ofwire %v / %s %v = %.3f (%.1f× faster, median of %d)",
		what, o.Round(time.Microsecond), theirName, t.Round(time.Microsecond), ratio, 1/ratio, len(ours))
	b.Log(msg)
	fmt.Println(msg)
	b.ReportMetric(ratio, "ratio/"+theirName)
	b.ReportMetric(float64(o.Microseconds())/1000, "ms/ofwire")
	b.ReportMetric(float64(t.Microseconds())/1000, "ms/"+theirName)
}

// 100k FLOW_MODs (ADD) into one buffer, as a reconcile writes them: ofwire
// against netrack building each ofp.FlowMod and encoding it
// (netrack-build), and against netrack's encoding alone with the messages
// built beforehand (netrack-encode). Both produce the same bytes.
func BenchmarkEncodeFlowMods100k(b *testing.B) {
	mods := make([]ofwire.FlowMod, 0, benchFlows)
	for _, f := range benchFlowSet() {
		mods = append(mods, addOf(f))
	}
	built := make([]*ofp.FlowMod, len(mods))
	for i, fm := range mods {
		built[i] = ofwiretest.FlowMod(fm)
	}
	netrackEncode := func(buf *bytes.Buffer, i int, m *ofp.FlowMod) {
		req := of.NewRequest(of.TypeFlowMod, m)
		req.Header.Transaction = uint32(i + 1)
		if _, err := req.WriteTo(buf); err != nil {
			b.Fatal(err)
		}
	}
	buf := make([]byte, 0, 12<<20)
	var nb bytes.Buffer
	nb.Grow(12 << 20)
	var ours, build, encode []time.Duration
	b.ResetTimer()
	for n := 0; n < b.N; n++ {
		t0 := time.Now()
		buf = buf[:0]
		for i, fm := range mods {
			buf = ofwire.AppendFlowMod(buf, uint32(i+1), fm)
		}
		t1 := time.Now()
		nb.Reset()
		for i, fm := range mods {
			netrackEncode(&nb, i, ofwiretest.FlowMod(fm))
		}
		t2 := time.Now()
		nb.Reset()
		for i, m := range built {
			netrackEncode(&nb, i, m)
		}
		t3 := time.Now()
		ours, build, encode = append(ours, t1.Sub(t0)), append(build, t2.Sub(t1)), append(encode, t3.Sub(t2))
	}
	b.StopTimer()
	if !bytes.Equal(buf, nb.Bytes()) {
		b.Fatal("ofwire and netrack encoded different bytes")
	}
	b.ReportMetric(float64(len(buf))/(1<<20), "MB")
	reportRatio(b, "encode-100k-flow-mods", ours, build, "netrack-build")
	reportRatio(b, "encode-100k-flow-mods", ours, encode, "netrack-encode")
}

// Decoding a 100k-entry FLOW_STATS body (one reassembled dump): ofwire
// into flows.Flow values against netrack into its own ofp.FlowStats values
// (without the conversion to flows.Flow a netrack-based controller would
// still need).
func BenchmarkDecodeFlowStats100k(b *testing.B) {
	dump := ofwiretest.FlowStatsEntries(benchFlowSet(), 1)
	out := make([]ofwire.FlowStatsEntry, 0, benchFlows)
	var ours, theirs []time.Duration
	b.ResetTimer()
	for n := 0; n < b.N; n++ {
		t0 := time.Now()
		var err error
		if out, err = ofwire.DecodeFlowStats(dump, out[:0]); err != nil || len(out) != benchFlows {
			b.Fatalf("ofwire: %d entries, %v", len(out), err)
		}
		t1 := time.Now()
		r := bytes.NewReader(dump)
		count := 0
		for r.Len() > 0 {
			var fs ofp.FlowStats
			if _, err := fs.ReadFrom(r); err != nil {
				b.Fatalf("netrack: entry %d: %v", count, err)
			}
			count++
		}
		t2 := time.Now()
		if count != benchFlows {
			b.Fatalf("netrack decoded %d entries", count)
		}
		ours, theirs = append(ours, t1.Sub(t0)), append(theirs, t2.Sub(t1))
	}
	b.StopTimer()
	reportRatio(b, "decode-100k-flow-stats", ours, theirs, "netrack")
}
