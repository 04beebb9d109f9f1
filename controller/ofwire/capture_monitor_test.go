package ofwire_test

// How the flow-monitor fixtures were captured (run only with -capture;
// they need Open vSwitch and rewrite committed files):
//
//	go test ./controller/ofwire -run 'TestCapture.*Monitor' -capture -v

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	of "github.com/netrack/openflow"
	"github.com/netrack/openflow/ofp"

	"github.com/op25b/op25b/controller/ofwire"
	"github.com/op25b/op25b/internal/testenv"
)

// ofctlMonitorWatches are the `ovs-ofctl monitor` watch specifications
// captured as flow monitor requests: the one op25b sends (no initial
// listing, own changes abbreviated, one table) and ovs-ofctl's default.
var ofctlMonitorWatches = []struct{ name, watch string }{
	{"flow-monitor-request-table0", "watch:!initial,!own,table=0"},
	{"flow-monitor-request-default", "watch:"},
}

// captureOfctlRequest runs `ovs-ofctl monitor` against a listener playing
// the switch and returns the flow monitor request it sends (ovs-ofctl then
// gives up on the fake's reply, which is fine).
func captureOfctlRequest(t *testing.T, watch string) message {
	t.Helper()
	for _, m := range runOfctl(t, 0, "monitor", "TARGET", watch) {
		if m.h.Type == of.TypeMultipartRequest {
			return m
		}
	}
	t.Fatalf("ovs-ofctl monitor %s sent no multipart request", watch)
	return message{}
}

func TestCaptureOvsOfctlMonitor(t *testing.T) {
	if !*capture {
		t.Skip("re-captures testdata/ovs-ofctl/flow-monitor-*.hex with -capture")
	}
	requireOfctl(t)
	version, _ := exec.Command("ovs-ofctl", "--version").Output()
	ver := strings.SplitN(string(version), "\n", 2)[0]
	for _, w := range ofctlMonitorWatches {
		m := captureOfctlRequest(t, w.watch)
		writeFixture(t, filepath.Join("testdata", "ovs-ofctl", w.name+".hex"), []string{
			"ONFST_FLOW_MONITOR request (experimenter multipart) for `" + w.watch + "`.",
			"Captured from " + ver + ":",
			"  ovs-ofctl -O OpenFlow13 --no-names monitor tcp:127.0.0.1:PORT " + w.watch,
			"by a Go listener playing the switch (TestCaptureOvsOfctlMonitor in capture_monitor_test.go;",
			"re-capture with `go test ./controller/ofwire -run TestCaptureOvsOfctlMonitor -capture`).",
		}, m.raw)
	}
}

// Fixed xids of TestCaptureOVSMonitor's requests.
const (
	xidMonitor        = 0x500
	xidMonitorNicira  = 0x502
	xidMonitorBadFlag = 0x503
	xidOwnFlowMod     = 0x600
	xidOwnBundle      = 0x610
	monitorCaptureID  = 1
)

// Flows changed with ovs-ofctl behind the monitoring connection's back.
const (
	capturedOwnedFlow   = "table=0,priority=5,cookie=0x25b0000000000001,ip,nw_src=10.0.0.0/8,actions=goto_table:2"
	capturedModifyFlow  = "table=0,ip,nw_src=10.0.0.0/8,actions=NORMAL"
	capturedDeleteFlow  = "table=0,ip,nw_src=10.0.0.0/8"
	capturedSetField    = "table=0,priority=6,cookie=0x25b0000000000002,ip,nw_dst=192.0.2.0/24,actions=set_field:10.0.0.1->ip_dst,output:1"
	capturedForeignOXM  = "table=0,priority=7,cookie=0x25b0000000000003,reg0=5,actions=drop"
	capturedFloodFlows  = 2000 // flows per ovs-ofctl call while the connection does not read
	capturedFloodChunks = 80
)

// listenSmallBuffer listens with a 4 KiB receive buffer, inherited by the
// accepted connection, so that a reader that stops reading makes the
// switch queue its notifications (and pause) sooner.
func listenSmallBuffer(t *testing.T) net.Listener {
	t.Helper()
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		}); err != nil {
			return err
		}
		return serr
	}}
	ln, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	return ln
}

// next returns the next message, answering echo requests on the way.
func (o ovsConn) next(timeout time.Duration) (message, bool) {
	o.t.Helper()
	_ = o.c.SetReadDeadline(time.Now().Add(timeout))
	defer func() { _ = o.c.SetReadDeadline(time.Now().Add(60 * time.Second)) }()
	for {
		m, err := readRaw(o.c)
		if err != nil {
			return message{}, false
		}
		if m.h.Type == of.TypeEchoRequest {
			_, _ = o.c.Write(ofwire.AppendEchoReply(nil, m.h.XID, m.body()))
			continue
		}
		return m, true
	}
}

// notification waits for the next flow monitor notification.
func (o ovsConn) notification() message {
	o.t.Helper()
	for {
		m, ok := o.next(10 * time.Second)
		if !ok {
			o.t.Fatal("no flow monitor notification within 10s")
		}
		if m.h.Type == of.TypeMultipartReply && m.h.XID == 0 {
			return m
		}
	}
}

func ovsCounter(t *testing.T, name string) string {
	return strings.TrimSpace(testenv.Run(t, "ovs-appctl", "coverage/read-counter", name))
}

func TestCaptureOVSMonitor(t *testing.T) {
	if !*capture {
		t.Skip("re-captures testdata/ovs/flow-*.hex and error-flow-monitor-*.hex with -capture (needs Open vSwitch)")
	}
	version, _ := exec.Command("ovs-vswitchd", "--version").Output()
	ver := strings.SplitN(string(version), "\n", 2)[0]
	br := testenv.NewBridge(t, captureDPID)
	br.AddPort(t, 1)
	ln := listenSmallBuffer(t)
	br.SetController(t, "tcp:"+ln.Addr().String())
	a, _ := acceptOVS(t, ln)
	a.request(xidFeatures, ofwire.AppendFeaturesRequest(nil, xidFeatures))
	a.request(xidRoleMaster, ofwire.AppendRoleRequest(nil, xidRoleMaster, ofwire.RoleMessage{Role: ofp.ControllerRoleMaster, GenerationID: 1}))

	out := filepath.Join("testdata", "ovs")
	how := func(what string, lines ...string) []string {
		note := append([]string{what}, lines...)
		return append(note, "Captured from "+ver+", netdev bridge with datapath id "+captureDPID+", one controller",
			"connection watching table 0 with op25b's monitor request (TestCaptureOVSMonitor in",
			"capture_monitor_test.go; re-capture with `go test ./controller/ofwire -run TestCaptureOVSMonitor -capture`).")
	}
	save := func(name string, m message, note []string) {
		writeFixture(t, filepath.Join(out, name+".hex"), note, m.raw)
	}

	req := ofwire.FlowMonitorRequest{ID: monitorCaptureID, Flags: ofwire.MonitorAdd | ofwire.MonitorDelete | ofwire.MonitorModify | ofwire.MonitorActions,
		OutPort: uint32(ofp.PortAny), Table: 0}
	save("flow-monitor-reply", a.request(xidMonitor, ofwire.AppendFlowMonitorRequest(nil, xidMonitor, req)),
		how("ONFST_FLOW_MONITOR reply to op25b's request (table 0; add, delete, modify, actions): empty, no initial listing."))

	// The Nicira form (NXST_FLOW_MONITOR: experimenter 0x2320, subtype 2)
	// is refused under OpenFlow 1.3.
	nx := []byte{0x04, 0x12, 0, 0x28, 0, 0, xidMonitorNicira >> 8, xidMonitorNicira & 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0,
		0, 0, 0x23, 0x20, 0, 0, 0, 2, // Nicira vendor id, NXST_FLOW_MONITOR
		0, 0, 0, 3, 0, 0x1e, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0} // id 3, flags, out_port NONE, match_len 0, table 0
	save("error-flow-monitor-nicira", a.request(xidMonitorNicira, nx),
		how("ERROR for a Nicira-form NXST_FLOW_MONITOR request (vendor 0x2320, subtype 2) on an",
			"OpenFlow 1.3 connection: OVS 3.1 knows it only for OpenFlow 1.0-1.2."))

	// A request with no event flags is invalid. OVS reports the
	// OpenFlow 1.4 error OFPMOFC_BAD_FLAGS as a Nicira vendor error in an
	// OpenFlow 1.0 header with xid 0: nothing a 1.3 session can attribute.
	if _, err := a.c.Write(ofwire.AppendFlowMonitorRequest(nil, xidMonitorBadFlag, ofwire.FlowMonitorRequest{ID: 2, OutPort: uint32(ofp.PortAny)})); err != nil {
		t.Fatal(err)
	}
	for {
		m, ok := a.next(5 * time.Second)
		if !ok {
			t.Fatal("no error for a monitor request without event flags")
		}
		if m.h.Type == of.TypeError {
			save("error-flow-monitor-bad-flags", m, how("ERROR OVS sends for an ONF flow monitor request without add/delete/modify flags:",
				"an OpenFlow 1.0 header (version 0x01) and xid 0 on an OpenFlow 1.3 connection."))
			break
		}
	}

	br.Ofctl(t, "add-flow", br.Name, capturedOwnedFlow)
	save("flow-update-added", a.notification(), how("Notification (xid 0) after `ovs-ofctl -O OpenFlow13 add-flow` on another connection:", "  "+capturedOwnedFlow))
	br.Ofctl(t, "mod-flows", br.Name, capturedModifyFlow)
	save("flow-update-modified", a.notification(), how("Notification after `ovs-ofctl -O OpenFlow13 mod-flows`:", "  "+capturedModifyFlow))
	br.Ofctl(t, "del-flows", br.Name, capturedDeleteFlow)
	save("flow-update-deleted", a.notification(), how("Notification after `ovs-ofctl -O OpenFlow13 del-flows`:", "  "+capturedDeleteFlow,
		"OVS 3.1 includes the deleted flow's instructions."))
	br.Ofctl(t, "add-flow", br.Name, capturedSetField)
	save("flow-update-added-set-field", a.notification(), how("Notification for an op25b-cookie flow with an action op25b never writes:", "  "+capturedSetField))
	br.Ofctl(t, "add-flow", br.Name, capturedForeignOXM)
	save("flow-update-added-nicira-oxm", a.notification(), how("Notification for an op25b-cookie flow matching a Nicira OXM field:", "  "+capturedForeignOXM))

	if _, err := a.c.Write(ofwire.AppendFlowMod(nil, xidOwnFlowMod, ofwire.FlowMod{Command: ofp.FlowAdd, Table: 0, Priority: 9, Cookie: 0x25b0000000000009})); err != nil {
		t.Fatal(err)
	}
	save("flow-update-abbrev-flow-mod", a.notification(), how(fmt.Sprintf("Notification of the monitoring connection's own FLOW_MOD (xid %#x): abbreviated.", xidOwnFlowMod)))
	flags := ofwire.BundleAtomic | ofwire.BundleOrdered
	var bundle []byte
	bundle = ofwire.AppendBundleControl(bundle, xidOwnBundle, ofwire.BundleControl{BundleID: 1, Type: ofwire.BundleOpenRequest, Flags: flags})
	bundle = ofwire.AppendBundleAdd(bundle, xidOwnBundle+1, 1, flags, ofwire.FlowMod{Command: ofp.FlowAdd, Table: 0, Priority: 10, Cookie: 0x25b000000000000a})
	bundle = ofwire.AppendBundleAdd(bundle, xidOwnBundle+2, 1, flags, ofwire.FlowMod{Command: ofp.FlowAdd, Table: 0, Priority: 11, Cookie: 0x25b000000000000b})
	bundle = ofwire.AppendBundleControl(bundle, xidOwnBundle+3, ofwire.BundleControl{BundleID: 1, Type: ofwire.BundleCommitRequest, Flags: flags})
	if _, err := a.c.Write(bundle); err != nil {
		t.Fatal(err)
	}
	save("flow-update-abbrev-bundle", a.notification(), how(fmt.Sprintf("Notification of the monitoring connection's own bundle commit (two adds, xids %#x and %#x):",
		xidOwnBundle+1, xidOwnBundle+2), "one abbreviated update naming the first bundled message."))

	// Stop reading and add flows to the watched table until OVS pauses
	// the monitor, then read again: PAUSED arrives after what was queued,
	// RESUMED once the queue drained.
	before := ovsCounter(t, "ofmonitor_pause")
	dir := t.TempDir()
	for chunk := 0; chunk < capturedFloodChunks && ovsCounter(t, "ofmonitor_pause") == before; chunk++ {
		var sb strings.Builder
		for i := 0; i < capturedFloodFlows; i++ {
			n := chunk*capturedFloodFlows + i
			fmt.Fprintf(&sb, "table=0,priority=7,cookie=0x99,ip,nw_src=10.%d.%d.0/24,actions=drop\n", n>>8&0xff, n&0xff)
		}
		path := filepath.Join(dir, fmt.Sprintf("flood-%d.txt", chunk))
		if err := os.WriteFile(path, []byte(sb.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		br.Ofctl(t, "--bundle", "add-flows", br.Name, path)
	}
	var paused bool
	for {
		m, ok := a.next(30 * time.Second)
		if !ok {
			t.Fatal("no PAUSED/RESUMED after flooding the monitor")
		}
		if m.h.Type != of.TypeExperiment {
			continue
		}
		_, typ, _ := ofwire.ExperimenterType(m.body())
		switch typ {
		case ofwire.ONFTypeFlowMonitorPaused:
			paused = true
			save("flow-monitor-paused", m, how("ONFT_FLOW_MONITOR_PAUSED: sent after the connection stopped reading while",
				"flows were added to the watched table (OVS pauses at 128 KiB of queued notifications)."))
		case ofwire.ONFTypeFlowMonitorResumed:
			if !paused {
				t.Fatal("RESUMED before PAUSED")
			}
			save("flow-monitor-resumed", m, how("ONFT_FLOW_MONITOR_RESUMED: sent once the connection read again and the queue drained."))
			return
		}
	}
}
