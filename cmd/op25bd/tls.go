package main

import (
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"

	"github.com/op25b/op25b/api"
	"github.com/op25b/op25b/internal/tlsconfig"
)

// certificates holds the TLS material of each channel; nil means plain TCP.
type certificates struct {
	openflow, api, etcd *tlsconfig.Holder
}

// loadCertificates reads every configured certificate, key and CA once,
// refusing keys readable by group or others.
func loadCertificates(o options) (certificates, error) {
	var c certificates
	var err error
	if o.OpenFlowTLS.Set() {
		if c.openflow, err = tlsconfig.Load(o.OpenFlowTLS, true); err != nil {
			return c, fmt.Errorf("openflow TLS: %w", err)
		}
	}
	if o.APITLS.Set() {
		if c.api, err = tlsconfig.Load(o.APITLS, true); err != nil {
			return c, fmt.Errorf("api TLS: %w", err)
		}
	}
	if o.EtcdTLS.Set() {
		if c.etcd, err = tlsconfig.Load(o.EtcdTLS, false); err != nil {
			return c, fmt.Errorf("etcd TLS: %w", err)
		}
	}
	return c, nil
}

// reloaders lists what SIGHUP re-reads. New TLS connections use reloaded
// material; established ones (switch sessions, etcd streams) are kept.
func (c certificates) reloaders(tokens *api.TokenFile) []reloadable {
	var r []reloadable
	if tokens != nil {
		r = append(r, reloadable{"token file", tokens.Reload})
	}
	for _, h := range []struct {
		name string
		h    *tlsconfig.Holder
	}{{"openflow certificates", c.openflow}, {"api certificates", c.api}, {"etcd certificates", c.etcd}} {
		if h.h != nil {
			r = append(r, reloadable{h.name, h.h.Reload})
		}
	}
	return r
}

// limitListener serves at most n connections at once: Accept waits while n
// are open, so a flood of idle connections costs n goroutines, each closed
// by the HTTP server's timeouts, and later clients wait in the backlog
// instead of being refused.
func limitListener(ln net.Listener, n int, logger *slog.Logger) net.Listener {
	return &limitedListener{Listener: ln, slots: make(chan struct{}, n), done: make(chan struct{}), log: logger}
}

type limitedListener struct {
	net.Listener
	log       *slog.Logger
	slots     chan struct{}
	atLimit   atomic.Bool
	closeOnce sync.Once
	done      chan struct{}
}

func (l *limitedListener) Accept() (net.Conn, error) {
	select {
	case l.slots <- struct{}{}:
		l.atLimit.Store(false)
	default:
		if !l.atLimit.Swap(true) { // once per episode, not per waiting client
			l.log.Warn("api connection limit reached; accepting again when a connection ends", "max_connections", cap(l.slots))
		}
		select {
		case l.slots <- struct{}{}:
		case <-l.done:
			return nil, net.ErrClosed
		}
	}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.slots
		return nil, err
	}
	return &limitedConn{Conn: c, release: func() { <-l.slots }}, nil
}

func (l *limitedListener) Close() error {
	l.closeOnce.Do(func() { close(l.done) })
	return l.Listener.Close()
}

type limitedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
