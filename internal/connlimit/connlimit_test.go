package connlimit

import (
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

// harness accepts in a goroutine and hands the accepted connections over.
type harness struct {
	t        *testing.T
	l        *Listener
	accepted chan *Conn
	errs     chan error
}

func newHarness(t *testing.T, cfg Config) *harness {
	t.Helper()
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, l: New(inner, cfg), accepted: make(chan *Conn, 100), errs: make(chan error, 1)}
	go func() {
		for {
			c, err := h.l.Accept()
			if err != nil {
				h.errs <- err
				return
			}
			h.accepted <- c.(*Conn)
		}
	}()
	t.Cleanup(func() { h.l.Close() })
	return h
}

// dial connects from a given loopback source address (127.0.0.0/8 is all
// local on Linux, so each is a distinct client).
func (h *harness) dial(from string) net.Conn {
	h.t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", h.l.Addr().String())
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { c.Close() })
	return c
}

func (h *harness) next() *Conn {
	h.t.Helper()
	select {
	case c := <-h.accepted:
		h.t.Cleanup(func() { c.Close() })
		return c
	case <-time.After(10 * time.Second):
		h.t.Fatal("no connection accepted")
		return nil
	}
}

func (h *harness) none() {
	h.t.Helper()
	select {
	case c := <-h.accepted:
		h.t.Fatalf("unexpected connection from %v (reserved %v)", c.RemoteAddr(), c.Reserved())
	case <-time.After(200 * time.Millisecond): // absence cannot be proven; a short look
	}
}

// closedByServer reports whether the server side closed c (EOF or reset).
func closedByServer(c net.Conn) bool {
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := c.Read(make([]byte, 1))
	var ne net.Error
	return err != nil && !(errors.As(err, &ne) && ne.Timeout())
}

func TestPerClientCap(t *testing.T) {
	h := newHarness(t, Config{PerClient: 2})
	h.dial("127.0.0.1")
	h.dial("127.0.0.1")
	a, b := h.next(), h.next()
	if a.Reserved() || b.Reserved() {
		t.Fatal("connections within the cap are reserved")
	}
	third := h.dial("127.0.0.1")
	if !closedByServer(third) {
		t.Fatal("a third connection from one client was not closed")
	}
	h.none()
	h.dial("127.0.0.2") // another client is not affected
	if c := h.next(); c.Reserved() {
		t.Fatal("another client's connection is reserved")
	}
	a.Close()
	a.Close() // a second Close must not free a second slot
	h.dial("127.0.0.1")
	h.next()
	if s := h.l.Stats(); s.Normal != 3 || s.Refused != 1 {
		t.Fatalf("stats %+v, want 3 normal and 1 refused", s)
	}
	h.dial("127.0.0.1")
	h.none()
}

func TestReserveEvictsIdleAndEnforcesItsDeadline(t *testing.T) {
	h := newHarness(t, Config{Max: 1, Reserve: 1, ReserveDeadline: 500 * time.Millisecond})
	h.dial("127.0.0.1")
	if h.next().Reserved() {
		t.Fatal("first connection reserved")
	}
	idle := h.dial("127.0.0.2")
	r1 := h.next()
	if !r1.Reserved() {
		t.Fatal("connection over the total cap is not reserved")
	}
	// A new connection replaces the idle reserved one.
	prober := h.dial("127.0.0.3")
	if _, err := prober.Write([]byte("GET /healthz")); err != nil {
		t.Fatal(err)
	}
	r2 := h.next()
	if !r2.Reserved() {
		t.Fatal("second over-cap connection is not reserved")
	}
	if !closedByServer(idle) {
		t.Fatal("the idle reserved connection was not evicted")
	}
	buf := make([]byte, 12)
	if _, err := io.ReadFull(r2, buf); err != nil || string(buf) != "GET /healthz" {
		t.Fatalf("reserved read: %q %v", buf, err)
	}
	// The reserved connection's life is bounded whatever deadline its
	// user sets (net/http sets its own).
	_ = r2.SetReadDeadline(time.Time{})
	start := time.Now()
	_, err := r2.Read(buf)
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("read past the reserve deadline: %v, want a timeout", err)
	}
	if waited := time.Since(start); waited > 5*time.Second {
		t.Fatalf("reserve deadline enforced after %v", waited)
	}
	// The active (not idle) reserved connection is not evicted: with the
	// reserve full of active connections, Accept waits.
	h.dial("127.0.0.4")
	h.none()
	r2.Close()
	if c := h.next(); !c.Reserved() {
		t.Fatal("connection after the reserve freed up is not reserved")
	}
	if s := h.l.Stats(); s.Evicted != 1 || s.ReservedServed != 3 {
		t.Fatalf("stats %+v", s)
	}
}

func TestNoReserveRefusesOverTheCap(t *testing.T) {
	h := newHarness(t, Config{PerClient: 1})
	h.dial("127.0.0.1")
	h.next()
	if c := h.dial("127.0.0.1"); !closedByServer(c) {
		t.Fatal("over-cap connection not closed without a reserve")
	}
}

func TestCloseUnblocksAccept(t *testing.T) {
	h := newHarness(t, Config{Max: 1})
	h.dial("127.0.0.1")
	h.next()
	h.dial("127.0.0.1") // waits: total cap reached, no reserve
	h.none()
	if err := h.l.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-h.errs:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Accept after Close: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not unblock Accept")
	}
}

func TestConnContext(t *testing.T) {
	normal := &Conn{}
	reserved := &Conn{reserved: true}
	if Reserved(ConnContext(context.Background(), normal)) || !Reserved(ConnContext(context.Background(), reserved)) {
		t.Fatal("ConnContext does not carry the reserved flag")
	}
}
