package controller

import (
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/netrack/openflow/ofp"

	"github.com/op25b/op25b/controller/ofwire"
	"github.com/op25b/op25b/controller/ofwire/ofwiretest"
	"github.com/op25b/op25b/flows"
)

// notify sends a flow-monitor notification (xid 0) from the fake switch.
func (fs *fakeSwitch) notify(updates ...[]byte) {
	fs.set(func(fs *fakeSwitch) { fs.send(ofwiretest.FlowMonitorReply(0, updates...)) })
}

func (fs *fakeSwitch) dumpCount() (n int) {
	fs.get(func(fs *fakeSwitch) { n = fs.dumps })
	return n
}

func (fs *fakeSwitch) flowModsSeen() (out []flowModSeen) {
	fs.get(func(fs *fakeSwitch) { out = append(out, fs.flowMods...) })
	return out
}

// strayFlow is an op25b-cookie flow no desired set contains.
var strayFlow = flows.Flow{Table: 1, Priority: 1300, Cookie: flows.CookieMarker | 1<<40 | 0xdead,
	Match: flows.Match{EthType: flows.EthTypeIPv4, Src: netip.MustParsePrefix("10.77.0.0/16")}, Actions: flows.Actions{Output: flows.PortNormal}}

// A switch that refuses flow monitoring (as one without the ONF extension
// does) is audited every AuditInterval as before, and status says "poll".
func TestFakeWithoutMonitoringFallsBackToPoll(t *testing.T) {
	rc := startController(t, Config{AuditInterval: 200 * time.Millisecond})
	want := pipelineFlows()
	// The fake never changes its table: every audit finds the last flow
	// missing again and repairs it again.
	fs := connectFake(t, rc, 0x16, func(fs *fakeSwitch) { fs.dump = encodeDump(want[:len(want)-1]) })
	dpid := dpidString(0x16)
	rc.SetDesired(Desired{DPID: dpid, Revision: 1, Flows: want, Master: true, Generation: 1})
	waitFor(t, "periodic audits repair the drift", func() bool { return rc.status(dpid).DriftRepairs >= 2 })
	st := rc.status(dpid)
	if st.DriftDetection != DriftPoll {
		t.Fatalf("drift detection %q, want %q", st.DriftDetection, DriftPoll)
	}
	if n := fs.dumpCount(); n < 3 || st.FlowDumps < 3 {
		t.Fatalf("%d dumps answered, %d counted: want one per audit", n, st.FlowDumps)
	}
	fs.get(func(fs *fakeSwitch) {
		if len(fs.monitors) != 0 {
			t.Fatalf("refused monitors recorded as subscribed: %v", fs.monitors)
		}
	})
}

// connectMonitoredFake is a fake switch with flow monitoring holding the
// desired pipeline, applied at revision 1.
func connectMonitoredFake(t *testing.T, rc *runningController, dpid uint64) (*fakeSwitch, []flows.Flow) {
	t.Helper()
	want := pipelineFlows()
	fs := connectFake(t, rc, dpid, func(fs *fakeSwitch) { fs.monitor, fs.dump = true, encodeDump(want) })
	rc.SetDesired(Desired{DPID: dpidString(dpid), Revision: 1, Flows: want, Master: true, Generation: 1})
	st := rc.waitApplied(t, dpidString(dpid), 1)
	if st.DriftDetection != DriftMonitor || st.FlowDumps != 1 {
		t.Fatalf("after install: drift detection %q, %d dumps; want monitor, 1", st.DriftDetection, st.FlowDumps)
	}
	fs.get(func(fs *fakeSwitch) {
		if !slices.Equal(fs.monitors, []uint32{1, 2, 3, 4}) {
			t.Fatalf("monitors %v, want one per table 0-3 (ids 1-4)", fs.monitors)
		}
	})
	return fs, want
}

// Reported drift is repaired with a targeted bundle and no dump; the
// monitoring switch is not audited every AuditInterval.
func TestFakeMonitorRepairsWithoutDump(t *testing.T) {
	rc := startController(t, Config{AuditInterval: 100 * time.Millisecond})
	fs, want := connectMonitoredFake(t, rc, 0x17)
	dpid := dpidString(0x17)
	before := len(fs.flowModsSeen())

	// Our own change (abbreviated) and another controller's flow: ignored.
	other := strayFlow
	other.Cookie = 0x1234
	fs.notify(ofwiretest.FlowUpdateAbbrev(99), ofwiretest.FlowUpdate(ofwire.FlowAdded, 0, other))
	// A stray op25b flow and a deleted desired one: one bundle repairs both.
	fs.notify(ofwiretest.FlowUpdate(ofwire.FlowAdded, 0, strayFlow), ofwiretest.FlowUpdate(ofwire.FlowDeleted, 2, want[4]))
	waitFor(t, "drift repaired", func() bool { return rc.status(dpid).DriftRepairs == 2 })
	time.Sleep(500 * time.Millisecond) // five audit intervals: a poller would have dumped
	st := rc.status(dpid)
	if st.FlowDumps != 1 || fs.dumpCount() != 1 || st.DriftRepairs != 2 {
		t.Fatalf("after a repair: %d dumps (switch saw %d), %d repairs; want 1 dump, 2 repairs", st.FlowDumps, fs.dumpCount(), st.DriftRepairs)
	}
	mods := fs.flowModsSeen()[before:]
	var cmds []ofp.FlowModCommand
	for _, m := range mods {
		if !m.inBundle {
			t.Fatalf("repair outside a bundle: %+v", mods)
		}
		cmds = append(cmds, m.command)
	}
	slices.Sort(cmds)
	if !slices.Equal(cmds, []ofp.FlowModCommand{ofp.FlowAdd, ofp.FlowDeleteStrict}) {
		t.Fatalf("repair sent %v, want one add and one strict delete", cmds)
	}
}

// PAUSED → RESUMED owes exactly one full audit; what is reported while
// paused is left to it.
func TestFakeMonitorPauseOwesOneAudit(t *testing.T) {
	rc := startController(t, Config{})
	fs, want := connectMonitoredFake(t, rc, 0x18)
	dpid := dpidString(0x18)
	fs.set(func(fs *fakeSwitch) { fs.send(ofwiretest.FlowMonitorPaused()) })
	fs.notify(ofwiretest.FlowUpdate(ofwire.FlowDeleted, 2, want[0])) // while paused: ignored
	fs.set(func(fs *fakeSwitch) { fs.send(ofwiretest.FlowMonitorResumed()) })
	waitFor(t, "audit after resume", func() bool { return rc.status(dpid).MonitorResyncs == 1 && fs.dumpCount() == 2 })
	// A later report is repaired as usual (and proves the worker went on).
	fs.notify(ofwiretest.FlowUpdate(ofwire.FlowAdded, 0, strayFlow))
	waitFor(t, "repair after the audit", func() bool { return rc.status(dpid).DriftRepairs == 1 })
	if st := rc.status(dpid); st.FlowDumps != 2 || st.MonitorResyncs != 1 {
		t.Fatalf("%d dumps, %d resyncs: want exactly one audit for one pause", st.FlowDumps, st.MonitorResyncs)
	}
}

// A notification the controller cannot decode owes a full audit.
func TestFakeMonitorUndecodableNotificationAudits(t *testing.T) {
	rc := startController(t, Config{})
	fs, _ := connectMonitoredFake(t, rc, 0x19)
	dpid := dpidString(0x19)
	bad := ofwiretest.FlowUpdateAbbrev(1)
	bad[1] = 9 // unknown event
	fs.notify(bad)
	waitFor(t, "audit after an undecodable notification", func() bool { return fs.dumpCount() == 2 && rc.status(dpid).MonitorResyncs == 1 })
}

// A replica told to be slave cancels its monitors: it repairs nothing and
// need not receive the new master's writes.
func TestFakeSlaveCancelsMonitors(t *testing.T) {
	rc := startController(t, Config{})
	fs, want := connectMonitoredFake(t, rc, 0x1a)
	dpid := dpidString(0x1a)
	rc.SetDesired(Desired{DPID: dpid, Revision: 2, Flows: want, Master: false, Generation: 2})
	waitFor(t, "slave", func() bool { return rc.status(dpid).Role == "slave" })
	waitFor(t, "monitors cancelled", func() bool {
		var cancels []uint32
		fs.get(func(fs *fakeSwitch) { cancels = append(cancels, fs.cancels...) })
		slices.Sort(cancels)
		return slices.Equal(cancels, []uint32{1, 2, 3, 4})
	})
	if st := rc.status(dpid); st.DriftDetection != "" {
		t.Fatalf("slave reports drift detection %q", st.DriftDetection)
	}
	// Master again: subscribed again before its reconcile.
	rc.SetDesired(Desired{DPID: dpid, Revision: 3, Flows: want, Master: true, Generation: 3})
	st := rc.waitApplied(t, dpid, 3)
	if st.DriftDetection != DriftMonitor {
		t.Fatalf("drift detection %q after regaining mastership", st.DriftDetection)
	}
	fs.get(func(fs *fakeSwitch) {
		if len(fs.monitors) != 8 {
			t.Fatalf("monitors %v, want tables 0-3 twice", fs.monitors)
		}
	})
}

// A switch that answers the subscription the way Open vSwitch answers an
// invalid one (an error in an OpenFlow 1.0 header, xid 0) is polled; the
// session stays up instead of closing on the wrong version and
// reconnecting into the same answer.
func TestFakeMonitorRefusedInAnotherVersion(t *testing.T) {
	rc := startController(t, Config{})
	fs := connectFake(t, rc, 0x1b, func(fs *fakeSwitch) { fs.monitorOldError, fs.dump = true, encodeDump(pipelineFlows()) })
	dpid := dpidString(0x1b)
	rc.SetDesired(Desired{DPID: dpid, Revision: 1, Flows: pipelineFlows(), Master: true, Generation: 1})
	st := rc.waitApplied(t, dpid, 1)
	if st.DriftDetection != DriftPoll || !st.Connected || rc.events.count(EventDisconnected) != 0 {
		t.Fatalf("status %+v, %d disconnects: want poll on a live session", st, rc.events.count(EventDisconnected))
	}
	if st.OpenFlowErrors != 1 {
		t.Fatalf("%d OpenFlow errors counted, want the refusal", st.OpenFlowErrors)
	}
	select {
	case <-fs.done:
		t.Fatal("session closed")
	default:
	}
}
