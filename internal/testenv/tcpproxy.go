package testenv

import (
	"io"
	"net"
	"sync"
	"testing"
)

// ProxyMode is what a TCPProxy does with the bytes and connections it sees.
type ProxyMode int

// Proxy modes.
const (
	// ProxyForward copies bytes both ways: a healthy network.
	ProxyForward ProxyMode = iota
	// ProxyBlackhole is a partition that drops packets: open connections
	// stay open but go silent in both directions, and new connections are
	// accepted (so a client sees no error) but never reach the target.
	// Nothing is answered, nothing is reset: the peers only notice through
	// their own timeouts (gRPC keepalive, lease deadlines), as on a real
	// network where a router drops everything.
	ProxyBlackhole
	// ProxyRefuse is a partition that answers: open connections are closed
	// and new ones are closed as soon as they are accepted.
	ProxyRefuse
)

func (m ProxyMode) String() string {
	switch m {
	case ProxyForward:
		return "forward"
	case ProxyBlackhole:
		return "blackhole"
	case ProxyRefuse:
		return "refuse"
	}
	return "unknown"
}

// TCPProxy is a loopback TCP proxy in front of one target that a test can
// cut (SetMode), to partition one client from a server while everything
// else keeps talking to the server directly.
type TCPProxy struct {
	// Addr is the proxy's "127.0.0.1:PORT": dial it instead of the target.
	Addr string

	target string
	ln     net.Listener
	wg     sync.WaitGroup

	mu     sync.Mutex
	mode   ProxyMode
	conns  map[*proxiedConn]struct{}
	closed bool
}

// proxiedConn is one client connection and, unless it was accepted during a
// partition, its connection to the target. Bytes are forwarded only while
// the proxy is in ProxyForward mode and the connection was opened in it.
type proxiedConn struct {
	client, server net.Conn // server is nil for a blackholed connection
}

func (c *proxiedConn) close() {
	_ = c.client.Close()
	if c.server != nil {
		_ = c.server.Close()
	}
}

// NewTCPProxy listens on 127.0.0.1:0 and forwards every connection to target
// ("host:port") until the test ends.
func NewTCPProxy(t testing.TB, target string) *TCPProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("tcp proxy: %v", err)
	}
	p := &TCPProxy{Addr: ln.Addr().String(), target: target, ln: ln, conns: map[*proxiedConn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.Close)
	return p
}

// Mode returns the current mode.
func (p *TCPProxy) Mode() ProxyMode {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.mode
}

// SetMode switches the proxy. Entering ProxyRefuse closes every open
// connection. Returning to ProxyForward closes the connections that lived
// through a partition: bytes dropped meanwhile cannot be replayed, so those
// streams are broken, as TCP connections would be after a long partition;
// clients reconnect and get a fresh, forwarded connection.
func (p *TCPProxy) SetMode(m ProxyMode) {
	p.mu.Lock()
	defer p.mu.Unlock()
	prev := p.mode
	p.mode = m
	if m == ProxyRefuse || (m == ProxyForward && prev != ProxyForward) {
		for c := range p.conns {
			c.close()
			delete(p.conns, c)
		}
	}
}

// Close stops the proxy and closes every connection.
func (p *TCPProxy) Close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	_ = p.ln.Close()
	for c := range p.conns {
		c.close()
		delete(p.conns, c)
	}
	p.mu.Unlock()
	p.wg.Wait()
}

func (p *TCPProxy) accept() {
	defer p.wg.Done()
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return // listener closed
		}
		p.mu.Lock()
		mode, closed := p.mode, p.closed
		p.mu.Unlock()
		if closed || mode == ProxyRefuse {
			_ = client.Close()
			continue
		}
		c := &proxiedConn{client: client}
		if mode == ProxyForward {
			server, err := net.Dial("tcp", p.target)
			if err != nil {
				_ = client.Close()
				continue
			}
			c.server = server
		}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			c.close()
			return
		}
		p.conns[c] = struct{}{}
		p.mu.Unlock()
		if c.server == nil {
			// Blackholed: hold the socket open, read and drop what the
			// client sends (so its writes do not fail), answer nothing.
			p.wg.Add(1)
			go func() {
				defer p.wg.Done()
				_, _ = io.Copy(io.Discard, client)
				p.drop(c)
			}()
			continue
		}
		p.wg.Add(2)
		go p.pipe(c, c.server, c.client)
		go p.pipe(c, c.client, c.server)
	}
}

// pipe copies src to dst while the proxy forwards; in a blackhole it reads
// and drops. Either side ending ends the connection, except in a blackhole:
// there the other side is not told (a real partition loses the FIN too) and
// keeps its socket until the partition ends.
func (p *TCPProxy) pipe(c *proxiedConn, dst, src net.Conn) {
	defer p.wg.Done()
	buf := make([]byte, 32*1024)
	for {
		n, err := src.Read(buf)
		if n > 0 && p.Mode() == ProxyForward {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				p.drop(c)
				return
			}
		}
		if err != nil {
			if p.Mode() != ProxyBlackhole {
				p.drop(c)
			}
			return
		}
	}
}

func (p *TCPProxy) drop(c *proxiedConn) {
	c.close()
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
}
