// Package fakeswitch simulates Open vSwitch bridges for op25b's tests and
// benchmarks: each Switch dials every controller of its list, as a bridge
// with several controller targets does, and answers what op25b's
// controller asks in OpenFlow 1.3 — HELLO and FEATURES, roles with
// generation ids, flow-mods, ONF bundles, barriers, flow dumps and ONF flow
// monitors — from a flow table of its own. It is cheap enough that one test
// process runs a thousand of them next to real netdev bridges.
//
// It follows Open vSwitch where op25b depends on it: a MASTER or SLAVE
// request with a generation older than the newest seen is refused as stale
// (OpenFlow 1.3 §6.3.6), a new master demotes the previous one, a slave's
// writes are refused with IS_SLAVE, a bundle's flow-mods take effect
// together at COMMIT, and flow-table changes are reported to every
// connection that monitors the table (the connection's own changes
// abbreviated to their xid). It is a simulator, not a second OVS: matches
// are compared as the bytes the controller sent (op25b always encodes one
// flow the same way), and non-strict modify and delete only take an empty
// match. Edge cases of the protocol (malformed replies, a switch that never
// answers) are the controller's own tests' fake peer.
//
// Place: test support, like internal/testenv; production code never
// imports it.
package fakeswitch

import (
	"bufio"
	"context"
	"encoding/binary"
	"net"
	"sort"
	"strconv"
	"sync"
	"time"

	of "github.com/netrack/openflow"
	"github.com/netrack/openflow/ofp"

	"github.com/op25b/op25b/controller/ofwire"
	"github.com/op25b/op25b/flows"
	"github.com/op25b/op25b/topology"
)

// Config describes one simulated bridge.
type Config struct {
	DPID topology.DPID
	// Controllers are the "host:port" targets the switch keeps one
	// connection to each, like a bridge's controller list.
	Controllers []string
	// Reconnect is the pause before a lost or refused connection is dialled
	// again; default 250 ms (Open vSwitch starts at 1 s and backs off to 8).
	Reconnect time.Duration
}

// Stats counts what a switch was asked.
type Stats struct {
	Connects      int // connections established (HELLO sent)
	RoleRequests  int // ROLE_REQUESTs received, answered or refused
	StaleRefusals int // role requests refused as stale
	FlowMods      int // flow-mods applied, bundled or not
	Commits       int // bundles committed
	Dumps         int // flow stats requests answered
	Monitors      int // flow monitors subscribed
}

// Switch is one simulated bridge. Its methods are safe for concurrent use.
type Switch struct {
	cfg  Config
	dpid uint64

	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu         sync.Mutex
	table      map[flowKey]*entry
	generation uint64 // largest generation seen (OpenFlow 1.3 §6.3.6)
	genSet     bool
	conns      map[*conn]struct{}
	stats      Stats
	changed    chan struct{} // closed at the next table change
}

// flowKey identifies a flow: table, priority and the match as sent.
type flowKey struct {
	table    uint8
	priority uint16
	match    string
}

type entry struct {
	cookie         uint64
	idle, hard     uint16
	flags          uint16
	instructions   []byte
	packets, bytes uint64
}

// Start creates the switch and dials its controllers until Close.
func Start(cfg Config) (*Switch, error) {
	dpid, err := topology.ParseDPID(string(cfg.DPID))
	if err != nil {
		return nil, err
	}
	id, err := strconv.ParseUint(string(dpid), 16, 64)
	if err != nil {
		return nil, err
	}
	if cfg.Reconnect <= 0 {
		cfg.Reconnect = 250 * time.Millisecond
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Switch{
		cfg: cfg, dpid: id, cancel: cancel,
		table: map[flowKey]*entry{}, conns: map[*conn]struct{}{}, changed: make(chan struct{}),
	}
	for _, target := range cfg.Controllers {
		s.wg.Go(func() { s.dialLoop(ctx, target) })
	}
	return s, nil
}

// Close disconnects from every controller and waits for the switch's
// goroutines. The flow table stays readable.
func (s *Switch) Close() {
	s.cancel()
	s.mu.Lock()
	for c := range s.conns {
		_ = c.nc.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// DPID is the switch's datapath id.
func (s *Switch) DPID() topology.DPID { return s.cfg.DPID }

// Stats returns the counters so far.
func (s *Switch) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// Master returns the controller target whose connection holds the MASTER
// role, and the generation it claimed; "" when none does.
func (s *Switch) Master() (string, uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		if c.role == ofp.ControllerRoleMaster {
			return c.target, s.generation
		}
	}
	return "", s.generation
}

// Connected returns how many controllers the switch has a session with.
func (s *Switch) Connected() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// Flows returns the flow table as op25b's codec reads a dump of it,
// sorted by table, priority and match; entries it cannot represent are
// left out.
func (s *Switch) Flows() []flows.Flow {
	s.mu.Lock()
	var dump []byte
	for k, e := range s.table {
		dump = flowStatsEntry(dump, k, e)
	}
	s.mu.Unlock()
	entries, err := ofwire.DecodeFlowStats(dump, nil)
	if err != nil {
		return nil
	}
	out := make([]flows.Flow, 0, len(entries))
	for _, e := range entries {
		if !e.Foreign {
			out = append(out, e.Flow)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Table != b.Table {
			return a.Table < b.Table
		}
		if a.Priority != b.Priority {
			return a.Priority > b.Priority
		}
		return flows.Render(a) < flows.Render(b)
	})
	return out
}

// Changed returns a channel closed at the next change of the flow table.
func (s *Switch) Changed() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changed
}

// Apply changes the flow table out of band, as `ovs-ofctl add-flow` or
// `del-flows --strict` would: every monitoring connection is told.
func (s *Switch) Apply(fm ofwire.FlowMod) error {
	msg := ofwire.AppendFlowMod(nil, 0, fm)
	parsed, err := parseFlowMod(msg[ofwire.HeaderLen:])
	if err != nil {
		return err
	}
	s.mu.Lock()
	notes := s.applyLocked([]flowMod{parsed}, nil, nil)
	s.mu.Unlock()
	notes.send()
	return nil
}

// dialLoop keeps one connection to target until ctx is done.
func (s *Switch) dialLoop(ctx context.Context, target string) {
	var d net.Dialer
	for ctx.Err() == nil {
		dctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		nc, err := d.DialContext(dctx, "tcp", target)
		cancel()
		if err == nil {
			s.serve(ctx, target, nc)
		}
		select {
		case <-ctx.Done():
		case <-time.After(s.cfg.Reconnect):
		}
	}
}

// conn is one controller connection.
type conn struct {
	sw     *Switch
	target string
	nc     net.Conn

	wmu sync.Mutex
	w   *bufio.Writer

	// Guarded by Switch.mu.
	role     ofp.ControllerRole
	bundles  map[uint32][]bundledMod
	monitors map[uint32]monitorRequest
}

type bundledMod struct {
	xid uint32
	fm  flowMod
}

func (c *conn) send(msgs ...[]byte) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.nc.SetWriteDeadline(time.Now().Add(10 * time.Second))
	for _, m := range msgs {
		if _, err := c.w.Write(m); err != nil {
			_ = c.nc.Close()
			return
		}
	}
	if err := c.w.Flush(); err != nil {
		_ = c.nc.Close()
	}
}

// serve runs one connection until it fails or ctx is done.
func (s *Switch) serve(ctx context.Context, target string, nc net.Conn) {
	c := &conn{sw: s, target: target, nc: nc, w: bufio.NewWriterSize(nc, 64<<10),
		role: ofp.ControllerRoleEqual, bundles: map[uint32][]bundledMod{}, monitors: map[uint32]monitorRequest{}}
	s.mu.Lock()
	if ctx.Err() != nil {
		s.mu.Unlock()
		_ = nc.Close()
		return
	}
	s.conns[c] = struct{}{}
	s.stats.Connects++
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		_ = nc.Close()
	}()
	c.send(helloMessage())
	r := bufio.NewReaderSize(nc, 64<<10)
	for {
		h, body, err := ofwire.ReadMessage(r)
		if err != nil {
			return
		}
		c.handle(h, body)
	}
}

// raw rebuilds the start of a message for an error's data.
func raw(h ofwire.Header, body []byte) []byte {
	b := make([]byte, ofwire.HeaderLen, ofwire.HeaderLen+min(len(body), 56))
	b[0], b[1] = h.Version, byte(h.Type)
	binary.BigEndian.PutUint16(b[2:], h.Length)
	binary.BigEndian.PutUint32(b[4:], h.XID)
	return append(b, body[:min(len(body), 56)]...)
}

func (c *conn) handle(h ofwire.Header, body []byte) {
	switch h.Type {
	case of.TypeHello, of.TypeEchoReply, of.TypeSetConfig:
	case of.TypeEchoRequest:
		c.send(finish(append(message(of.TypeEchoReply, h.XID), body...)))
	case of.TypeFeaturesRequest:
		c.send(featuresReply(h.XID, c.sw.dpid, 254))
	case of.TypeBarrierRequest:
		c.send(finish(message(of.TypeBarrierReply, h.XID)))
	case of.TypeRoleRequest:
		c.roleRequest(h, body)
	case of.TypeFlowMod:
		c.flowMod(h, body)
	case of.TypeExperiment:
		c.experimenter(h, body)
	case of.TypeMultipartRequest:
		c.multipart(h, body)
	default:
		c.send(errorMessage(h.XID, ofp.ErrTypeBadRequest, ofp.ErrCodeBadRequestBadType, raw(h, body)))
	}
}

// roleRequest follows Open vSwitch: MASTER and SLAVE carry a generation
// that must not be older than the newest seen; a new master makes the
// previous one a slave.
func (c *conn) roleRequest(h ofwire.Header, body []byte) {
	if len(body) < 16 {
		c.send(errorMessage(h.XID, ofp.ErrTypeBadRequest, ofp.ErrCodeBadRequestLen, raw(h, body)))
		return
	}
	role := ofp.ControllerRole(binary.BigEndian.Uint32(body))
	gen := binary.BigEndian.Uint64(body[8:])
	s := c.sw
	s.mu.Lock()
	s.stats.RoleRequests++
	if role == ofp.ControllerRoleMaster || role == ofp.ControllerRoleSlave {
		if s.genSet && int64(gen-s.generation) < 0 {
			s.stats.StaleRefusals++
			s.mu.Unlock()
			c.send(errorMessage(h.XID, ofp.ErrTypeRoleRequestFailed, ofp.ErrCodeRoleRequestFailedStale, raw(h, body)))
			return
		}
		s.generation, s.genSet = gen, true
	}
	if role == ofp.ControllerRoleMaster {
		for other := range s.conns {
			if other != c && other.role == ofp.ControllerRoleMaster {
				other.role = ofp.ControllerRoleSlave
			}
		}
	}
	if role != ofp.ControllerRoleNoChange {
		c.role = role
	}
	reply := roleReply(h.XID, c.role, s.generation)
	s.mu.Unlock()
	c.send(reply)
}

// mayWrite reports whether this connection may change flows; Switch.mu held.
func (c *conn) mayWrite() bool { return c.role != ofp.ControllerRoleSlave }

func (c *conn) flowMod(h ofwire.Header, body []byte) {
	fm, err := parseFlowMod(body)
	if err != nil {
		c.send(errorMessage(h.XID, ofp.ErrTypeBadRequest, ofp.ErrCodeBadRequestLen, raw(h, body)))
		return
	}
	s := c.sw
	s.mu.Lock()
	if !c.mayWrite() {
		s.mu.Unlock()
		c.send(errorMessage(h.XID, ofp.ErrTypeBadRequest, ofp.ErrCodeBadRequestIsSlave, raw(h, body)))
		return
	}
	if code, ok := invalid(fm); !ok {
		s.mu.Unlock()
		c.send(errorMessage(h.XID, ofp.ErrTypeFlowModFailed, code, raw(h, body)))
		return
	}
	notes := s.applyLocked([]flowMod{fm}, c, []uint32{h.XID})
	s.mu.Unlock()
	notes.send()
}

// invalid checks what Open vSwitch refuses when a flow-mod arrives.
func invalid(fm flowMod) (ofp.ErrCode, bool) {
	switch fm.command {
	case ofp.FlowAdd, ofp.FlowModify, ofp.FlowModifyStrict:
		if fm.table == uint8(ofp.TableAll) {
			return ofp.ErrCodeFlowModFailedBadTableID, false
		}
	case ofp.FlowDelete, ofp.FlowDeleteStrict:
	default:
		return ofp.ErrCodeFlowModFailedBadCommand, false
	}
	return 0, true
}

func (c *conn) experimenter(h ofwire.Header, body []byte) {
	exp, typ, err := ofwire.ExperimenterType(body)
	if err != nil || exp != ofwire.ONFExperimenterID {
		c.send(errorMessage(h.XID, ofp.ErrTypeBadRequest, ofp.ErrCodeBadRequestBadExperimenter, raw(h, body)))
		return
	}
	s := c.sw
	switch typ {
	case ofwire.ONFTypeFlowMonitor: // ONFT_FLOW_MONITOR_CANCEL: no reply
		if len(body) >= 12 {
			s.mu.Lock()
			delete(c.monitors, binary.BigEndian.Uint32(body[8:]))
			s.mu.Unlock()
		}
	case ofwire.ONFTypeBundleAdd:
		c.bundleAdd(h, body)
	case ofwire.ONFTypeBundleControl:
		c.bundleControl(h, body)
	default:
		c.send(errorMessage(h.XID, ofp.ErrTypeBadRequest, ofp.ErrCodeBadRequestBadExperimenter, raw(h, body)))
	}
}

// bundleAdd validates the wrapped flow-mod on arrival, as Open vSwitch
// does, and keeps it for COMMIT (ONF EXT-230).
func (c *conn) bundleAdd(h ofwire.Header, body []byte) {
	fail := func(typ ofp.ErrType, code ofp.ErrCode) { c.send(errorMessage(h.XID, typ, code, raw(h, body))) }
	if len(body) < 16+ofwire.HeaderLen {
		fail(ofp.ErrTypeBadRequest, ofp.ErrCodeBadRequestLen)
		return
	}
	id := binary.BigEndian.Uint32(body[8:])
	inner, err := ofwire.ParseHeader(body[16:])
	if err != nil || int(inner.Length) > len(body)-16 || inner.Type != of.TypeFlowMod {
		fail(ofp.ErrTypeBadRequest, ofp.ErrCodeBadRequestBadType)
		return
	}
	fm, err := parseFlowMod(body[16+ofwire.HeaderLen : 16+int(inner.Length)])
	if err != nil {
		fail(ofp.ErrTypeBadRequest, ofp.ErrCodeBadRequestLen)
		return
	}
	s := c.sw
	s.mu.Lock()
	slave := !c.mayWrite()
	code, ok := invalid(fm)
	if !slave && ok {
		c.bundles[id] = append(c.bundles[id], bundledMod{xid: inner.XID, fm: fm})
	}
	s.mu.Unlock()
	switch {
	case slave:
		fail(ofp.ErrTypeBadRequest, ofp.ErrCodeBadRequestIsSlave)
	case !ok:
		fail(ofp.ErrTypeFlowModFailed, code)
	}
}

func (c *conn) bundleControl(h ofwire.Header, body []byte) {
	bc, err := ofwire.ParseBundleControl(body)
	if err != nil {
		c.send(errorMessage(h.XID, ofp.ErrTypeBadRequest, ofp.ErrCodeBadRequestLen, raw(h, body)))
		return
	}
	s := c.sw
	reply := bc
	reply.Type++ // every reply is its request's type + 1
	var notes notifications
	s.mu.Lock()
	switch bc.Type {
	case ofwire.BundleOpenRequest:
		c.bundles[bc.BundleID] = nil
	case ofwire.BundleCloseRequest:
	case ofwire.BundleCommitRequest:
		if !c.mayWrite() {
			s.mu.Unlock()
			c.send(errorMessage(h.XID, ofp.ErrTypeBadRequest, ofp.ErrCodeBadRequestIsSlave, raw(h, body)))
			return
		}
		mods := c.bundles[bc.BundleID]
		delete(c.bundles, bc.BundleID)
		fms := make([]flowMod, len(mods))
		xids := make([]uint32, len(mods))
		for i, m := range mods {
			fms[i], xids[i] = m.fm, m.xid
		}
		notes = s.applyLocked(fms, c, xids)
		s.stats.Commits++
	case ofwire.BundleDiscardRequest:
		delete(c.bundles, bc.BundleID)
	}
	s.mu.Unlock()
	// The switch reports a change before it answers the request that made
	// it (Open vSwitch flushes monitor updates first).
	notes.send()
	c.send(ofwire.AppendBundleControl(nil, h.XID, reply))
}

func (c *conn) multipart(h ofwire.Header, body []byte) {
	if len(body) < 8 {
		c.send(errorMessage(h.XID, ofp.ErrTypeBadRequest, ofp.ErrCodeBadRequestLen, raw(h, body)))
		return
	}
	switch typ := ofp.MultipartType(binary.BigEndian.Uint16(body)); typ {
	case ofp.MultipartTypeFlow:
		c.flowStats(h, body[8:])
	case ofp.MultipartTypeExperimenter:
		exp, expType, err := ofwire.ExperimenterType(body[8:])
		if err != nil || exp != ofwire.ONFExperimenterID || expType != ofwire.ONFTypeFlowMonitor {
			c.send(errorMessage(h.XID, ofp.ErrTypeBadRequest, ofp.ErrCodeBadRequestBadExperimenter, raw(h, body)))
			return
		}
		reqs, err := parseMonitorRequests(body[16:])
		if err != nil {
			c.send(errorMessage(h.XID, ofp.ErrTypeBadRequest, ofp.ErrCodeBadRequestLen, raw(h, body)))
			return
		}
		c.sw.mu.Lock()
		for _, r := range reqs {
			c.monitors[r.id] = r
			c.sw.stats.Monitors++
		}
		c.sw.mu.Unlock()
		c.send(multipartReply(h.XID, ofp.MultipartTypeExperimenter, false, flowMonitorBody()))
	default:
		c.send(errorMessage(h.XID, ofp.ErrTypeBadRequest, ofp.ErrCodeBadRequestBadMultipart, raw(h, body)))
	}
}

// flowStats answers OFPMP_FLOW (§7.3.5.2) in parts of at most 64 KiB.
func (c *conn) flowStats(h ofwire.Header, req []byte) {
	if len(req) < 32 {
		c.send(errorMessage(h.XID, ofp.ErrTypeBadRequest, ofp.ErrCodeBadRequestLen, nil))
		return
	}
	table := req[0]
	cookie, mask := binary.BigEndian.Uint64(req[16:]), binary.BigEndian.Uint64(req[24:])
	s := c.sw
	s.mu.Lock()
	s.stats.Dumps++
	var parts [][]byte
	var cur []byte
	for k, e := range s.table {
		if (table != uint8(ofp.TableAll) && k.table != table) || e.cookie&mask != cookie&mask {
			continue
		}
		cur = flowStatsEntry(cur, k, e)
		if len(cur) > 60<<10 {
			parts, cur = append(parts, cur), nil
		}
	}
	parts = append(parts, cur)
	s.mu.Unlock()
	msgs := make([][]byte, len(parts))
	for i, p := range parts {
		msgs[i] = multipartReply(h.XID, ofp.MultipartTypeFlow, i < len(parts)-1, p)
	}
	c.send(msgs...)
}
