package controller

import (
	"errors"
	"net/netip"
	"runtime"
	"strings"
	"testing"
	"time"

	of "github.com/netrack/openflow"
	"github.com/netrack/openflow/ofp"

	"github.com/op25b/op25b/controller/ofwire"
	"github.com/op25b/op25b/controller/ofwire/ofwiretest"
	"github.com/op25b/op25b/flows"
)

func TestFakeConnectWithoutDesiredWritesNothing(t *testing.T) {
	rc := startController(t, Config{})
	fs := connectFake(t, rc, 0x42, nil)
	time.Sleep(100 * time.Millisecond) // give a buggy controller the chance to write
	fs.get(func(fs *fakeSwitch) {
		for _, h := range fs.received {
			if h.Type == of.TypeRoleRequest || h.Type == of.TypeFlowMod || h.Type == of.TypeExperiment {
				t.Fatalf("message type %d sent before SetDesired", h.Type)
			}
		}
	})
	if got := rc.Connected(); len(got) != 1 || got[0] != "0000000000000042" {
		t.Fatalf("Connected() = %v", got)
	}
}

func TestFakeWrongVersionHello(t *testing.T) {
	rc := startController(t, Config{})
	for _, v := range []uint8{0x01, 0x03} {
		fs := dialFake(t, rc.addr, 7, v)
		h, body, err := ofwire.ReadMessage(fs.r) // our HELLO
		if err != nil || h.Type != of.TypeHello {
			t.Fatalf("want HELLO first, got %+v %v", h, err)
		}
		if !ofwire.HelloOffersVersion13(h, body) {
			t.Fatalf("our HELLO does not offer 1.3")
		}
		h, body, err = ofwire.ReadMessage(fs.r)
		if err != nil || h.Type != of.TypeError {
			t.Fatalf("version %d: want HELLO_FAILED error, got %+v %v", v, h, err)
		}
		e, _ := ofwire.ParseError(h, body)
		if e.Type != ofp.ErrTypeHelloFailed || e.Code != ofp.ErrCodeHelloFailedIncompatible {
			t.Fatalf("error = %v", e)
		}
		if _, _, err := ofwire.ReadMessage(fs.r); err == nil {
			t.Fatalf("connection not closed after incompatible HELLO")
		}
	}
	if len(rc.Status()) != 0 {
		t.Fatalf("incompatible switch registered: %+v", rc.Status())
	}
}

// A newer switch that offers 1.3 in its version bitmap is accepted
// (OpenFlow 1.3 §6.3.1 negotiation).
func TestFakeHelloBitmapNegotiates13(t *testing.T) {
	rc := startController(t, Config{})
	fs := dialFakeHello(t, rc.addr, 10, ofwiretest.Hello(0x06, 1, 1<<4|1<<6))
	go fs.serve()
	waitFor(t, "bitmap switch connected", func() bool { return rc.status(dpidString(10)).Connected })
}

func TestFakeMalformedMessages(t *testing.T) {
	cases := []struct {
		name string
		msg  []byte
	}{
		{"header length below 8", []byte{4, 0, 0, 4, 0, 0, 0, 1}},
		{"truncated body then close", []byte{4, 10, 0, 100, 0, 0, 0, 1, 1, 2, 3}},
		{"wrong version mid-session", []byte{5, 2, 0, 8, 0, 0, 0, 1}},
	}
	rc := startController(t, Config{})
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dpid := uint64(0x100 + i)
			fs := connectFake(t, rc, dpid, nil)
			fs.send(tc.msg)
			if tc.name == "truncated body then close" {
				_ = fs.conn.(interface{ CloseWrite() error }).CloseWrite()
			}
			waitClosed(t, fs)
			waitFor(t, "disconnected status", func() bool { return !rc.status(dpidString(dpid)).Connected })
		})
	}
	// Malformed but framed messages are logged and the session survives.
	fs := connectFake(t, rc, 0x200, nil)
	fs.send(
		[]byte{4, byte(of.TypeError), 0, 10, 0, 0, 0, 9, 0, 1},                                 // error body too short
		[]byte{4, byte(of.TypeMultipartReply), 0, 12, 0, 0, 0, 77, 0, 1, 0, 0},                 // unsolicited, short
		[]byte{4, byte(of.TypeFeaturesReply), 0, 8, 0, 0, 0, 78},                               // unsolicited
		[]byte{4, byte(of.TypeError), 0, 20, 0, 0, 0, 79, 0, 1, 0, 1, 4, 0, 0, 8, 0, 0, 0, 79}, // error for nothing pending
	)
	rc.SetDesired(Desired{DPID: dpidString(0x200), Revision: 1, Flows: pipelineFlows(), Master: true, Generation: 1})
	rc.waitApplied(t, dpidString(0x200), 1)
	if st := rc.status(dpidString(0x200)); st.OpenFlowErrors < 1 {
		t.Fatalf("OpenFlow errors not counted: %+v", st)
	}
}

func TestFakeBundleErrorDiscards(t *testing.T) {
	rc := startController(t, Config{})
	fs := connectFake(t, rc, 0x300, func(fs *fakeSwitch) { fs.rejectAdd = 2 })
	dpid := dpidString(0x300)
	rc.SetDesired(Desired{DPID: dpid, Revision: 1, Flows: pipelineFlows(), Master: true, Generation: 1})
	waitFor(t, "reconcile failure", func() bool { return rc.events.count(EventReconcileFailed) > 0 })
	fs.get(func(fs *fakeSwitch) {
		if fs.discards != 1 || fs.commits != 0 {
			t.Fatalf("discards=%d commits=%d, want 1/0", fs.discards, fs.commits)
		}
	})
	st := rc.status(dpid)
	if st.AppliedRevision != 0 || !strings.Contains(st.LastError, "BadMatch") || st.ReconcileFailures == 0 || st.DesiredRevision != 1 {
		t.Fatalf("status after rejected bundle = %+v", st)
	}
	// The next attempt (switch fixed) commits.
	fs.set(func(fs *fakeSwitch) { fs.rejectAdd = 0 })
	rc.SetDesired(Desired{DPID: dpid, Revision: 2, Flows: pipelineFlows(), Master: true, Generation: 1})
	rc.waitApplied(t, dpid, 2)
	fs.get(func(fs *fakeSwitch) {
		if fs.commits != 1 {
			t.Fatalf("commits=%d", fs.commits)
		}
	})
}

func TestFakeNoBundlesFallsBackToOrderedFlowMods(t *testing.T) {
	rc := startController(t, Config{})
	fs := connectFake(t, rc, 0x400, func(fs *fakeSwitch) { fs.noBundles = true })
	dpid := dpidString(0x400)
	want := pipelineFlows()
	rc.SetDesired(Desired{DPID: dpid, Revision: 1, Flows: want, Master: true, Generation: 1})
	rc.waitApplied(t, dpid, 1)
	fs.get(func(fs *fakeSwitch) {
		if len(fs.flowMods) != len(want) {
			t.Fatalf("%d flow-mods, want %d", len(fs.flowMods), len(want))
		}
		for _, fm := range fs.flowMods {
			if fm.inBundle || fm.command != ofp.FlowAdd {
				t.Fatalf("flow-mod %+v", fm)
			}
		}
	})
}

func TestFakeStaleRole(t *testing.T) {
	rc := startController(t, Config{})
	fs := connectFake(t, rc, 0x500, func(fs *fakeSwitch) { fs.staleRole = true })
	dpid := dpidString(0x500)
	rc.SetDesired(Desired{DPID: dpid, Revision: 1, Flows: pipelineFlows(), Master: true, Generation: 3})
	waitFor(t, "lost mastership", func() bool { return rc.events.count(EventLostMastership) == 1 })
	rc.SetDesired(Desired{DPID: dpid, Revision: 2, Flows: pipelineFlows(), Master: true, Generation: 3})
	time.Sleep(50 * time.Millisecond)
	fs.get(func(fs *fakeSwitch) {
		if fs.bundleAdds != 0 || len(fs.flowMods) != 0 {
			t.Fatalf("stale master wrote %d flow-mods", len(fs.flowMods))
		}
	})
	if rc.events.count(EventLostMastership) != 1 {
		t.Fatalf("same stale generation re-requested")
	}
}

// A switch that never answers barriers: the reconcile times out, the
// session is closed cleanly (the uncommitted bundle dies with it) and the
// controller keeps serving.
func TestFakeBarrierNeverAnswered(t *testing.T) {
	rc := startController(t, Config{RequestTimeout: 300 * time.Millisecond})
	fs := connectFake(t, rc, 0x600, func(fs *fakeSwitch) { fs.noBarrier = true })
	dpid := dpidString(0x600)
	rc.SetDesired(Desired{DPID: dpid, Revision: 1, Flows: pipelineFlows(), Master: true, Generation: 1})
	waitClosed(t, fs)
	waitFor(t, "disconnect", func() bool { return !rc.status(dpid).Connected })
	var failed Event
	rc.events.mu.Lock()
	for _, e := range rc.events.events {
		if e.Kind == EventReconcileFailed {
			failed = e
		}
	}
	rc.events.mu.Unlock()
	if !errors.Is(failed.Err, ErrRequestTimeout) {
		t.Fatalf("reconcile error = %v, want timeout", failed.Err)
	}
	fs.get(func(fs *fakeSwitch) {
		if fs.commits != 0 {
			t.Fatalf("committed without barrier")
		}
	})
	// The controller still serves a healthy switch.
	connectFake(t, rc, 0x601, nil)
	rc.SetDesired(Desired{DPID: dpidString(0x601), Revision: 1, Flows: pipelineFlows(), Master: true, Generation: 1})
	rc.waitApplied(t, dpidString(0x601), 1)
}

func TestFakeDeadPeerDisconnected(t *testing.T) {
	rc := startController(t, Config{EchoInterval: 20 * time.Millisecond, DeadTimeout: 200 * time.Millisecond})
	fs := connectFake(t, rc, 0x700, nil)
	fs.set(func(fs *fakeSwitch) { fs.silent = true })
	waitClosed(t, fs)
	waitFor(t, "disconnect", func() bool { return !rc.status(dpidString(0x700)).Connected })
	// The status flips just before the event is emitted: wait for both.
	waitFor(t, "disconnect event", func() bool { return rc.events.count(EventDisconnected) > 0 })
	if rc.events.count(EventDisconnected) != 1 {
		t.Fatalf("disconnect events = %d", rc.events.count(EventDisconnected))
	}
}

// An abrupt close in the middle of a 100k-flow multipart dump leaves no
// goroutine behind.
func TestFakeCloseMidDumpNoLeak(t *testing.T) {
	before := runtime.NumGoroutine()
	rc := startController(t, Config{})
	big := dropFlows(100_000, netip.MustParseAddr("10.0.0.0"))
	dump := bigDropDump()
	fs := connectFake(t, rc, 0x800, func(fs *fakeSwitch) { fs.dump, fs.closeInDump = dump, 40 })
	dpid := dpidString(0x800)
	rc.SetDesired(Desired{DPID: dpid, Revision: 1, Flows: big, Master: true, Generation: 1})
	waitClosed(t, fs)
	waitFor(t, "disconnect", func() bool { return !rc.status(dpid).Connected })
	if rc.status(dpid).AppliedRevision != 0 {
		t.Fatalf("applied after aborted dump")
	}
	rc.stop()
	waitFor(t, "goroutines to settle", func() bool {
		runtime.GC()
		return runtime.NumGoroutine() <= before+1
	})
}

// A full 100k dump through the fake switch decodes and diffs to nothing.
func TestFakeLargeDumpNoop(t *testing.T) {
	rc := startController(t, Config{})
	big := dropFlows(100_000, netip.MustParseAddr("10.0.0.0"))
	fs := connectFake(t, rc, 0x900, func(fs *fakeSwitch) { fs.dump = bigDropDump() })
	dpid := dpidString(0x900)
	rc.SetDesired(Desired{DPID: dpid, Revision: 1, Flows: big, Master: true, Generation: 1})
	st := rc.waitApplied(t, dpid, 1)
	if st.FlowMods != 0 {
		t.Fatalf("no-op reconcile sent %d flow-mods", st.FlowMods)
	}
	if n := len(rc.DropCounters(dpid)); n != 100_000 {
		t.Fatalf("drop counters %d", n)
	}
	_ = fs
	_ = flows.Flow{}
}

// Desired flows without op25b's cookie are never installed.
func TestFakeDesiredWithoutCookieIgnored(t *testing.T) {
	rc := startController(t, Config{})
	fs := connectFake(t, rc, 0xa00, nil)
	dpid := dpidString(0xa00)
	want := pipelineFlows()
	want = append(want, flows.Flow{Table: 9, Priority: 1, Cookie: 0x1234})
	rc.SetDesired(Desired{DPID: dpid, Revision: 1, Flows: want, Master: true, Generation: 1})
	st := rc.waitApplied(t, dpid, 1)
	if st.Flows != len(want)-1 {
		t.Fatalf("status flows = %d, want %d", st.Flows, len(want)-1)
	}
	fs.get(func(fs *fakeSwitch) {
		if fs.bundleAdds != len(want)-1 {
			t.Fatalf("%d bundle adds, want %d", fs.bundleAdds, len(want)-1)
		}
	})
}

func TestFakeEchoAnswered(t *testing.T) {
	rc := startController(t, Config{})
	conn := dialFake(t, rc.addr, 0xb00, ofwire.Version13)
	// Serve by hand: read our HELLO, answer FEATURES, then ping.
	if h, _, err := ofwire.ReadMessage(conn.r); err != nil || h.Type != of.TypeHello {
		t.Fatalf("hello: %+v %v", h, err)
	}
	h, body, err := ofwire.ReadMessage(conn.r)
	if err != nil || h.Type != of.TypeFeaturesRequest {
		t.Fatalf("features request: %+v %v", h, err)
	}
	conn.handle(h, body)
	conn.send(ofwiretest.Message(of.TypeEchoRequest, 4242, &ofp.EchoRequest{Data: []byte("ping")}))
	for {
		h, body, err := ofwire.ReadMessage(conn.r)
		if err != nil {
			t.Fatal(err)
		}
		if h.Type == of.TypeEchoReply {
			if h.XID != 4242 || string(body) != "ping" {
				t.Fatalf("echo reply xid=%d body=%q", h.XID, body)
			}
			return
		}
	}
}

// Master → slave: the role request is sent and nothing is written any more;
// Forget stops everything for that bridge.
func TestFakeDemotionAndForget(t *testing.T) {
	rc := startController(t, Config{AuditInterval: 20 * time.Millisecond})
	fs := connectFake(t, rc, 0xc00, nil)
	dpid := dpidString(0xc00)
	want := pipelineFlows()
	rc.SetDesired(Desired{DPID: dpid, Revision: 1, Flows: want, Master: true, Generation: 1})
	rc.waitApplied(t, dpid, 1)
	rc.SetDesired(Desired{DPID: dpid, Revision: 2, Flows: want[:3], Master: false, Generation: 2})
	waitFor(t, "slave role", func() bool { return rc.status(dpid).Role == "slave" })
	var adds, commits int
	fs.get(func(fs *fakeSwitch) { adds, commits = fs.bundleAdds, fs.commits })
	time.Sleep(100 * time.Millisecond) // several audit intervals
	rc.Forget(dpid)
	time.Sleep(100 * time.Millisecond)
	fs.get(func(fs *fakeSwitch) {
		// The fake switch stores nothing, so a master would re-add at every audit.
		if fs.bundleAdds != adds || fs.commits != commits {
			t.Fatalf("slave/forgotten bridge written: adds %d→%d commits %d→%d", adds, fs.bundleAdds, commits, fs.commits)
		}
	})
	if st := rc.status(dpid); st.AppliedRevision != 1 || !st.Connected || st.DesiredRevision != 2 {
		t.Fatalf("status = %+v", st)
	}
	// Granted MASTER, then demoted: two changes.
	if st := rc.status(dpid); st.MastershipChanges != 2 {
		t.Fatalf("mastership changes = %d, want 2 (granted, demoted)", st.MastershipChanges)
	}
}

// A ROLE_REPLY that grants something other than what was asked (an older
// generation, or SLAVE for a MASTER request) is a failed role request:
// nothing is written, the bridge's status says why and shows no role, and
// once the switch answers properly the role is claimed and flows applied.
func TestFakeRoleReplyMismatch(t *testing.T) {
	cases := []struct {
		name  string
		reply func(ofp.RoleRequest) ofp.RoleRequest
		want  string
	}{
		{"older generation", func(r ofp.RoleRequest) ofp.RoleRequest { r.GenerationID--; return r },
			"requested master generation 3, switch replied master generation 2"},
		{"slave instead of master", func(r ofp.RoleRequest) ofp.RoleRequest { r.Role = ofp.ControllerRoleSlave; return r },
			"requested master generation 3, switch replied slave generation 3"},
	}
	rc := startController(t, Config{})
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			id := uint64(0xd00 + i)
			dpid := dpidString(id)
			fs := connectFake(t, rc, id, func(fs *fakeSwitch) { fs.roleReply = tc.reply })
			rc.SetDesired(Desired{DPID: dpid, Revision: 1, Flows: pipelineFlows(), Master: true, Generation: 3})
			waitFor(t, "role request failure in status", func() bool {
				return strings.Contains(rc.status(dpid).LastError, ofwire.ErrRoleMismatch.Error())
			})
			st := rc.status(dpid)
			if !strings.Contains(st.LastError, tc.want) || st.Role != "none" || st.AppliedRevision != 0 {
				t.Fatalf("status after a mismatched role reply = %+v", st)
			}
			fs.get(func(fs *fakeSwitch) {
				if len(fs.flowMods) != 0 || fs.commits != 0 {
					t.Fatalf("wrote %d flow-mods, %d commits without the role", len(fs.flowMods), fs.commits)
				}
			})
			if n := rc.events.count(EventLostMastership); n != 0 {
				t.Fatalf("%d lost-mastership events for a role never granted", n)
			}
			fs.set(func(fs *fakeSwitch) { fs.roleReply = nil })
			rc.SetDesired(Desired{DPID: dpid, Revision: 2, Flows: pipelineFlows(), Master: true, Generation: 3})
			if st := rc.waitApplied(t, dpid, 2); st.Role != "master" {
				t.Fatalf("status = %+v", st)
			}
		})
	}
}
