package controller

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/op25b/op25b/controller/ofwire"
	"github.com/op25b/op25b/controller/ofwire/ofwiretest"
	"github.com/op25b/op25b/internal/testenv"
	"github.com/op25b/op25b/topology"
)

// dialFakeTLS connects a fake switch over TLS with cert and says HELLO.
func dialFakeTLS(t *testing.T, addr string, pki *testenv.PKI, cert testenv.CertFiles, dpid uint64) *fakeSwitch {
	t.Helper()
	conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pki.Pool(), ServerName: "127.0.0.1", Certificates: []tls.Certificate{cert.TLSCert(t)}})
	if err != nil {
		t.Fatal(err)
	}
	fs := &fakeSwitch{t: t, conn: conn, r: bufio.NewReader(conn), dpid: dpid, done: make(chan struct{})}
	t.Cleanup(func() { _ = conn.Close() })
	fs.send(ofwiretest.Hello(ofwire.Version13, 1, 0))
	go fs.serve()
	return fs
}

// Regression (issue 11, "Identity"): a second OpenFlow connection claiming
// a connected bridge's dpid took over its session, and under TLS nothing
// tied the certificate to the dpids it may claim. With the bridges
// registry's "cert" binding, a claim outside it is refused and logged, and
// the bridge's own session is kept.
func TestRegressionDatapathClaimTakesOverSession(t *testing.T) {
	pki := testenv.NewPKI(t, "ctl")
	srv := pki.Issue(t, "controller")
	legit := pki.Issue(t, "ovs-tokyo-1.example.net")
	rogue := pki.Issue(t, "ovs-rogue.example.net")
	doc := &topology.Document{Bridges: []topology.Bridge{
		{DPID: "0000000000000001", Name: "tokyo-1-sub-a", Pop: "tokyo-1", Cert: "ovs-tokyo-*.example.net"},
	}}
	h := &countingHandler{counts: map[string]int{}, attrs: map[string][]slog.Attr{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{srv.TLSCert(t)}, ClientCAs: pki.Pool(), ClientAuth: tls.RequireAndVerifyClientCert}
	c := New(Config{Logger: slog.New(h), RequestTimeout: time.Minute,
		AuthorizeDatapath: func(dpid topology.DPID, cert *x509.Certificate) error {
			return doc.CheckDatapathClaim(dpid, []string{cert.Subject.CommonName})
		}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Serve(ctx, tls.NewListener(ln, cfg)) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	status := func(dpid topology.DPID) BridgeStatus {
		for _, s := range c.Status() {
			if s.DPID == dpid {
				return s
			}
		}
		return BridgeStatus{}
	}

	legitSwitch := dialFakeTLS(t, ln.Addr().String(), pki, legit, 1)
	waitFor(t, "the bridge's own switch connected", func() bool { return status("0000000000000001").Connected })
	legitAddr := status("0000000000000001").RemoteAddr

	// The rogue certificate (same CA) claims the connected bridge's dpid.
	rogueSwitch := dialFakeTLS(t, ln.Addr().String(), pki, rogue, 1)
	waitClosed(t, rogueSwitch)
	if n, _ := h.matching("datapath claim refused"); n != 1 {
		t.Errorf("%d 'datapath claim refused' lines, want 1", n)
	}
	if st := status("0000000000000001"); !st.Connected || st.RemoteAddr != legitAddr {
		t.Fatalf("the bridge's session was taken over: %+v (was %s)", st, legitAddr)
	}
	select {
	case <-legitSwitch.done:
		t.Fatal("the bridge's own connection was closed")
	default:
	}
	// The bound certificate may not claim another dpid either.
	stray := dialFakeTLS(t, ln.Addr().String(), pki, legit, 0x99)
	waitClosed(t, stray)
	if st := status("0000000000000099"); st.Connected {
		t.Fatalf("a bound certificate claimed an unlisted dpid: %+v", st)
	}
	if n, _ := h.matching("datapath claim refused"); n != 2 {
		t.Errorf("%d 'datapath claim refused' lines, want 2", n)
	}
	// A reconnect of the bridge's own switch still replaces its session.
	again := dialFakeTLS(t, ln.Addr().String(), pki, legit, 1)
	waitClosed(t, legitSwitch)
	waitFor(t, "the reconnected switch holds the session", func() bool {
		st := status("0000000000000001")
		return st.Connected && st.RemoteAddr != legitAddr
	})
	_ = again
	if strings.Contains(status("0000000000000001").LastError, "refused") {
		t.Errorf("status carries the refusal: %+v", status("0000000000000001"))
	}
}
