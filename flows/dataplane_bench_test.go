package flows

// BenchmarkDataPlaneTax100k: TCP throughput (iperf3) through a netdev
// bridge between two network namespaces, a bridge holding the 100k-pool
// policy against an identical one holding only NORMAL, alternated in the
// same run and reported as a ratio:
//
//	go test -run XXX -bench DataPlaneTax -benchtime 3x ./flows/
//
// The sender's address is in a dynamic pool whose SMTP is blocked; iperf3
// uses its own port, so the policy forwards it after the classifier's one
// L4 match (TestOVSMegaflowIndependentOfPoolCount shows the datapath sees
// the same megaflow as with 10 pools).

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/op25b/op25b/internal/testenv"
)

const (
	taxSender   = "10.0.2.5"    // pool-000002 of syntheticDoc: dynamic, SMTP blocked
	taxReceiver = "203.0.113.7" // not a subscriber
	taxSeconds  = 5
)

// netns is a network namespace with one veth whose peer is a port of a
// bridge; created for one benchmark and removed (with the veth) at its end.
type netns struct {
	name, inner, outer string
}

// addHost creates a namespace with addr/32 on a veth plugged into br, a
// default route through it, and checksum offload off on both ends (TCP
// through the userspace datapath fails checksums otherwise).
func addHost(tb testing.TB, br testenv.Bridge, addr string, ofport int) netns {
	tb.Helper()
	n := netns{name: testenv.UniqueName("ns"), inner: testenv.UniqueName("vi"), outer: testenv.UniqueName("vo")}
	testenv.Run(tb, "ip", "netns", "add", n.name)
	tb.Cleanup(func() { _, _ = testenv.RunErr("ip", "netns", "del", n.name) }) // takes the veth pair with it
	testenv.Run(tb, "ip", "link", "add", n.outer, "type", "veth", "peer", "name", n.inner)
	tb.Cleanup(func() { _, _ = testenv.RunErr("ip", "link", "del", n.outer) }) // if the namespace never got it
	testenv.Run(tb, "ip", "link", "set", n.inner, "netns", n.name)
	in := func(args ...string) { testenv.Run(tb, "ip", append([]string{"netns", "exec", n.name}, args...)...) }
	in("ip", "link", "set", "lo", "up")
	in("ip", "addr", "add", addr+"/32", "dev", n.inner)
	in("ip", "link", "set", n.inner, "up")
	in("ip", "route", "add", "default", "dev", n.inner)
	in("ethtool", "-K", n.inner, "tx", "off", "rx", "off")
	testenv.Run(tb, "ip", "link", "set", n.outer, "up")
	testenv.Run(tb, "ethtool", "-K", n.outer, "tx", "off", "rx", "off")
	testenv.Run(tb, "ovs-vsctl", "--timeout=10", "add-port", br.Name, n.outer, "--",
		"set", "interface", n.outer, fmt.Sprintf("ofport_request=%d", ofport))
	return n
}

// iperf3Server runs `iperf3 -s` in ns until the benchmark ends.
func iperf3Server(tb testing.TB, ns netns) {
	tb.Helper()
	cmd := exec.Command("ip", "netns", "exec", ns.name, "iperf3", "-s", "-B", taxReceiver)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
}

// iperf3Run is one TCP test from the sender's namespace; it returns the
// receiver's bits per second.
func iperf3Run(tb testing.TB, ns netns) float64 {
	tb.Helper()
	var res struct {
		End struct {
			SumReceived struct {
				BitsPerSecond float64 `json:"bits_per_second"`
			} `json:"sum_received"`
		} `json:"end"`
		Error string `json:"error"`
	}
	var out []byte
	var err error
	for try := 0; try < 20; try++ { // the server may still be starting
		out, err = exec.Command("ip", "netns", "exec", ns.name, "iperf3", "-c", taxReceiver, "-t", fmt.Sprint(taxSeconds), "-J").Output()
		if err == nil {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	if jerr := json.Unmarshal(out, &res); err != nil || jerr != nil || res.Error != "" || res.End.SumReceived.BitsPerSecond == 0 {
		tb.Fatalf("iperf3: %v %v %s\n%s", err, jerr, res.Error, out)
	}
	return res.End.SumReceived.BitsPerSecond
}

func medianFloat(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	return s[len(s)/2]
}

func BenchmarkDataPlaneTax100k(b *testing.B) {
	for _, tool := range []string{"iperf3", "ethtool", "ip"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") != "" {
				b.Fatalf("%s is required under CI (Makefile APT_PACKAGES): %v", tool, err)
			}
			b.Skipf("%s not installed: %v", tool, err)
		}
	}
	// Two bridges of the one userspace datapath, each between its own pair
	// of namespaces, loaded once: no flow-table churn during the runs.
	type path struct {
		br     testenv.Bridge
		sender netns
	}
	newPath := func(flowFile string) path {
		br := testenv.NewBridge(b, "")
		p := path{br: br, sender: addHost(b, br, taxSender, 1)}
		iperf3Server(b, addHost(b, br, taxReceiver, 2))
		br.Ofctl(b, "--bundle", "add-flows", br.Name, flowFile)
		return p
	}
	policy := mustCompile(b, syntheticDoc(100_000, 8), stray, genBase, DefaultOptions()).Flows
	policyFile := filepath.Join(b.TempDir(), "policy.txt")
	if err := os.WriteFile(policyFile, []byte(RenderSet(policy)), 0o644); err != nil {
		b.Fatal(err)
	}
	bareFile := filepath.Join(b.TempDir(), "bare.txt")
	if err := os.WriteFile(bareFile, []byte("priority=0 actions=NORMAL\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	enforced, plain := newPath(policyFile), newPath(bareFile)
	br := enforced.br
	// The path is enforced: SMTP from the sender is dropped, iperf3 is not.
	if v := br.Trace(b, fmt.Sprintf("tcp,in_port=1,nw_src=%s,nw_dst=%s,tcp_dst=25", taxSender, taxReceiver)); v != "drop" {
		b.Fatalf("SMTP from the blocked pool is not dropped: %s", v)
	}
	if v := br.Trace(b, fmt.Sprintf("tcp,in_port=1,nw_src=%s,nw_dst=%s,tcp_dst=5201", taxSender, taxReceiver)); v == "drop" {
		b.Fatal("iperf3's port is dropped by the policy")
	}

	time.Sleep(2 * time.Second) // let ovs-vswitchd finish with the 175k-flow load
	var bare, withPolicy []float64
	b.ResetTimer()
	for i := range b.N {
		// ABBA order, so that neither side always runs second.
		if i%2 == 0 {
			bare = append(bare, iperf3Run(b, plain.sender))
			withPolicy = append(withPolicy, iperf3Run(b, enforced.sender))
		} else {
			withPolicy = append(withPolicy, iperf3Run(b, enforced.sender))
			bare = append(bare, iperf3Run(b, plain.sender))
		}
	}
	b.StopTimer()
	if n := strings.Count(br.Ofctl(b, "dump-flows", br.Name), "cookie=0x25b"); n != len(policy) {
		b.Fatalf("%d op25b flows on the bridge after the runs, want %d", n, len(policy))
	}
	if n := strings.Count(plain.br.Ofctl(b, "dump-flows", plain.br.Name), "cookie=0x25b"); n != 0 {
		b.Fatalf("%d op25b flows on the bare bridge", n)
	}
	// Each policy run is compared with the bare run next to it, so a
	// neighbour's load on the shared machine moves both sides of a ratio.
	ratios := make([]float64, len(bare))
	lo, hi := 0.0, 0.0
	for i := range bare {
		ratios[i] = withPolicy[i] / bare[i]
		if i == 0 || ratios[i] < lo {
			lo = ratios[i]
		}
		if i == 0 || ratios[i] > hi {
			hi = ratios[i]
		}
	}
	mb, mp, ratio := medianFloat(bare), medianFloat(withPolicy), medianFloat(ratios)
	msg := fmt.Sprintf("ratio data-plane-tax: iperf3 TCP with the 100k-pool policy (%d flows) %.2f Gbit/s / bare NORMAL bridge %.2f Gbit/s = %.3f (median of %d alternated pairs of %ds, pair ratios %.2f-%.2f; two netdev bridges, veth between namespaces)",
		len(policy), mp/1e9, mb/1e9, ratio, len(bare), taxSeconds, lo, hi)
	b.Log(msg)
	fmt.Println(msg)
	b.ReportMetric(ratio, "ratio")
	b.ReportMetric(mp/1e9, "Gbit/s-policy")
	b.ReportMetric(mb/1e9, "Gbit/s-bare")
}
