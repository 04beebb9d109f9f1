package controller

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/op25b/op25b/flows"
	"github.com/op25b/op25b/internal/testenv"
	"github.com/op25b/op25b/topology"
)

// testLogger writes to the test log only with -v, keeping CI output short.
func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() || os.Getenv("OP25B_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// eventLog records events for assertions.
type eventLog struct {
	mu     sync.Mutex
	events []Event
}

func (l *eventLog) add(e Event) {
	l.mu.Lock()
	l.events = append(l.events, e)
	l.mu.Unlock()
}

func (l *eventLog) count(kind EventKind) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, e := range l.events {
		if e.Kind == kind {
			n++
		}
	}
	return n
}

// runningController is a controller serving on 127.0.0.1:0 for one test.
type runningController struct {
	*Controller
	addr   string
	events *eventLog
	cancel context.CancelFunc
	done   chan error
}

func startController(t testing.TB, cfg Config) *runningController {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ev := &eventLog{}
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	if cfg.Events == nil {
		cfg.Events = ev.add
	}
	if cfg.RequestTimeout == 0 {
		cfg.RequestTimeout = 60 * time.Second
	}
	c := New(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	rc := &runningController{Controller: c, addr: ln.Addr().String(), events: ev, cancel: cancel, done: make(chan error, 1)}
	go func() { rc.done <- c.Serve(ctx, ln) }()
	t.Cleanup(rc.stop)
	return rc
}

// stop cancels Serve and waits for it (idempotent).
func (rc *runningController) stop() {
	rc.cancel()
	select {
	case err, ok := <-rc.done:
		if ok {
			close(rc.done)
			if err != nil {
				panic(fmt.Sprintf("Serve returned %v", err))
			}
		}
	case <-time.After(2 * time.Minute):
		panic("Serve did not return")
	}
}

// waitFor polls cond until it holds; generous deadline, no timing asserts.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	testenv.Eventually(t, 90*time.Second, what, cond)
}

func (rc *runningController) status(dpid topology.DPID) BridgeStatus {
	for _, st := range rc.Status() {
		if st.DPID == dpid {
			return st
		}
	}
	return BridgeStatus{}
}

func (rc *runningController) waitApplied(t testing.TB, dpid topology.DPID, rev int64) BridgeStatus {
	t.Helper()
	waitFor(t, fmt.Sprintf("%s applied revision %d", dpid, rev), func() bool {
		st := rc.status(dpid)
		return st.AppliedRevision >= rev && st.LastError == ""
	})
	return rc.status(dpid)
}

// dropFlows builds n distinct op25b drop flows in table 0 plus a
// catch-all forward: stand-ins for flows.Compile output at scale.
func dropFlows(n int, base netip.Addr) []flows.Flow {
	fs := make([]flows.Flow, 0, n+1)
	a := base
	for i := 0; i < n; i++ {
		m := flows.Match{EthType: flows.EthTypeIPv4, IPProto: flows.IPProtoTCP, TCPDst: 25, Src: netip.PrefixFrom(a, 32)}
		fs = append(fs, flows.Flow{Table: 0, Priority: 1000, Cookie: flows.CookieMarker | uint64(i+1), Match: m})
		a = a.Next()
	}
	fs = append(fs, flows.Flow{Table: 0, Priority: 0, Cookie: flows.CookieMarker | 0xffffffff, Actions: flows.Actions{Output: flows.PortNormal}})
	return fs
}

// pipelineFlows is a small multi-table policy exercising every match and
// instruction op25b writes (metadata, v4/v6 prefixes, goto, write_metadata).
func pipelineFlows() []flows.Flow {
	v4, v6 := flows.EthTypeIPv4, flows.EthTypeIPv6
	tcp := flows.IPProtoTCP
	normal := flows.Actions{Output: flows.PortNormal}
	ck := func(t, i uint64) uint64 { return flows.CookieMarker | t<<40 | i }
	return []flows.Flow{
		{Table: 0, Priority: 100, Cookie: ck(0, 1), Match: flows.Match{EthType: v4, IPProto: tcp, TCPDst: 25}, Actions: flows.Actions{Goto: true, GotoTable: 1}},
		{Table: 0, Priority: 100, Cookie: ck(0, 2), Match: flows.Match{EthType: v6, IPProto: tcp, TCPDst: 25}, Actions: flows.Actions{Goto: true, GotoTable: 1}},
		{Table: 0, Priority: 0, Cookie: ck(0, 3), Actions: normal},
		{Table: 1, Priority: 1016, Cookie: ck(1, 1), Match: flows.Match{EthType: v4, Src: netip.MustParsePrefix("10.1.0.0/16")},
			Actions: flows.Actions{WriteMetadata: 1<<32 | 1, WriteMetadataMask: ^uint64(0), Goto: true, GotoTable: 2}},
		{Table: 1, Priority: 1029, Cookie: ck(1, 2), Match: flows.Match{EthType: v4, Src: netip.MustParsePrefix("10.1.200.0/29")}, Actions: normal},
		{Table: 1, Priority: 1048, Cookie: ck(1, 3), Match: flows.Match{EthType: v6, Src: netip.MustParsePrefix("2001:db8:1::/48")},
			Actions: flows.Actions{WriteMetadata: 2<<32 | 2, WriteMetadataMask: ^uint64(0), Goto: true, GotoTable: 2}},
		{Table: 1, Priority: 0, Cookie: ck(1, 4), Actions: normal},
		{Table: 2, Priority: 3000, Cookie: ck(2, 1), Match: flows.Match{EthType: v4, Dst: netip.MustParsePrefix("192.0.2.25/32"), Metadata: 1, MetadataMask: 0xffffffff}, Actions: normal},
		{Table: 2, Priority: 2000, Cookie: ck(2, 2), Match: flows.Match{EthType: v4, Dst: netip.MustParsePrefix("198.51.100.0/24"), Metadata: 1, MetadataMask: 0xffffffff}, Actions: flows.Actions{Goto: true, GotoTable: 3}},
		{Table: 2, Priority: 1000, Cookie: ck(2, 3), Match: flows.Match{Metadata: 2, MetadataMask: 0xffffffff}, Actions: flows.Actions{Goto: true, GotoTable: 3}},
		{Table: 2, Priority: 0, Cookie: ck(2, 4), Actions: normal},
		{Table: 3, Priority: 100, Cookie: ck(3, 1), Match: flows.Match{Metadata: 1 << 32, MetadataMask: 0xffffffff00000000}},
		{Table: 3, Priority: 100, Cookie: ck(3, 2), Match: flows.Match{Metadata: 2 << 32, MetadataMask: 0xffffffff00000000}},
		{Table: 3, Priority: 0, Cookie: ck(3, 3)},
	}
}

// renderOfctl renders flows in ovs-ofctl add-flows syntax (used for the
// ovs-ofctl side of benchmarks; flows.RenderSet is the canonical one).
func renderOfctl(fs []flows.Flow) string {
	var sb strings.Builder
	for _, f := range fs {
		fmt.Fprintf(&sb, "table=%d,priority=%d,cookie=%#x", f.Table, f.Priority, f.Cookie)
		m := f.Match
		if m.EthType != 0 {
			fmt.Fprintf(&sb, ",dl_type=%#x", m.EthType)
		}
		if m.IPProto != 0 {
			fmt.Fprintf(&sb, ",nw_proto=%d", m.IPProto)
		}
		if m.Src.IsValid() {
			if m.Src.Addr().Is4() {
				fmt.Fprintf(&sb, ",nw_src=%s", m.Src)
			} else {
				fmt.Fprintf(&sb, ",ipv6_src=%s", m.Src)
			}
		}
		if m.Dst.IsValid() {
			if m.Dst.Addr().Is4() {
				fmt.Fprintf(&sb, ",nw_dst=%s", m.Dst)
			} else {
				fmt.Fprintf(&sb, ",ipv6_dst=%s", m.Dst)
			}
		}
		if m.TCPDst != 0 {
			fmt.Fprintf(&sb, ",tp_dst=%d", m.TCPDst)
		}
		if m.MetadataMask != 0 {
			fmt.Fprintf(&sb, ",metadata=%#x/%#x", m.Metadata, m.MetadataMask)
		}
		var acts []string
		a := f.Actions
		if a.Output == flows.PortNormal {
			acts = append(acts, "NORMAL")
		} else if a.Output != 0 {
			acts = append(acts, fmt.Sprintf("output:%d", a.Output))
		}
		if a.WriteMetadataMask != 0 {
			acts = append(acts, fmt.Sprintf("write_metadata:%#x/%#x", a.WriteMetadata, a.WriteMetadataMask))
		}
		if a.Goto {
			acts = append(acts, fmt.Sprintf("goto_table:%d", a.GotoTable))
		}
		if len(acts) == 0 {
			acts = append(acts, "drop")
		}
		fmt.Fprintf(&sb, " actions=%s\n", strings.Join(acts, ","))
	}
	return sb.String()
}

// ownedDump returns the bridge's op25b flows as ovs-ofctl prints them.
func ownedDump(t testing.TB, br testenv.Bridge) []string {
	t.Helper()
	out := br.Ofctl(t, "dump-flows", br.Name, fmt.Sprintf("cookie=%#x/%#x", flows.CookieMarker, flows.CookieMask))
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, "cookie=") {
			lines = append(lines, strings.TrimSpace(l))
		}
	}
	return lines
}
