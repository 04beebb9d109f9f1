package cluster

import (
	"fmt"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/op25b/op25b/controller"
	"github.com/op25b/op25b/flows"
	"github.com/op25b/op25b/internal/testenv"
	"github.com/op25b/op25b/topology"
)

// BenchmarkConvergence100Bridges: from the etcd write of a one-pool change
// to barrier-acknowledged on 100 netdev bridges mastered by 3 replicas,
// against a shell loop of `ovs-ofctl add-flow` sending the same flow-mods to
// the same bridges (what a NOC script would do), measured in the same run.
//
//	go test -run '^$' -bench Convergence -benchtime 3x ./controller/cluster/
func BenchmarkConvergence100Bridges(b *testing.B) {
	testenv.RequireOVS(b)
	etcd := testenv.EmbeddedEtcd(b)
	var nodes []*node
	for i := 1; i <= 3; i++ {
		nodes = append(nodes, startNode(b, fmt.Sprintf("op25b-%d", i), etcd.Endpoints, DefaultLeaseTTL))
	}
	bridges := newBridges(b, 100, nodes)
	doc := policyDoc(time.Time{}, bridges...)
	rev := putDoc(b, nodes[0].store, doc)
	testenv.Eventually(b, 5*time.Minute, "initial convergence", func() bool { return converged(b, nodes, bridges, doc, rev) })

	var opTotal, shellTotal time.Duration
	mods := 0
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		next := doc.Clone()
		next.Pools = append(next.Pools, topology.Pool{Name: fmt.Sprintf("bench-%d", i),
			Prefix: fmt.Sprintf("10.%d.0.0/16", 100+i), Kind: topology.KindDynamic, Service: "ftth"})
		changes := changedFlows(b, doc, next, bridges[0].DPID)
		mods = len(changes)

		start := time.Now()
		rev = putDoc(b, nodes[0].store, next)
		for !allApplied(nodes, bridges, rev) {
			time.Sleep(2 * time.Millisecond)
		}
		took := time.Since(start)
		opTotal += took
		doc = next

		b.StopTimer()
		shell := shellLoop(b, bridges, changes)
		shellTotal += shell
		b.Logf("iteration %d: %d flow-mods per bridge; op25b %s, shell loop %s", i, mods, took.Round(time.Millisecond), shell.Round(time.Millisecond))
		b.StartTimer()
	}
	b.StopTimer()
	n := time.Duration(b.N)
	b.ReportMetric(float64((opTotal / n).Milliseconds()), "op25b-ms")
	b.ReportMetric(float64((shellTotal / n).Milliseconds()), "shell-ms")
	fmt.Printf("ratio convergence 100 bridges / 3 replicas, one-pool change (%d flow-mods per bridge): op25b %s, ovs-ofctl add-flow loop %s, loop/op25b = %.1fx\n",
		mods, (opTotal / n).Round(time.Millisecond), (shellTotal / n).Round(time.Millisecond), float64(shellTotal)/float64(opTotal))
}

// changedFlows are the adds and modifies a document change causes on one
// bridge.
func changedFlows(b testing.TB, from, to *topology.Document, dpid topology.DPID) []flows.Flow {
	old, err := DefaultCompile(from, dpid, time.Now())
	if err != nil {
		b.Fatal(err)
	}
	neu, err := DefaultCompile(to, dpid, time.Now())
	if err != nil {
		b.Fatal(err)
	}
	var out []flows.Flow
	for _, c := range flows.Diff(neu, old) {
		if c.Op != flows.OpDelete {
			out = append(out, c.Flow)
		}
	}
	return out
}

func allApplied(nodes []*node, bridges []testenv.Bridge, rev int64) bool {
	for _, br := range bridges {
		ok := false
		for _, n := range nodes {
			if _, master := n.replica.Masters()[br.DPID]; !master {
				continue
			}
			rep, found := ControllerSwitches(n.ctrl).Report(br.DPID)
			ok = found && rep.AppliedRevision >= rev
		}
		if !ok {
			return false
		}
	}
	return true
}

var gotoRE = regexp.MustCompile(`goto_table:\d+`)

// shellLoop sends the same flows with one `ovs-ofctl add-flow` per flow and
// bridge, in a shell loop. They go to table 250 with a foreign cookie so
// op25b's own tables are untouched.
func shellLoop(b testing.TB, bridges []testenv.Bridge, fl []flows.Flow) time.Duration {
	var script strings.Builder
	script.WriteString("set -e\nfor br in")
	for _, br := range bridges {
		script.WriteString(" " + br.Name)
	}
	script.WriteString("; do\n")
	for _, f := range fl {
		f.Table, f.Cookie = 250, 0x1
		spec := gotoRE.ReplaceAllString(flows.Render(f), "goto_table:251")
		fmt.Fprintf(&script, "  ovs-ofctl -O OpenFlow13 add-flow \"$br\" '%s'\n", spec)
	}
	script.WriteString("done\n")
	start := time.Now()
	out, err := exec.Command("bash", "-c", script.String()).CombinedOutput()
	took := time.Since(start)
	if err != nil {
		b.Fatalf("shell loop: %v\n%s", err, out)
	}
	return took
}

// BenchmarkFailoverDefaultTTL: time from crashing the master of a bridge
// (its etcd client dies with it, as with kill -9) to the new master's first
// successful reconcile, at the default lease TTL.
//
//	go test -run '^$' -bench Failover -benchtime 3x ./controller/cluster/
func BenchmarkFailoverDefaultTTL(b *testing.B) {
	testenv.RequireOVS(b)
	etcd := testenv.EmbeddedEtcd(b)
	var total time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		var nodes []*node
		for j := 1; j <= 3; j++ {
			nodes = append(nodes, startNode(b, fmt.Sprintf("op25b-%d-%d", i, j), etcd.Endpoints, DefaultLeaseTTL))
		}
		bridges := newBridges(b, 3, nodes)
		doc := policyDoc(time.Time{}, bridges...)
		rev := putDoc(b, nodes[0].store, doc)
		testenv.Eventually(b, 2*time.Minute, "converged", func() bool { return converged(b, nodes, bridges, doc, rev) })
		dpid := bridges[0].DPID
		victim := masterOf(b, nodes, dpid)
		var rest []*node
		for _, n := range nodes {
			if n.id == victim {
				defer n.crash()
			} else {
				rest = append(rest, n)
			}
		}
		b.StartTimer()
		crashed := time.Now()
		for _, n := range nodes {
			if n.id == victim {
				n.crash()
			}
		}
		var took time.Duration
		testenv.Eventually(b, DefaultLeaseTTL+time.Minute, "new master reconciled", func() bool {
			for _, n := range rest {
				if at, ok := n.firstEventAfter(controller.EventReconciled, dpid, crashed); ok {
					took = at.Sub(crashed)
					return true
				}
			}
			return false
		})
		b.StopTimer()
		total += took
		b.Logf("iteration %d: failover %s", i, took.Round(time.Millisecond))
		for _, n := range rest {
			n.stop()
		}
		for _, br := range bridges {
			_, _ = testenv.RunErr("ovs-vsctl", "--timeout=10", "--if-exists", "del-br", br.Name)
		}
		b.StartTimer()
	}
	b.StopTimer()
	avg := total / time.Duration(b.N)
	b.ReportMetric(float64(avg.Milliseconds()), "failover-ms")
	fmt.Printf("failover at default TTL %s: mean %s from crash to the new master's first reconcile\n", DefaultLeaseTTL, avg.Round(time.Millisecond))
}
