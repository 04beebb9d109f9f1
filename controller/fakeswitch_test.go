package controller

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	of "github.com/netrack/openflow"
	"github.com/netrack/openflow/ofp"

	"github.com/op25b/op25b/controller/ofwire"
	"github.com/op25b/op25b/controller/ofwire/ofwiretest"
	"github.com/op25b/op25b/flows"
	"github.com/op25b/op25b/topology"
)

// fakeSwitch is a minimal in-test OpenFlow 1.3 peer. It answers what op25b
// asks (features, role, bundles, barriers, flow dumps) and can misbehave on
// demand. Everything it receives is recorded. Its replies are encoded by
// netrack/openflow (ofwiretest), not by ofwire, and it reads op25b's
// FLOW_MODs with netrack's decoder, so the controller's codec meets a
// second implementation here too.
type fakeSwitch struct {
	t    testing.TB
	conn net.Conn
	r    *bufio.Reader
	dpid uint64

	mu          sync.Mutex
	received    []ofwire.Header
	flowMods    []flowModSeen
	bundleAdds  int
	commits     int
	discards    int
	dump        []byte // concatenated ofp_flow_stats entries to answer dumps with
	dumpPart    int    // entries per reply part (bytes), 0 = 64 KiB
	rejectAdd   int    // reject the n-th bundle add (1-based), 0 = none
	noBundles   bool   // answer bundle control with BAD_REQUEST/BAD_EXPERIMENTER
	noBarrier   bool   // never answer barriers
	staleRole   bool   // answer role requests with ROLE_REQUEST_FAILED/STALE
	closeInDump int    // close the connection after this many dump parts
	silent      bool   // answer nothing at all (dead peer)

	// Flow monitoring (ONF, OpenFlow 1.3). Without monitor the switch
	// refuses subscriptions as a switch without the extension does
	// (BAD_REQUEST/BAD_EXPERIMENTER) and the controller falls back to
	// periodic audits.
	monitor bool
	// monitorOldError answers subscriptions as Open vSwitch answers an
	// invalid one: an error in an OpenFlow 1.0 header with xid 0.
	monitorOldError bool
	monitors        []uint32 // ids subscribed, in order
	cancels         []uint32 // ids cancelled, in order
	dumps           int      // OFPMP_FLOW requests for every table (full dumps) answered

	// roleReply says what a ROLE_REPLY grants; nil grants what was asked.
	roleReply func(ofp.RoleRequest) ofp.RoleRequest

	done chan struct{}
}

type flowModSeen struct {
	command  ofp.FlowModCommand
	inBundle bool
}

// dialFake connects a fake switch and does the HELLO exchange with the
// given version (0x04 for a normal switch).
func dialFake(t testing.TB, addr string, dpid uint64, version uint8) *fakeSwitch {
	t.Helper()
	return dialFakeHello(t, addr, dpid, ofwiretest.Hello(version, 1, 0))
}

// dialFakeHello connects and sends hello as the first message.
func dialFakeHello(t testing.TB, addr string, dpid uint64, hello []byte) *fakeSwitch {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	fs := &fakeSwitch{t: t, conn: conn, r: bufio.NewReader(conn), dpid: dpid, done: make(chan struct{})}
	t.Cleanup(func() { _ = conn.Close() })
	fs.send(hello)
	return fs
}

func (fs *fakeSwitch) send(msgs ...[]byte) {
	for _, m := range msgs {
		if _, err := fs.conn.Write(m); err != nil {
			return
		}
	}
}

func (fs *fakeSwitch) set(f func(*fakeSwitch)) {
	fs.mu.Lock()
	f(fs)
	fs.mu.Unlock()
}

func (fs *fakeSwitch) get(f func(*fakeSwitch)) {
	fs.mu.Lock()
	f(fs)
	fs.mu.Unlock()
}

// serve answers messages until the connection closes; run it in a goroutine.
func (fs *fakeSwitch) serve() {
	defer close(fs.done)
	for {
		h, body, err := ofwire.ReadMessage(fs.r)
		if err != nil {
			return
		}
		fs.mu.Lock()
		fs.received = append(fs.received, h)
		silent := fs.silent
		fs.mu.Unlock()
		if silent {
			continue
		}
		if !fs.handle(h, body) {
			_ = fs.conn.Close()
			return
		}
	}
}

// ofError is an OFPT_ERROR as a switch sends it: the data holds the
// offending request's header.
func ofError(h ofwire.Header, typ ofp.ErrType, code ofp.ErrCode) []byte {
	data := []byte{h.Version, uint8(h.Type), byte(h.Length >> 8), byte(h.Length), 0, 0, 0, 0}
	binary.BigEndian.PutUint32(data[4:], h.XID)
	return ofwiretest.Error(h.XID, typ, code, data)
}

// readFlowMod decodes a FLOW_MOD body with netrack; a message netrack
// cannot read fails the test.
func (fs *fakeSwitch) readFlowMod(body []byte) ofp.FlowMod {
	var fm ofp.FlowMod
	if _, err := fm.ReadFrom(bytes.NewReader(body)); err != nil {
		fs.t.Errorf("fake switch: netrack cannot decode op25b's FLOW_MOD % x: %v", body, err)
	}
	return fm
}

func (fs *fakeSwitch) handle(h ofwire.Header, body []byte) bool {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	switch h.Type {
	case of.TypeHello:
	case of.TypeFeaturesRequest:
		fs.send(ofwiretest.Message(of.TypeFeaturesReply, h.XID, &ofp.SwitchFeatures{DatapathID: fs.dpid, NumTables: 254}))
	case of.TypeEchoRequest:
		fs.send(ofwiretest.Message(of.TypeEchoReply, h.XID, &ofp.EchoReply{Data: body}))
	case of.TypeRoleRequest:
		if fs.staleRole {
			fs.send(ofError(h, ofp.ErrTypeRoleRequestFailed, ofp.ErrCodeRoleRequestFailedStale))
			break
		}
		var req ofp.RoleRequest
		if _, err := req.ReadFrom(bytes.NewReader(body)); err != nil {
			fs.t.Errorf("fake switch: role request % x: %v", body, err)
		}
		if fs.roleReply != nil {
			req = fs.roleReply(req)
		}
		fs.send(ofwiretest.Message(of.TypeRoleReply, h.XID, &req))
	case of.TypeBarrierRequest:
		if !fs.noBarrier {
			fs.send(ofwiretest.Message(of.TypeBarrierReply, h.XID, nil))
		}
	case of.TypeFlowMod:
		fs.flowMods = append(fs.flowMods, flowModSeen{command: fs.readFlowMod(body).Command})
	case of.TypeExperiment:
		if len(body) < 8 || binary.BigEndian.Uint32(body) != ofwire.ONFExperimenterID || fs.noBundles {
			fs.send(ofError(h, ofp.ErrTypeBadRequest, ofp.ErrCodeBadRequestBadExperimenter))
			break
		}
		switch binary.BigEndian.Uint32(body[4:]) {
		case ofwire.ONFTypeFlowMonitor: // cancel: no reply
			fs.cancels = append(fs.cancels, binary.BigEndian.Uint32(body[8:]))
		case ofwire.ONFTypeBundleAdd:
			fs.bundleAdds++
			// ONFT_BUNDLE_ADD_MESSAGE: experimenter header, bundle id,
			// pad, flags, then the whole inner message.
			inner := body[16:]
			if xid := binary.BigEndian.Uint32(inner[4:]); xid != h.XID {
				fs.t.Errorf("fake switch: bundled message xid %d in an add with xid %d", xid, h.XID)
			}
			fm := fs.readFlowMod(inner[ofwire.HeaderLen:])
			fs.flowMods = append(fs.flowMods, flowModSeen{command: fm.Command, inBundle: true})
			if fs.bundleAdds == fs.rejectAdd {
				fs.send(ofError(h, ofp.ErrTypeBadMatch, ofp.ErrCodeBadMatchBadPrereq))
			}
		case ofwire.ONFTypeBundleControl:
			c, err := ofwire.ParseBundleControl(body)
			if err != nil {
				fs.t.Errorf("fake switch: bundle control: %v", err)
				break
			}
			switch c.Type {
			case ofwire.BundleCommitRequest:
				fs.commits++
			case ofwire.BundleDiscardRequest:
				fs.discards++
			}
			c.Type++ // each reply is its request + 1
			fs.send(ofwire.AppendBundleControl(nil, h.XID, c))
		}
	case of.TypeMultipartRequest:
		if ofp.MultipartType(binary.BigEndian.Uint16(body)) == ofp.MultipartTypeExperimenter {
			if fs.monitorOldError {
				// The bytes of controller/ofwire/testdata/ovs/error-flow-monitor-bad-flags.hex.
				fs.send([]byte{0x01, 0x01, 0x00, 0x18, 0, 0, 0, 0, 0xb0, 0xc2, 0, 0, 0, 0, 0x23, 0x20, 0, 0x01, 0x02, 0x06, 0, 0x01, 0, 0x04})
				break
			}
			if !fs.monitor {
				fs.send(ofError(h, ofp.ErrTypeBadRequest, ofp.ErrCodeBadRequestBadExperimenter))
				break
			}
			// mp header (8), experimenter header (8), then the request: id first.
			fs.monitors = append(fs.monitors, binary.BigEndian.Uint32(body[16:]))
			fs.send(ofwiretest.FlowMonitorReply(h.XID))
			break
		}
		// A full dump asks every table (OFPTT_ALL); a read of one table
		// (the drop counters) is not one.
		if len(body) > 8 && body[8] == 0xff {
			fs.dumps++
		}
		part := fs.dumpPart
		if part == 0 {
			part = 60000
		}
		data := fs.dump
		sentParts := 0
		for {
			n := min(part, len(data))
			// Cut at an entry boundary.
			cut := 0
			for cut < len(data) {
				l := int(binary.BigEndian.Uint16(data[cut:]))
				if cut+l > n && cut > 0 {
					break
				}
				cut += l
			}
			more := cut < len(data)
			fs.send(ofwiretest.MultipartReply(h.XID, ofp.MultipartTypeFlow, more, data[:cut]))
			sentParts++
			data = data[cut:]
			if fs.closeInDump > 0 && sentParts >= fs.closeInDump {
				return false
			}
			if !more {
				break
			}
		}
	}
	return true
}

// encodeDump is the body of a FLOW_STATS reply listing fs (one packet
// each), encoded by netrack as a switch would send it.
func encodeDump(fs []flows.Flow) []byte { return ofwiretest.FlowStatsEntries(fs, 1) }

var (
	bigDumpOnce sync.Once
	bigDump     []byte
)

// bigDropDump is encodeDump(dropFlows(100_000, 10.0.0.0)), built once per
// test binary: netrack's reflection encoder needs a while for 100k entries,
// longer under -race.
func bigDropDump() []byte {
	bigDumpOnce.Do(func() { bigDump = encodeDump(dropFlows(100_000, netip.MustParseAddr("10.0.0.0"))) })
	return bigDump
}

// connectFake dials, serves and waits until the controller registered it.
func connectFake(t *testing.T, rc *runningController, dpid uint64, setup func(*fakeSwitch)) *fakeSwitch {
	t.Helper()
	fs := dialFake(t, rc.addr, dpid, ofwire.Version13)
	if setup != nil {
		setup(fs)
	}
	go fs.serve()
	waitFor(t, "fake switch connected", func() bool { return rc.status(dpidString(dpid)).Connected })
	return fs
}

func dpidString(d uint64) topology.DPID { return topology.DPIDFromUint64(d) }

func waitClosed(t *testing.T, fs *fakeSwitch) {
	t.Helper()
	select {
	case <-fs.done:
	case <-time.After(90 * time.Second):
		t.Fatal("controller did not close the connection")
	}
}
