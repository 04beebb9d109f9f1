package controller

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/op25b/op25b/controller/ofwire"
)

// failingListener fails every Accept once failing is set, the way a
// listener out of file descriptors does (not a timeout).
type failingListener struct {
	net.Listener
	failing atomic.Bool
}

func (l *failingListener) Accept() (net.Conn, error) {
	if l.failing.Load() {
		return nil, errors.New("too many open files (test)")
	}
	return l.Listener.Accept()
}

// TestServeEndsEveryGoroutine: however Serve ends, cancelled or on an
// Accept error, it returns only after every goroutine it started has
// ended: the listener's closer, each session's reader, keepalive, worker
// and handshake guard, a session that is established and one still
// waiting for HELLO. (On an Accept error Serve used to wait for the
// sessions without ending them.)
func TestServeEndsEveryGoroutine(t *testing.T) {
	for _, how := range []string{"cancel", "accept error"} {
		t.Run(how, func(t *testing.T) {
			before := goleak.IgnoreCurrent()
			inner, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			ln := &failingListener{Listener: inner}
			c := New(Config{Logger: testLogger(t), RequestTimeout: time.Minute, AuditInterval: time.Hour})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			served := make(chan error, 1)
			go func() { served <- c.Serve(ctx, ln) }()

			fs := dialFake(t, inner.Addr().String(), 0x5d, ofwire.Version13)
			go fs.serve()
			waitFor(t, "switch connected", func() bool { return len(c.Connected()) == 1 })
			mute, err := net.Dial("tcp", inner.Addr().String()) // never says HELLO
			if err != nil {
				t.Fatal(err)
			}
			defer mute.Close()

			switch how {
			case "cancel":
				cancel()
			case "accept error":
				// Serve sits in Accept (or is about to): one more connection
				// wakes it, and the Accept after that fails. The dial may
				// fail if Serve already returned and closed the listener.
				ln.failing.Store(true)
				if wake, err := net.Dial("tcp", inner.Addr().String()); err == nil {
					defer wake.Close()
				}
			}
			select {
			case err := <-served:
				if how == "cancel" && err != nil || how == "accept error" && (err == nil || !strings.Contains(err.Error(), "too many open files")) {
					t.Fatalf("Serve returned %v", err)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("Serve did not return")
			}
			<-fs.done // the controller closed the switch's connection
			goleak.VerifyNone(t, before)
		})
	}
}
