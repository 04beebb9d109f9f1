package main

import (
	"bufio"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/op25b/op25b/controller/cluster"
	"github.com/op25b/op25b/internal/fakeswitch"
	"github.com/op25b/op25b/internal/testenv"
	"github.com/op25b/op25b/topology"
)

// scaleCluster is an ISP-sized setup: three op25bd processes on a 3-member
// Debian etcd, and bridges with a controller target per replica — most of
// them simulated (internal/fakeswitch), the rest real netdev bridges.
type scaleCluster struct {
	t        testing.TB
	etcd     *testenv.EtcdCluster
	replicas []*replica
	fakes    []*fakeswitch.Switch
	real     []testenv.Bridge
	dpids    []topology.DPID
	pools    int
}

// startScaleCluster starts it and waits until every bridge is mastered and
// has applied the first document.
func startScaleCluster(t testing.TB, fakes, real int) (*scaleCluster, int64) {
	t.Helper()
	testenv.RequireOVS(t)
	c := &scaleCluster{t: t, etcd: testenv.NewEtcdCluster(t, 3), pools: 20}
	for i := 1; i <= 3; i++ {
		// Every simulated switch dials from 127.0.0.1: lift the per-address
		// cap (256) that guards a real PoP's OVS host.
		c.replicas = append(c.replicas, startReplica(t, fmt.Sprintf("scale-%d", i), c.etcd.Endpoints,
			"--openflow-max-connections", "4096", "--openflow-max-connections-per-client", "0"))
	}
	var targets, tcpTargets []string
	for _, r := range c.replicas {
		targets, tcpTargets = append(targets, r.openflow), append(tcpTargets, "tcp:"+r.openflow)
	}
	var realDPIDs []topology.DPID
	for i := range real {
		realDPIDs = append(realDPIDs, topology.DPIDFromUint64(0x5ca1_0000_0000+uint64(i)))
	}
	c.real = testenv.NewBridges(t, realDPIDs, tcpTargets...)
	c.dpids = append(c.dpids, realDPIDs...)
	for i := range fakes {
		sw, err := fakeswitch.Start(fakeswitch.Config{DPID: topology.DPIDFromUint64(0xfa4e_0000_0000 + uint64(i)), Controllers: targets})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(sw.Close)
		c.fakes = append(c.fakes, sw)
		c.dpids = append(c.dpids, sw.DPID())
	}
	rev := c.put(c.document(0))
	testenv.Eventually(t, 5*time.Minute, "every bridge mastered as rendezvous hashing says, and applied", func() bool {
		return c.settled(rev)
	})
	return c, rev
}

// document has c.pools dynamic /16 pools plus extra one-pool changes, one
// service, and every bridge registered in one of ten pops.
func (c *scaleCluster) document(extra int) string {
	var b strings.Builder
	b.WriteString(`{"services":[{"name":"ftth","phases":[{"block":"all","relays":true}]}],"relays":[{"name":"msa","prefix":"192.0.2.25/32"}],"pools":[`)
	for i := range c.pools + extra {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `{"name":"pool-%d","prefix":"10.%d.0.0/16","kind":"dynamic","service":"ftth"}`, i, i)
	}
	b.WriteString(`],"bridges":[`)
	for i, dpid := range c.dpids {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `{"dpid":"%s","name":"br-%d","pop":"pop-%d"}`, dpid, i, i%10)
	}
	b.WriteString("]}")
	return b.String()
}

func (c *scaleCluster) put(doc string) int64 { return putConfig(c.t, c.replicas[0].api, doc) }

func (c *scaleCluster) ids() []string {
	var ids []string
	for _, r := range c.replicas {
		ids = append(ids, r.id)
	}
	return ids
}

// settled: the status records name, for every bridge, the master
// rendezvous hashing assigns over all replicas, and it applied rev.
func (c *scaleCluster) settled(rev int64) bool {
	masters, applied, err := masterIn(c.replicas[0].api)
	if err != nil {
		return false
	}
	ids := c.ids()
	for _, dpid := range c.dpids {
		if masters[string(dpid)] != cluster.Assign(dpid, ids) || applied[string(dpid)] < rev {
			return false
		}
	}
	return true
}

// acknowledged returns, for every bridge that has one, when its master
// logged the reconcile of revision rev (bundle committed and barrier
// answered) at or after from.
func (c *scaleCluster) acknowledged(rev int64, from time.Time) map[topology.DPID]time.Time {
	out := map[topology.DPID]time.Time{}
	for _, r := range c.replicas {
		r.mu.Lock()
		for _, l := range r.lines {
			if l.Msg == "reconciled" && l.Revision == rev && !l.Time.Before(from) {
				d := topology.DPID(l.DPID)
				if at, ok := out[d]; !ok || l.Time.Before(at) {
					out[d] = l.Time
				}
			}
		}
		r.mu.Unlock()
	}
	return out
}

// onePoolChange adds a pool and returns how long after the PUT returned
// the last bridge acknowledged it, and the median bridge.
func (c *scaleCluster) onePoolChange(extra int) (last, median time.Duration) {
	c.t.Helper()
	doc := c.document(extra)
	start := time.Now()
	rev := c.put(doc)
	returned := time.Now()
	var acks map[topology.DPID]time.Time
	testenv.Eventually(c.t, 2*time.Minute, "every bridge acknowledged the one-pool change", func() bool {
		acks = c.acknowledged(rev, start)
		return len(acks) == len(c.dpids)
	})
	var lat []time.Duration
	for _, at := range acks {
		lat = append(lat, max(at.Sub(returned), 0))
	}
	slices.Sort(lat)
	return lat[len(lat)-1], lat[len(lat)/2]
}

// etcdCounters are totals over the etcd members: raft proposals (every
// write, lease grants and revokes included) as one member counts them,
// and unary gRPC requests served, by method, summed over members.
type etcdCounters struct {
	proposals float64
	requests  map[string]float64
}

func (c *scaleCluster) counters() etcdCounters {
	c.t.Helper()
	out := etcdCounters{requests: map[string]float64{}}
	for i, ep := range c.etcd.Endpoints {
		resp, err := http.Get(ep + "/metrics")
		if err != nil {
			c.t.Fatalf("etcd metrics: %v", err)
		}
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			name, value, ok := strings.Cut(line, " ")
			if !ok || strings.HasPrefix(line, "#") {
				continue
			}
			v, err := strconv.ParseFloat(value, 64)
			if err != nil {
				continue
			}
			switch {
			case name == "etcd_server_proposals_committed_total" && i == 0:
				out.proposals = v
			case strings.HasPrefix(name, "grpc_server_handled_total{") && strings.Contains(name, `grpc_type="unary"`):
				method := name[strings.Index(name, `grpc_method="`)+len(`grpc_method="`):]
				method = method[:strings.Index(method, `"`)]
				out.requests[method] += v
			}
		}
		resp.Body.Close()
	}
	return out
}

func (e etcdCounters) minus(before etcdCounters) etcdCounters {
	d := etcdCounters{proposals: e.proposals - before.proposals, requests: map[string]float64{}}
	for m, v := range e.requests {
		if n := v - before.requests[m]; n > 0 {
			d.requests[m] = n
		}
	}
	return d
}

func (e etcdCounters) total() float64 {
	n := 0.0
	for _, v := range e.requests {
		n += v
	}
	return n
}

func (e etcdCounters) String() string {
	methods := make([]string, 0, len(e.requests))
	for m := range e.requests {
		methods = append(methods, m)
	}
	slices.Sort(methods)
	var parts []string
	for _, m := range methods {
		parts = append(parts, fmt.Sprintf("%s %.0f", m, e.requests[m]))
	}
	return fmt.Sprintf("%.0f writes (raft proposals), %.0f requests (%s)", e.proposals, e.total(), strings.Join(parts, ", "))
}

// restart stops replica i as systemd would (SIGTERM: it hands its bridges
// over at once), starts it again with the same id and ports, and waits
// until every bridge is back with the master rendezvous hashing assigns.
// It returns how long that took and what etcd served meanwhile.
func (c *scaleCluster) restart(i int, rev int64) (time.Duration, etcdCounters) {
	c.t.Helper()
	r := c.replicas[i]
	before := c.counters()
	start := time.Now()
	r.mu.Lock()
	cmd, exited := r.cmd, r.exited
	r.cmd = nil
	r.mu.Unlock()
	_ = cmd.Process.Signal(os.Interrupt)
	<-exited
	r.restart()
	testenv.Eventually(c.t, 5*time.Minute, "settled after the restart", func() bool { return c.settled(rev) })
	took := time.Since(start)
	return took, c.counters().minus(before)
}

// rssPerBridge is the mean op25bd resident set divided by the bridges each
// replica has a session with.
func (c *scaleCluster) rssPerBridge() (perBridgeKiB, meanMiB float64) {
	var sum int64
	for _, r := range c.replicas {
		sum += r.rssKiB()
	}
	mean := float64(sum) / float64(len(c.replicas))
	return mean / float64(len(c.dpids)), mean / 1024
}

// TestThousandBridges: three replicas, 900 simulated and 100 real netdev
// bridges. A one-pool change is acknowledged by every bridge (well within
// a generous bound: timings belong to BenchmarkThousandBridges); a replica
// restart (a thousand switches reconnect to it, a third of the bridges
// move back) converges with etcd writes that grow with bridges/128 (batched),
// not with bridges.
func TestThousandBridges(t *testing.T) {
	if testing.Short() {
		t.Skip("1000 bridges: not in -short")
	}
	c, _ := startScaleCluster(t, 900, 100)
	last, median := c.onePoolChange(1)
	t.Logf("one-pool change on %d bridges: last acknowledged %s after the PUT returned (median %s)", len(c.dpids), last, median)
	if last > 30*time.Second {
		t.Errorf("one-pool change took %s to reach every bridge", last)
	}
	_, rev, err := getRevision(c.replicas[0].api)
	if err != nil {
		t.Fatal(err)
	}
	took, used := c.restart(1, rev)
	t.Logf("restart of one replica converged in %s; etcd: %s", took.Round(time.Millisecond), used)
	// A third of the bridges move twice (to the survivors, then back), and
	// the restarted replica publishes a thousand sessions: batched (≤128
	// per transaction, passes ≥20 ms apart) that is a few dozen writes;
	// one per bridge and step it was over a thousand.
	if limit := float64(len(c.dpids) / 4); used.proposals > limit {
		t.Errorf("restart cost %.0f etcd writes, more than %.0f", used.proposals, limit)
	}
	per, mean := c.rssPerBridge()
	t.Logf("op25bd RSS %.0f MiB on average, %.1f KiB per bridge", mean, per)
}

// getRevision is the document revision /v1/status reports.
func getRevision(api string) (statusView, int64, error) {
	s, err := getStatus(api)
	return s, s.Revision, err
}

// BenchmarkThousandBridges: the figures of TestThousandBridges' setup:
// one-pool change until every bridge acknowledged it (from the PUT's
// return), a replica restart (time to converge, etcd writes and requests),
// and op25bd's memory per bridge.
//
//	go test -run '^$' -bench ThousandBridges -benchtime 1x ./cmd/op25bd/
func BenchmarkThousandBridges(b *testing.B) {
	scaleOnce.Do(func() {
		c, _ := startScaleCluster(b, 900, 100)
		for i := range 5 {
			last, median := c.onePoolChange(i + 1)
			scaleFigures.last = append(scaleFigures.last, last)
			scaleFigures.median = append(scaleFigures.median, median)
		}
		_, rev, err := getRevision(c.replicas[0].api)
		if err != nil {
			b.Fatal(err)
		}
		scaleFigures.restart, scaleFigures.etcd = c.restart(1, rev)
		scaleFigures.rssPerBridge, scaleFigures.rssMiB = c.rssPerBridge()
		scaleFigures.bridges = len(c.dpids)
	})
	for range b.N {
	}
	f := scaleFigures
	b.ReportMetric(samples(f.last).p(50).Seconds(), "s-change-all-acked")
	b.ReportMetric(f.restart.Seconds(), "s-restart")
	b.ReportMetric(f.etcd.proposals, "etcd-writes-restart")
	b.ReportMetric(f.rssPerBridge, "KiB-per-bridge")
	fmt.Printf("ratio %d bridges / 3 replicas: one-pool change acknowledged by every bridge %v after the PUT returned (median bridge %v), target 1 s; "+
		"replica restart converged in %s with %s (bridges/128 = %d); op25bd RSS %.0f MiB, %.1f KiB per bridge\n",
		f.bridges, roundAll(f.last), roundAll(f.median), f.restart.Round(time.Millisecond), f.etcd, f.bridges/128, f.rssMiB, f.rssPerBridge)
}

var (
	scaleOnce    sync.Once
	scaleFigures struct {
		last, median         []time.Duration
		restart              time.Duration
		etcd                 etcdCounters
		rssPerBridge, rssMiB float64
		bridges              int
	}
)

func roundAll(ds []time.Duration) []time.Duration {
	out := make([]time.Duration, len(ds))
	for i, d := range ds {
		out[i] = d.Round(time.Millisecond)
	}
	return out
}
