package controller

import (
	"bufio"
	"encoding/binary"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/netrack/openflow/ofp"

	"github.com/op25b/op25b/flows"
	"github.com/op25b/op25b/topology"
)

// fakeSwitch is a minimal in-test OpenFlow 1.3 peer. It answers what op25b
// asks (features, role, bundles, barriers, flow dumps) and can misbehave on
// demand. Everything it receives is recorded.
type fakeSwitch struct {
	t    testing.TB
	conn net.Conn
	r    *bufio.Reader
	dpid uint64

	mu          sync.Mutex
	received    []header
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

	done chan struct{}
}

type flowModSeen struct {
	command  uint8
	inBundle bool
}

// dialFake connects a fake switch and does the HELLO exchange with the
// given version (0x04 for a normal switch).
func dialFake(t testing.TB, addr string, dpid uint64, version uint8) *fakeSwitch {
	t.Helper()
	hello := encodeSimple(nil, typeHello, 1, nil)
	hello[0] = version
	return dialFakeHello(t, addr, dpid, hello)
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
		h, body, err := readMessage(fs.r)
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

func ofError(xid uint32, typ ofp.ErrType, code ofp.ErrCode) []byte {
	b := appendHeader(nil, typeError, xid)
	b = be16(b, uint16(typ))
	b = be16(b, uint16(code))
	b = append(b, make([]byte, 8)...)
	return finish(b, 0)
}

func (fs *fakeSwitch) handle(h header, body []byte) bool {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	switch h.Type {
	case typeHello:
	case typeFeaturesReq:
		b := appendHeader(nil, typeFeaturesRep, h.XID)
		b = be64(b, fs.dpid)
		b = append(b, make([]byte, 16)...)
		fs.send(finish(b, 0))
	case typeEchoRequest:
		fs.send(encodeSimple(nil, typeEchoReply, h.XID, body))
	case typeRoleRequest:
		if fs.staleRole {
			fs.send(ofError(h.XID, ofp.ErrTypeRoleRequestFailed, ofp.ErrCodeRoleRequestFailedStale))
			break
		}
		b := appendHeader(nil, typeRoleReply, h.XID)
		b = append(b, body...)
		fs.send(finish(b, 0))
	case typeBarrierReq:
		if !fs.noBarrier {
			fs.send(encodeSimple(nil, typeBarrierRep, h.XID, nil))
		}
	case typeFlowMod:
		fs.flowMods = append(fs.flowMods, flowModSeen{command: body[17]})
	case typeExperimenter:
		if len(body) < 8 || binary.BigEndian.Uint32(body) != onfExperimenterID {
			fs.send(ofError(h.XID, ofp.ErrTypeBadRequest, ofp.ErrCodeBadRequestBadExperimenter))
			break
		}
		if fs.noBundles {
			fs.send(ofError(h.XID, ofp.ErrTypeBadRequest, ofp.ErrCodeBadRequestBadExperimenter))
			break
		}
		switch binary.BigEndian.Uint32(body[4:]) {
		case onfBundleAdd:
			fs.bundleAdds++
			inner := body[16:]
			fs.flowMods = append(fs.flowMods, flowModSeen{command: inner[headerLen+17], inBundle: true})
			if fs.bundleAdds == fs.rejectAdd {
				fs.send(ofError(h.XID, ofp.ErrTypeBadMatch, ofp.ErrCodeBadMatchBadPrereq))
			}
		case onfBundleControl:
			id, typ := binary.BigEndian.Uint32(body[8:]), binary.BigEndian.Uint16(body[12:])
			switch typ {
			case bundleCommitRequest:
				fs.commits++
			case bundleDiscardReq:
				fs.discards++
			}
			fs.send(encodeBundleControl(nil, h.XID, id, typ+1))
		}
	case typeMultipartReq:
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
			flags := uint16(0)
			if cut < len(data) {
				flags = multipartReplyMore
			}
			b := appendHeader(nil, typeMultipartRep, h.XID)
			b = be16(b, multipartFlow)
			b = be16(b, flags)
			b = pad(b, 4)
			b = append(b, data[:cut]...)
			fs.send(finish(b, 0))
			sentParts++
			data = data[cut:]
			if fs.closeInDump > 0 && sentParts >= fs.closeInDump {
				return false
			}
			if flags == 0 {
				break
			}
		}
	}
	return true
}

// encodeFlowStatsEntry builds one ofp_flow_stats entry as a switch would.
func encodeFlowStatsEntry(f flows.Flow, packets uint64) []byte {
	b := be16(nil, 0)
	b = append(b, f.Table, 0)
	b = be32(b, 12) // duration sec
	b = be32(b, 0)
	b = be16(b, f.Priority)
	b = be16(b, 0)
	b = be16(b, 0)
	b = be16(b, 0)
	b = pad(b, 4)
	b = be64(b, f.Cookie)
	b = be64(b, packets)
	b = be64(b, packets*64)
	b = encodeMatch(b, f.Match)
	b = encodeInstructions(b, f.Actions)
	binary.BigEndian.PutUint16(b, uint16(len(b)))
	return b
}

func encodeDump(fs []flows.Flow) []byte {
	var b []byte
	for _, f := range fs {
		b = append(b, encodeFlowStatsEntry(f, 1)...)
	}
	return b
}

// connectFake dials, serves and waits until the controller registered it.
func connectFake(t *testing.T, rc *runningController, dpid uint64, setup func(*fakeSwitch)) *fakeSwitch {
	t.Helper()
	fs := dialFake(t, rc.addr, dpid, Version13)
	if setup != nil {
		setup(fs)
	}
	go fs.serve()
	waitFor(t, "fake switch connected", func() bool { return rc.status(dpidString(dpid)).Connected })
	return fs
}

func dpidString(d uint64) string { return topology.FormatDPID(d) }

func waitClosed(t *testing.T, fs *fakeSwitch) {
	t.Helper()
	select {
	case <-fs.done:
	case <-time.After(90 * time.Second):
		t.Fatal("controller did not close the connection")
	}
}
