package controller

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	of "github.com/netrack/openflow"

	"github.com/op25b/op25b/controller/ofwire"
)

// ErrSessionClosed is returned by requests on a session whose connection is gone.
var ErrSessionClosed = errors.New("openflow session closed")

// ErrRequestTimeout is returned when a switch does not answer within
// Config.RequestTimeout.
var ErrRequestTimeout = errors.New("openflow request timed out")

// sessionBufferBytes sizes each session's read and write buffers. Bulk
// transfers bypass them (bufio reads a multipart part, and writes an
// encoded batch of flow-mods, straight between the caller's slice and the
// socket when it is larger than the buffer), so they only gather small
// messages; and a replica holds a session to every bridge of its PoPs: a
// thousand sessions at 256 KiB per buffer were half a GiB.
const sessionBufferBytes = 8 << 10

// maxMultipartBytes bounds one reassembled multipart reply, so a switch
// that never clears REPLY_MORE cannot exhaust memory. 100k op25b flows are
// ~7 MB; this leaves a wide margin.
const maxMultipartBytes = 512 << 20

// session is one OpenFlow 1.3 connection. One goroutine (readLoop) reads;
// writes are serialised by wmu. Replies are routed to their caller by xid
// (OpenFlow 1.3 §6.2: a reply carries the request's xid).
type session struct {
	conn    net.Conn
	logp    atomic.Pointer[slog.Logger] // gains dpid=… after FEATURES
	timeout time.Duration

	wmu sync.Mutex
	w   *bufio.Writer

	xid      atomic.Uint32
	lastSeen atomic.Int64 // unix nanoseconds of the last message received

	mu      sync.Mutex
	pending map[uint32]*call
	batches []*batch

	echoReplies chan []byte // reader → keepalive; the reader never writes
	done        chan struct{}
	closeOnce   sync.Once
	closeErr    error

	ofErrors atomic.Uint64
	protoLog logLimiter // rate of the protocol-problem warnings (ratelog.go)

	mon *monitorQueue // flow-monitor notifications for the worker (monitor.go)
	// monXID is the xid of the flow monitor request in flight, 0 if none
	// (monitorRefusal).
	monXID atomic.Uint32
	dumps  atomic.Uint64 // full flow dumps requested on this connection

	// busy counts requests and batches in flight. A switch answers our
	// echo only after everything sent before it (messages are processed in
	// order), so while a 100k-message batch is being worked through its
	// silence is expected; the request's own timeout bounds that wait.
	busy atomic.Int32
}

// call is one request waiting for its reply.
type call struct {
	done  chan struct{}
	hdr   ofwire.Header
	body  []byte
	parts [][]byte
	size  int
	err   error
	// monSeq is the flow-monitor sequence number reached when the reply
	// completed (monitorQueue.settled).
	monSeq uint64
}

// batch collects the errors of a range of pipelined messages [lo, hi]
// (bundle adds or plain flow-mods) until the barrier behind them returns.
type batch struct {
	lo, hi uint32
	errs   []*ofwire.Error
}

func newSession(conn net.Conn, log *slog.Logger, timeout time.Duration) *session {
	s := &session{
		conn:        conn,
		timeout:     timeout,
		w:           bufio.NewWriterSize(conn, sessionBufferBytes),
		pending:     make(map[uint32]*call),
		echoReplies: make(chan []byte, 16),
		done:        make(chan struct{}),
		mon:         newMonitorQueue(),
	}
	s.lastSeen.Store(time.Now().UnixNano())
	s.logp.Store(log)
	return s
}

func (s *session) logger() *slog.Logger     { return s.logp.Load() }
func (s *session) setLogger(l *slog.Logger) { s.logp.Store(l) }

// nextXID returns a fresh xid; xid 0 is never used so "no xid" stays
// recognisable in error data.
func (s *session) nextXID() uint32 {
	for {
		if x := s.xid.Add(1); x != 0 {
			return x
		}
	}
}

// reserveXIDs returns the first of n consecutive xids.
func (s *session) reserveXIDs(n int) uint32 {
	for {
		hi := s.xid.Add(uint32(n))
		lo := hi - uint32(n) + 1
		if lo != 0 && lo <= hi { // no wrap-around inside the range
			return lo
		}
	}
}

// contain is deferred at the top of each of a session's goroutines. A bug
// that panics while handling one switch ends that switch's session only:
// the connection closes with the flows left on the switch, the switch
// reconnects and is reconciled, and the daemon keeps serving every other
// bridge. Without it a panic in any session goroutine kills the process.
func (s *session) contain(where string) {
	if r := recover(); r != nil {
		s.logger().Error("bug: panic in a switch session; closing it, flows stay on the switch",
			"in", where, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
		s.close(fmt.Errorf("panic in %s: %v", where, r))
	}
}

// close tears the connection down once; pending callers get err.
func (s *session) close(err error) {
	s.closeOnce.Do(func() {
		s.closeErr = err
		_ = s.conn.Close()
		close(s.done)
	})
}

func (s *session) err() error {
	select {
	case <-s.done:
		if s.closeErr != nil {
			return fmt.Errorf("%w: %v", ErrSessionClosed, s.closeErr)
		}
		return ErrSessionClosed
	default:
		return nil
	}
}

// write sends pre-encoded messages under the write lock with a deadline,
// so a switch that stops reading cannot wedge the session forever.
func (s *session) write(msgs ...[]byte) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	_ = s.conn.SetWriteDeadline(time.Now().Add(s.timeout))
	for _, m := range msgs {
		if _, err := s.w.Write(m); err != nil {
			s.close(err)
			return fmt.Errorf("write: %w", err)
		}
	}
	if err := s.w.Flush(); err != nil {
		s.close(err)
		return fmt.Errorf("write: %w", err)
	}
	return nil
}

// writeMany encodes n messages with encode (given consecutive xids from
// first) straight into the buffered writer.
func (s *session) writeMany(first uint32, n int, encode func(b []byte, xid uint32, i int) []byte) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	scratch := make([]byte, 0, 64<<10)
	for i := 0; i < n; i++ {
		scratch = encode(scratch, first+uint32(i), i)
		if len(scratch) >= 48<<10 || i == n-1 {
			_ = s.conn.SetWriteDeadline(time.Now().Add(s.timeout))
			if _, err := s.w.Write(scratch); err != nil {
				s.close(err)
				return fmt.Errorf("write: %w", err)
			}
			scratch = scratch[:0]
		}
	}
	if err := s.w.Flush(); err != nil {
		s.close(err)
		return fmt.Errorf("write: %w", err)
	}
	return nil
}

// request sends msg (whose xid is xid) and waits for the reply routed to xid.
// An OFPT_ERROR for that xid is returned as *ofwire.Error.
func (s *session) request(ctx context.Context, xid uint32, msg []byte) (*call, error) {
	c := s.expect(xid)
	defer s.forget(xid)
	if err := s.write(msg); err != nil {
		return nil, err
	}
	return s.wait(ctx, xid, c)
}

// expect registers a pending reply for xid before its request is written,
// so a fast reply cannot arrive unrouted. Pair with forget.
func (s *session) expect(xid uint32) *call {
	s.busy.Add(1)
	c := &call{done: make(chan struct{})}
	s.mu.Lock()
	s.pending[xid] = c
	s.mu.Unlock()
	return c
}

func (s *session) forget(xid uint32) {
	s.mu.Lock()
	delete(s.pending, xid)
	s.mu.Unlock()
	s.busy.Add(-1)
}

// wait blocks until c completes, the session dies, ctx ends or the
// request timeout passes.
func (s *session) wait(ctx context.Context, xid uint32, c *call) (*call, error) {
	timer := time.NewTimer(s.timeout)
	defer timer.Stop()
	select {
	case <-c.done:
		return c, c.err
	case <-s.done:
		return nil, s.err()
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-timer.C:
		return nil, fmt.Errorf("xid %d: %w after %s", xid, ErrRequestTimeout, s.timeout)
	}
}

func (s *session) addBatch(lo uint32, n int) *batch {
	b := &batch{lo: lo, hi: lo + uint32(n) - 1}
	s.busy.Add(1)
	s.mu.Lock()
	s.batches = append(s.batches, b)
	s.mu.Unlock()
	return b
}

// endBatch unregisters b and returns the errors collected for it. Call it
// only after a barrier behind the batch has returned: OVS processes messages
// in order and sends their errors before the barrier reply (§6.2).
func (s *session) endBatch(b *batch) []*ofwire.Error {
	s.busy.Add(-1)
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, x := range s.batches {
		if x == b {
			s.batches = append(s.batches[:i], s.batches[i+1:]...)
			break
		}
	}
	return b.errs
}

// barrier waits until the switch has processed everything sent before it.
func (s *session) barrier(ctx context.Context) error {
	xid := s.nextXID()
	_, err := s.request(ctx, xid, ofwire.AppendBarrierRequest(nil, xid))
	if err != nil {
		return fmt.Errorf("barrier: %w", err)
	}
	return nil
}

// readLoop is the only reader of the connection. It returns when the
// connection fails or a message breaks the framing; it never blocks on
// writes (echo replies go through echoReplies).
func (s *session) readLoop(r *bufio.Reader) {
	for {
		h, body, err := ofwire.ReadMessage(r)
		if err != nil {
			s.close(fmt.Errorf("read: %w", err))
			return
		}
		s.lastSeen.Store(time.Now().UnixNano())
		if h.Version != ofwire.Version13 {
			if s.monitorRefusal(h, body) {
				continue
			}
			s.logger().Warn("message with wrong OpenFlow version, closing", "version", h.Version, "type", h.Type)
			s.close(fmt.Errorf("message version %#x, want %#x", h.Version, ofwire.Version13))
			return
		}
		s.dispatch(h, body)
	}
}

func (s *session) dispatch(h ofwire.Header, body []byte) {
	switch h.Type {
	case of.TypeEchoRequest:
		select {
		case s.echoReplies <- ofwire.AppendEchoReply(nil, h.XID, body):
		default: // a flood of echoes: dropping one is harmless, the next one is answered
		}
	case of.TypeError:
		e, err := ofwire.ParseError(h, body)
		if err != nil {
			s.protoWarn("malformed error message ignored", "xid", h.XID, "err", err)
			return
		}
		s.ofErrors.Add(1)
		s.routeError(e)
	case of.TypeMultipartReply:
		part, err := ofwire.ParseMultipartReply(body)
		if err == nil && h.XID == 0 && ofwire.IsFlowMonitorReply(part) {
			// A flow-monitor notification: unsolicited, always xid 0.
			if err := s.mon.notify(part.Body); err != nil {
				s.protoWarn("undecodable flow monitor notification; a full audit follows", "err", err)
			}
			return
		}
		s.mu.Lock()
		c := s.pending[h.XID]
		if c == nil {
			s.mu.Unlock()
			s.logger().Debug("unsolicited multipart reply ignored", "xid", h.XID)
			return
		}
		switch {
		case err != nil:
			c.err = err
		case c.size+len(part.Body) > maxMultipartBytes:
			c.err = fmt.Errorf("multipart reply over %d bytes", maxMultipartBytes)
		default:
			c.parts = append(c.parts, part.Body)
			c.size += len(part.Body)
			if part.More() {
				s.mu.Unlock()
				return
			}
		}
		delete(s.pending, h.XID)
		s.mu.Unlock()
		c.monSeq = s.mon.mark()
		close(c.done)
	case of.TypeExperiment:
		if exp, typ, err := ofwire.ExperimenterType(body); err == nil && exp == ofwire.ONFExperimenterID && h.XID == 0 {
			switch typ {
			case ofwire.ONFTypeFlowMonitorPaused:
				s.logger().Info("switch paused flow monitoring: its queue of notifications for us is full")
				s.mon.pause()
				return
			case ofwire.ONFTypeFlowMonitorResumed:
				s.logger().Info("switch resumed flow monitoring")
				s.mon.resume()
				return
			}
		}
		s.complete(h, body, nil)
	case of.TypeEchoReply, of.TypeBarrierReply, of.TypeRoleReply, of.TypeFeaturesReply:
		s.complete(h, body, nil)
	default:
		// PACKET_IN, PORT_STATUS, FLOW_REMOVED...: op25b installs no
		// controller actions and asks for no removals; nothing to do.
	}
}

func (s *session) complete(h ofwire.Header, body []byte, err error) {
	s.mu.Lock()
	c := s.pending[h.XID]
	if c != nil {
		delete(s.pending, h.XID)
	}
	s.mu.Unlock()
	if c == nil {
		return
	}
	c.hdr, c.body, c.err = h, body, err
	close(c.done)
}

func (s *session) routeError(e *ofwire.Error) {
	s.mu.Lock()
	if c := s.pending[e.XID]; c != nil {
		delete(s.pending, e.XID)
		s.mu.Unlock()
		c.err = e
		close(c.done)
		return
	}
	for _, b := range s.batches {
		if e.XID-b.lo <= b.hi-b.lo {
			b.errs = append(b.errs, e)
			s.mu.Unlock()
			return
		}
	}
	s.mu.Unlock()
	s.protoWarn("openflow error for no pending request", "xid", e.XID, "type", e.TypeName(), "code", e.CodeName())
}

// keepalive answers the switch's echoes, sends our own every echoInterval
// and closes the session when nothing arrived for deadTimeout (OpenFlow
// 1.3 §6.3.2: echo is the liveness check).
func (s *session) keepalive(ctx context.Context, echoInterval, deadTimeout time.Duration) {
	tick := time.NewTicker(echoInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.done:
			return
		case m := <-s.echoReplies:
			if err := s.write(m); err != nil {
				return
			}
		case <-tick.C:
			idle := time.Since(time.Unix(0, s.lastSeen.Load()))
			if idle > deadTimeout && s.busy.Load() == 0 {
				s.logger().Warn("switch silent, closing session", "idle", idle.Round(time.Millisecond))
				s.close(fmt.Errorf("no message for %s", idle.Round(time.Millisecond)))
				return
			}
			xid := s.nextXID()
			if err := s.write(ofwire.AppendEchoRequest(nil, xid, nil)); err != nil {
				return
			}
		}
	}
}
