package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/op25b/op25b/client"
	"github.com/op25b/op25b/flows"
	"github.com/op25b/op25b/internal/synstorm"
	"github.com/op25b/op25b/internal/testenv"
	"github.com/op25b/op25b/topology"
)

// Storm parameters: 10,000 sources each trying 3 destinations (30,000
// pairs, under the default learn limit of 50,000) for stormDuration, at
// each of stormRates SYNs per second.
const (
	stormSources      = 10_000
	stormDestinations = 3
	stormDuration     = 20 * time.Second
	stormPools        = 1000 // other pools of the document, so a policy change is a realistic one
)

// stormRates: tens of thousands per second, and a rate a netdev bridge on
// a shared 2-core machine forwards without loss, where counts can be
// checked against what was sent.
var stormRates = []int{30_000, 10_000}

// BenchmarkOffenderStorm runs op25bd (one replica, embedded etcd) with a
// netdev bridge whose port is a network namespace sending an offender
// storm (synstorm: raw SYNs on an AF_PACKET socket, bounded in time), and
// measures, in the same run:
//
//   - op25bd's CPU and RSS, quiet and during the storm;
//
//   - the flow table: learned flows, datapath flows;
//
//   - the latency of a policy change (one pool added, until the bridge's
//     barrier-acknowledged applied revision) quiet and during the storm;
//
//   - what the switch processed and op25bd attributed, against what was sent;
//
//   - ovs-vswitchd's CPU, with the offender table and, as the reference, on
//     a second bridge with the same policy whose drop-count flows drop
//     directly (no per-source counting), under the same storm.
//
//     go test -run '^$' -bench OffenderStorm -benchtime 1x ./cmd/op25bd/
func BenchmarkOffenderStorm(b *testing.B) {
	testenv.RequireOVS(b)
	storm := buildStorm(b)
	for _, rate := range stormRates {
		b.Run(fmt.Sprintf("rate=%d", rate), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				r := runStorm(b, storm, rate)
				b.ReportMetric(r.changeStorm.Seconds()*1000, "change-ms-storm")
				b.ReportMetric(r.changeQuiet.Seconds()*1000, "change-ms-quiet")
				b.ReportMetric(r.cpuStorm*100, "op25bd-cpu%-storm")
				b.ReportMetric(float64(r.rssStorm)/1e6, "op25bd-rss-MB")
				b.ReportMetric(float64(r.learned), "learned-flows")
				b.ReportMetric(r.vswitchdCPU*100, "vswitchd-cpu%")
				b.ReportMetric(r.vswitchdCPURef*100, "vswitchd-cpu%-ref")
				b.Logf("\n%s", r.table())
			}
		})
	}
}

// stormResult is one run's figures.
type stormResult struct {
	stormRate                       int
	sent, sentRef                   uint64
	rate                            float64
	counted, attributed, untracked  uint64
	sources                         int
	truncated                       bool
	learned, datapathFlows, flows   int
	changeQuiet, changeStorm        time.Duration
	changesQuiet, changesStorm      []time.Duration
	cpuQuiet, cpuStorm              float64 // op25bd, cores
	rssQuiet, rssStorm, hwm         uint64
	vswitchdCPU, vswitchdCPURef     float64
	processed, processedRef         uint64 // packets the pipeline's OpenFlow counters saw during the storm
	received, receivedRef           uint64 // packets the switch's port received
	firstPassCPU, firstPassCPURef   float64
	firstPassProcessed, firstPassRe uint64
}

func (r stormResult) table() string {
	var b strings.Builder
	fmt.Fprintf(&b, "storm: %d sources × %d destinations, %d SYN/s for %s, sent %d (%.0f/s)\n", stormSources, stormDestinations, r.stormRate, stormDuration, r.sent, r.rate)
	fmt.Fprintf(&b, "| what | quiet | during the storm | ratio |\n|---|---|---|---|\n")
	fmt.Fprintf(&b, "| policy change (one pool added) to barrier-acknowledged, median of %d | %s | %s | %.2f |\n", len(r.changesStorm),
		r.changeQuiet.Round(time.Millisecond), r.changeStorm.Round(time.Millisecond), r.changeStorm.Seconds()/r.changeQuiet.Seconds())
	fmt.Fprintf(&b, "| op25bd CPU (cores) | %.3f | %.3f | |\n", r.cpuQuiet, r.cpuStorm)
	fmt.Fprintf(&b, "| op25bd RSS | %.1f MB | %.1f MB (peak %.1f MB) | |\n", float64(r.rssQuiet)/1e6, float64(r.rssStorm)/1e6, float64(r.hwm)/1e6)
	fmt.Fprintf(&b, "\n| switch | with the offender table | reference: same policy, drop-count flows drop directly | ratio |\n|---|---|---|---|\n")
	fmt.Fprintf(&b, "| ovs-vswitchd CPU (cores), whole storm | %.2f | %.2f | %.2f |\n", r.vswitchdCPU, r.vswitchdCPURef, r.vswitchdCPU/max(r.vswitchdCPURef, 0.001))
	fmt.Fprintf(&b, "| ovs-vswitchd CPU (cores), first 5 s (every pair new) | %.2f | %.2f | %.2f |\n", r.firstPassCPU, r.firstPassCPURef, r.firstPassCPU/max(r.firstPassCPURef, 0.001))
	fmt.Fprintf(&b, "| SYNs the kernel delivered to the bridge port / sent | %d / %d (%.1f%%) | %d / %d (%.1f%%) | |\n", r.received, r.sent, pct(r.received, r.sent),
		r.receivedRef, r.sentRef, pct(r.receivedRef, r.sentRef))
	fmt.Fprintf(&b, "| SYNs ovs-vswitchd processed (its flow counters) / delivered | %d (%.1f%%) | %d (%.1f%%) | |\n", r.processed, pct(r.processed, r.received),
		r.processedRef, pct(r.processedRef, r.receivedRef))
	fmt.Fprintf(&b, "| SYNs processed in the first 5 s | %d | %d | |\n", r.firstPassProcessed, r.firstPassRe)
	fmt.Fprintf(&b, "\noffender table: %d learned flows (limit %d), %d datapath flows, %d op25b flows\n", r.learned, flows.DefaultOffenderFlows, r.datapathFlows, r.flows)
	fmt.Fprintf(&b, "attributed by op25bd: %d attempts over %d sources (+ %d untracked), truncated %v; the switch counted %d\n",
		r.attributed, r.sources, r.untracked, r.truncated, r.counted)
	return b.String()
}

func pct(a, b uint64) float64 {
	if b == 0 {
		return 0
	}
	return 100 * float64(a) / float64(b)
}

// buildStorm builds the synstorm command.
func buildStorm(b *testing.B) string {
	dir := b.TempDir()
	bin := filepath.Join(dir, "synstorm")
	if out, err := exec.Command("go", "build", "-o", bin, "../../internal/synstorm/synstorm").CombinedOutput(); err != nil {
		b.Fatalf("go build synstorm: %v\n%s", err, out)
	}
	return bin
}

// stormDoc: stormPools /24 pools plus the storm's /16, all dynamic and
// blocked, one bridge.
func stormDoc(dpid topology.DPID) *topology.Document {
	doc := &topology.Document{
		Relays:   []topology.Relay{{Name: "msa", Prefix: "192.0.2.25/32"}},
		Services: []topology.Service{{Name: "ftth", Phases: []topology.Phase{{Block: topology.Block{All: true}}}}},
		Bridges:  []topology.Bridge{{DPID: dpid, Name: "storm-1", Pop: "storm-pop"}},
		Pools:    []topology.Pool{{Name: "storm-dyn", Prefix: "10.64.0.0/16", Kind: topology.KindDynamic, Service: "ftth"}},
	}
	for i := range stormPools {
		doc.Pools = append(doc.Pools, topology.Pool{Name: fmt.Sprintf("pool-%04d", i), Prefix: fmt.Sprintf("10.%d.%d.0/24", 100+i/256, i%256),
			Kind: topology.KindDynamic, Service: "ftth"})
	}
	return doc
}

func runStorm(b *testing.B, stormBin string, rate int) stormResult {
	r := stormResult{stormRate: rate}
	d := startDaemon(b, "op25b-storm", "--data-dir", b.TempDir(), "--log-level", "info")
	pid := d.cmd.Process.Pid
	br := testenv.NewBridge(b, "")
	host := br.AddHost(b, 1, netip.MustParseAddr("10.64.255.254"))
	br.SetController(b, "tcp:"+d.openflow)
	doc := stormDoc(br.DPID)
	js, _ := json.Marshal(doc)
	rev := putConfig(b, d.api, string(js))
	c, err := client.New(d.api, client.Options{})
	if err != nil {
		b.Fatal(err)
	}
	waitApplied := func(rev int64) {
		testenv.Eventually(b, 5*time.Minute, fmt.Sprintf("revision %d applied", rev), func() bool {
			s, err := getStatus(d.api)
			return err == nil && len(s.Bridges) == 1 && s.Bridges[0].AppliedRevision >= rev
		})
	}
	waitApplied(rev)
	// A policy change: one pool added, timed to the bridge's applied
	// revision (acknowledged by a barrier).
	changes := 0
	change := func() time.Duration {
		changes++
		pool := topology.Pool{Name: fmt.Sprintf("added-%03d", changes), Prefix: fmt.Sprintf("10.200.%d.0/24", changes), Kind: topology.KindDynamic, Service: "ftth"}
		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		rev, err := c.PutItem(ctx, topology.ItemPools, pool.Name, pool, 0)
		if err != nil {
			b.Fatal(err)
		}
		for {
			s, err := getStatus(d.api)
			if err == nil && len(s.Bridges) == 1 && s.Bridges[0].AppliedRevision >= rev {
				return time.Since(start)
			}
			if time.Since(start) > 2*time.Minute {
				b.Fatalf("policy change not applied after 2 minutes")
			}
			time.Sleep(2 * time.Millisecond)
		}
	}

	// Quiet: policy changes and op25bd's footprint with nothing to count.
	cpu0 := procCPU(b, pid)
	t0 := time.Now()
	for range 5 {
		r.changesQuiet = append(r.changesQuiet, change())
		time.Sleep(time.Second)
	}
	r.cpuQuiet = (procCPU(b, pid) - cpu0).Seconds() / time.Since(t0).Seconds()
	r.rssQuiet = procRSS(b, pid, "VmRSS")

	// The storm, through op25b's pipeline.
	vs := vswitchdPID(b)
	aggregate := func(name string, table int) uint64 { return tablePackets(b, name, table) }
	before, rx0 := aggregate(br.Name, 4), portRx(b, host.Port)
	vs0, cpu0 := procCPU(b, vs), procCPU(b, pid)
	t0 = time.Now()
	done := startStorm(b, stormBin, host, rate)
	time.Sleep(5 * time.Second)
	r.firstPassCPU = (procCPU(b, vs) - vs0).Seconds() / time.Since(t0).Seconds()
	r.firstPassProcessed = aggregate(br.Name, 4) - before
	var rss []uint64
	for range 5 {
		r.changesStorm = append(r.changesStorm, change())
		rss = append(rss, procRSS(b, pid, "VmRSS"))
		time.Sleep(time.Second)
	}
	res := <-done
	r.vswitchdCPU = (procCPU(b, vs) - vs0).Seconds() / time.Since(t0).Seconds()
	r.cpuStorm = (procCPU(b, pid) - cpu0).Seconds() / time.Since(t0).Seconds()
	r.sent, r.rate = res.Sent, float64(res.Sent)/res.Elapsed.Seconds()
	slices.Sort(rss)
	r.rssStorm, r.hwm = rss[len(rss)-1], procRSS(b, pid, "VmHWM")
	time.Sleep(2 * time.Second) // the datapath's counters reach the flows
	r.processed, r.received = aggregate(br.Name, 4)-before, portRx(b, host.Port)-rx0
	r.learned = countFlows(b, br.Name, fmt.Sprintf("table=4,cookie=%#x/%#x", flows.LearnedCookie, flows.CookieMask))
	r.flows = countFlows(b, br.Name, fmt.Sprintf("cookie=%#x/%#x", flows.CookieMarker, flows.CookieMask))
	r.datapathFlows = datapathFlows(b)
	// op25bd reads every 10 s: wait for two reads, then ask.
	time.Sleep(2 * controllerOffenderInterval)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	off, err := c.Offenders(ctx, client.OffendersQuery{Since: time.Hour, Limit: 10000})
	if err != nil {
		b.Fatal(err)
	}
	r.sources, r.truncated = len(off.Offenders), off.Truncated
	for _, o := range off.Offenders {
		r.attributed += o.Attempts
	}
	r.untracked = metricValue(b, d.api, "op25b_offender_untracked_attempts_total")
	r.counted = r.processed

	// The reference: the same compiled policy on another bridge, without
	// the offender table (drop-count flows drop), loaded with ovs-ofctl.
	ref := testenv.NewBridge(b, "")
	refHost := ref.AddHost(b, 1, netip.MustParseAddr("10.64.255.254"))
	compiled, err := flows.Compile(doc, ref.DPID, time.Now(), flows.DefaultOptions())
	if err != nil {
		b.Fatal(err)
	}
	var policy []flows.Flow
	for _, f := range compiled.Flows {
		if f.Table == 4 {
			continue
		}
		f.Actions.Resubmit, f.Actions.ResubmitTable = false, 0
		policy = append(policy, f)
	}
	path := filepath.Join(b.TempDir(), "ref.txt")
	if err := os.WriteFile(path, []byte(flows.RenderSet(policy)), 0o644); err != nil {
		b.Fatal(err)
	}
	ref.Ofctl(b, "--bundle", "add-flows", ref.Name, path)
	before, rx0 = aggregate(ref.Name, 3), portRx(b, refHost.Port)
	vs0, t0 = procCPU(b, vs), time.Now()
	done = startStorm(b, stormBin, refHost, rate)
	time.Sleep(5 * time.Second)
	r.firstPassCPURef = (procCPU(b, vs) - vs0).Seconds() / time.Since(t0).Seconds()
	r.firstPassRe = aggregate(ref.Name, 3) - before
	res = <-done
	r.vswitchdCPURef = (procCPU(b, vs) - vs0).Seconds() / time.Since(t0).Seconds()
	r.sentRef = res.Sent
	time.Sleep(2 * time.Second)
	r.processedRef, r.receivedRef = aggregate(ref.Name, 3)-before, portRx(b, refHost.Port)-rx0

	r.changeQuiet, r.changeStorm = median(r.changesQuiet), median(r.changesStorm)
	return r
}

// controllerOffenderInterval is op25bd's read interval (controller default).
const controllerOffenderInterval = 10 * time.Second

// startStorm runs synstorm in the host's namespace; the channel delivers
// its result when it is done (stormDuration).
func startStorm(b *testing.B, bin string, h *testenv.Host, rate int) <-chan synstorm.Result {
	done := make(chan synstorm.Result, 1)
	cmd := exec.Command("ip", "netns", "exec", h.Namespace, bin, "-iface", h.Iface, "-first-source", "10.64.0.1",
		"-sources", strconv.Itoa(stormSources), "-destinations", strconv.Itoa(stormDestinations),
		"-rate", strconv.Itoa(rate), "-duration", stormDuration.String())
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	go func() {
		var res synstorm.Result
		if err := cmd.Wait(); err != nil || json.Unmarshal(out.Bytes(), &res) != nil {
			b.Errorf("synstorm: %v %s %s", err, out.String(), errOut.String())
		}
		done <- res
	}()
	return done
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// procCPU is a process's user + system CPU time (Linux clock ticks are
// 1/100 s).
func procCPU(b *testing.B, pid int) time.Duration {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	// Fields after the command name (which may hold spaces) start at ")".
	f := strings.Fields(string(raw[bytes.LastIndexByte(raw, ')')+2:]))
	utime, _ := strconv.ParseUint(f[11], 10, 64)
	stime, _ := strconv.ParseUint(f[12], 10, 64)
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

// procRSS reads a /proc/PID/status memory line (VmRSS, VmHWM) in bytes.
func procRSS(b *testing.B, pid int, field string) uint64 {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^` + field + `:\s+(\d+) kB`).FindSubmatch(raw)
	if m == nil {
		b.Fatalf("no %s in /proc/%d/status", field, pid)
	}
	kb, _ := strconv.ParseUint(string(m[1]), 10, 64)
	return kb * 1024
}

func vswitchdPID(b *testing.B) int {
	raw, err := os.ReadFile("/var/run/openvswitch/ovs-vswitchd.pid")
	if err != nil {
		b.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(raw)))
	if err != nil {
		b.Fatal(err)
	}
	return pid
}

// portRx is the packets the kernel delivered to a bridge port (the veth
// end in the root namespace), read from sysfs: OVS's own interface
// statistics are refreshed only every few seconds. A packet counted here
// that the bridge's counters lack is one ovs-vswitchd did not get to.
func portRx(b *testing.B, port string) uint64 {
	raw, err := os.ReadFile("/sys/class/net/" + port + "/statistics/rx_packets")
	if err != nil {
		b.Fatal(err)
	}
	n, err := strconv.ParseUint(strings.TrimSpace(string(raw)), 10, 64)
	if err != nil {
		b.Fatal(err)
	}
	return n
}

var packetCount = regexp.MustCompile(`packet_count=(\d+)`)

// tablePackets is the packet count of every flow in one table.
func tablePackets(b *testing.B, bridge string, table int) uint64 {
	out := testenv.Run(b, "ovs-ofctl", "-O", "OpenFlow13", "dump-aggregate", bridge, fmt.Sprintf("table=%d", table))
	m := packetCount.FindStringSubmatch(out)
	if m == nil {
		b.Fatalf("dump-aggregate: %s", out)
	}
	n, _ := strconv.ParseUint(m[1], 10, 64)
	return n
}

var flowCount = regexp.MustCompile(`flow_count=(\d+)`)

func countFlows(b *testing.B, bridge, match string) int {
	out := testenv.Run(b, "ovs-ofctl", "-O", "OpenFlow13", "dump-aggregate", bridge, match)
	m := flowCount.FindStringSubmatch(out)
	if m == nil {
		b.Fatalf("dump-aggregate: %s", out)
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

var currentFlows = regexp.MustCompile(`flows\s*:\s*\(current (\d+)\)`)

// datapathFlows is the userspace datapath's flow count (shared by every
// netdev bridge on the machine).
func datapathFlows(b *testing.B) int {
	out := testenv.Run(b, "ovs-appctl", "upcall/show")
	m := currentFlows.FindStringSubmatch(out)
	if m == nil {
		return -1
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// metricValue sums a metric's samples from /metrics.
func metricValue(b *testing.B, api, name string) uint64 {
	resp, err := http.Get("http://" + api + "/metrics")
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(resp.Body)
	var sum float64
	for _, l := range strings.Split(buf.String(), "\n") {
		if strings.HasPrefix(l, name+"{") || strings.HasPrefix(l, name+" ") {
			f := strings.Fields(l)
			v, _ := strconv.ParseFloat(f[len(f)-1], 64)
			sum += v
		}
	}
	return uint64(sum)
}
