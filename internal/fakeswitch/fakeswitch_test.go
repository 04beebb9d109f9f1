package fakeswitch_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/netrack/openflow/ofp"

	"github.com/op25b/op25b/controller"
	"github.com/op25b/op25b/controller/ofwire"
	"github.com/op25b/op25b/flows"
	"github.com/op25b/op25b/internal/fakeswitch"
	"github.com/op25b/op25b/internal/testenv"
	"github.com/op25b/op25b/topology"
)

// startController serves op25b's controller on a loopback port until the
// test ends and returns it with its "host:port".
func startController(t *testing.T) (*controller.Controller, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := controller.New(controller.Config{Logger: slog.New(slog.DiscardHandler), AuditInterval: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = c.Serve(ctx, ln) }()
	t.Cleanup(func() { cancel(); <-done })
	return c, ln.Addr().String()
}

func startSwitch(t *testing.T, dpid topology.DPID, controllers ...string) *fakeswitch.Switch {
	t.Helper()
	sw, err := fakeswitch.Start(fakeswitch.Config{DPID: dpid, Controllers: controllers, Reconnect: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sw.Close)
	return sw
}

// desired is n drop flows under op25b's cookie plus a catch-all, in
// canonical (dumped) form.
func desired(n int) []flows.Flow {
	out := []flows.Flow{ofwire.Canonical(flows.Flow{Table: 0, Priority: 0, Cookie: flows.CookieMarker, Actions: flows.Actions{Output: flows.PortNormal}})}
	a := netip.MustParseAddr("10.0.0.0")
	for range n {
		out = append(out, ofwire.Canonical(flows.Flow{Table: 0, Priority: 100, Cookie: flows.CookieMarker,
			Match: flows.Match{EthType: 0x0800, IPProto: 6, TCPDst: 25, Src: netip.PrefixFrom(a, 32)}}))
		a = a.Next()
	}
	return out
}

func sameFlows(a, b []flows.Flow) bool {
	key := func(fs []flows.Flow) []string {
		var out []string
		for _, f := range fs {
			out = append(out, fmt.Sprintf("%x %s", f.Cookie, flows.Render(f)))
		}
		slices.Sort(out)
		return out
	}
	return slices.Equal(key(a), key(b))
}

// The controller installs through the fake as through OVS: role, one
// bundle, a dump; a second controller asking MASTER with a larger
// generation demotes the first, whose writes are then refused; an older
// generation is refused as stale.
func TestControllerInstallsThroughTheFake(t *testing.T) {
	c1, addr1 := startController(t)
	c2, addr2 := startController(t)
	dpid := topology.DPID("00000000fa4e0001")
	sw := startSwitch(t, dpid, addr1, addr2)
	testenv.Eventually(t, 10*time.Second, "both controllers connected", func() bool { return sw.Connected() == 2 })

	want := desired(50)
	c1.SetDesired(controller.Desired{DPID: dpid, Revision: 3, Flows: want, Master: true, Generation: 10})
	c2.SetDesired(controller.Desired{DPID: dpid, Revision: 3, Flows: want, Master: false, Generation: 10})
	testenv.Eventually(t, 10*time.Second, "flows installed", func() bool { return sameFlows(sw.Flows(), want) })
	testenv.Eventually(t, 10*time.Second, "controller 1 reports the revision applied", func() bool {
		st, _ := c1.StatusOf(dpid)
		return st.AppliedRevision == 3 && st.DriftDetection == controller.DriftMonitor
	})
	if m, g := sw.Master(); m != addr1 || g != 10 {
		t.Fatalf("master %q generation %d, want %q 10", m, g, addr1)
	}
	st := sw.Stats()
	if st.Commits != 1 || st.RoleRequests != 2 || st.Monitors == 0 {
		t.Errorf("stats %+v: want one commit, two role requests, monitors", st)
	}

	// Controller 2 takes over with a larger generation.
	more := desired(60)
	c2.SetDesired(controller.Desired{DPID: dpid, Revision: 4, Flows: more, Master: true, Generation: 11})
	testenv.Eventually(t, 10*time.Second, "new master installs its set", func() bool { return sameFlows(sw.Flows(), more) })
	if m, _ := sw.Master(); m != addr2 {
		t.Fatalf("master %q, want %q", m, addr2)
	}
	// The old master's next write is refused (IS_SLAVE): it learns it lost.
	c1.SetDesired(controller.Desired{DPID: dpid, Revision: 5, Flows: desired(1), Master: true, Generation: 10})
	testenv.Eventually(t, 10*time.Second, "old master's write refused", func() bool {
		st, _ := c1.StatusOf(dpid)
		return st.Role == "slave"
	})
	// Asking MASTER again with an older generation is refused as stale.
	c1.SetDesired(controller.Desired{DPID: dpid, Revision: 5, Flows: desired(1), Master: true, Generation: 9})
	testenv.Eventually(t, 10*time.Second, "stale generation refused", func() bool { return sw.Stats().StaleRefusals == 1 })
	if !sameFlows(sw.Flows(), more) {
		t.Fatalf("a refused master changed the flows")
	}
}

// A change behind the master's back is reported by the flow monitor and
// repaired with no dump; the master's own bundles are reported abbreviated
// and cause nothing.
func TestMonitorReportsOthersChanges(t *testing.T) {
	c, addr := startController(t)
	dpid := topology.DPID("00000000fa4e0002")
	sw := startSwitch(t, dpid, addr)
	want := desired(10)
	c.SetDesired(controller.Desired{DPID: dpid, Revision: 1, Flows: want, Master: true, Generation: 1})
	testenv.Eventually(t, 10*time.Second, "flows installed", func() bool { return sameFlows(sw.Flows(), want) })
	testenv.Eventually(t, 10*time.Second, "applied", func() bool { st, _ := c.StatusOf(dpid); return st.AppliedRevision == 1 })
	dumps := sw.Stats().Dumps

	victim := want[3]
	err := sw.Apply(ofwire.FlowMod{Command: ofp.FlowDeleteStrict, Table: victim.Table, Priority: victim.Priority,
		Cookie: victim.Cookie, CookieMask: ^uint64(0), Match: victim.Match})
	if err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, "foreign delete repaired", func() bool {
		st, _ := c.StatusOf(dpid)
		return st.DriftRepairs == 1 && sameFlows(sw.Flows(), want)
	})
	if got := sw.Stats().Dumps; got != dumps {
		t.Errorf("repair dumped the table (%d dumps, was %d)", got, dumps)
	}
}

// A thousand switches with three controllers each fit in one test
// process: each is a few goroutines and a map.
func TestThousandSwitches(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	var addrs []string
	var ctrls []*controller.Controller
	for range 3 {
		c, a := startController(t)
		ctrls, addrs = append(ctrls, c), append(addrs, a)
	}
	var sws []*fakeswitch.Switch
	for i := range 1000 {
		sws = append(sws, startSwitch(t, topology.DPIDFromUint64(0xfa4e0000+uint64(i)), addrs...))
	}
	testenv.Eventually(t, 60*time.Second, "3000 sessions", func() bool {
		for _, c := range ctrls {
			if len(c.Connected()) != len(sws) {
				return false
			}
		}
		return true
	})
}
