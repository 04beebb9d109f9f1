package controller

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/op25b/op25b/controller/ofwire"
	"github.com/op25b/op25b/internal/testenv"
)

// waitEOF waits until the controller closes conn (a read returns an
// error that is not the test's own generous deadline).
func waitEOF(t *testing.T, conn net.Conn) {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(90 * time.Second))
	buf := make([]byte, 4096)
	for {
		_, err := conn.Read(buf)
		if err == nil {
			continue // the controller's HELLO
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatal("controller kept a silent connection open")
		}
		return
	}
}

// Silent peers that fill every connection slot are closed after the
// handshake timeout, so a real switch that arrives behind them is served.
func TestFakeSilentPeersBoundedByTimeoutAndLimit(t *testing.T) {
	rc := startController(t, Config{HandshakeTimeout: 300 * time.Millisecond, MaxConnections: 4})
	var idle []net.Conn
	for i := 0; i < 12; i++ {
		c, err := net.Dial("tcp", rc.addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		idle = append(idle, c)
	}
	connectFake(t, rc, 0x901, nil)
	for _, c := range idle {
		waitEOF(t, c)
	}
	// A peer that sends HELLO but never answers FEATURES is also bounded.
	fs := dialFake(t, rc.addr, 0x902, ofwire.Version13)
	fs.set(func(fs *fakeSwitch) { fs.silent = true })
	go fs.serve()
	waitClosed(t, fs)
	if rc.status(dpidString(0x902)).DPID != "" {
		t.Errorf("a peer that never answered FEATURES became a bridge")
	}
	if !rc.status(dpidString(0x901)).Connected {
		t.Errorf("the real switch lost its session")
	}
}

// With a TLS listener the handshake runs in the connection's goroutine
// under the handshake timeout: a peer that never sends a ClientHello is
// closed and does not block Accept for a switch with a valid certificate.
func TestFakeTLSSilentPeerDoesNotBlockAccept(t *testing.T) {
	pki := testenv.NewPKI(t, "ctl")
	srv := pki.Issue(t, "controller")
	sw := pki.Issue(t, "switch")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{srv.TLSCert(t)}, ClientCAs: pki.Pool(), ClientAuth: tls.RequireAndVerifyClientCert}
	c := New(Config{HandshakeTimeout: 500 * time.Millisecond, Logger: testLogger(t), RequestTimeout: time.Minute})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Serve(ctx, tls.NewListener(ln, cfg)) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})

	silent, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()

	conn, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{
		RootCAs: pki.Pool(), ServerName: "127.0.0.1", Certificates: []tls.Certificate{sw.TLSCert(t)},
	})
	if err != nil {
		t.Fatalf("TLS switch behind a silent peer: %v", err)
	}
	defer conn.Close()
	if _, err := conn.Write(ofwire.AppendHello(nil, 1)); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.ReadFull(conn, make([]byte, 8)); err != nil {
		t.Fatalf("no HELLO over TLS: %v", err)
	}
	waitEOF(t, silent)
}
