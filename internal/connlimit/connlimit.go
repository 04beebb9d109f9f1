// Package connlimit bounds the connections a listener serves: in total and
// per client address, with a small reserve of short-lived connections
// beyond both caps so that a saturated server still answers its health
// probes.
//
// It sits in front of op25bd's API listener (and, with only a per-client
// cap, its OpenFlow listener): a flood of idle or slow connections from one
// address cannot take every slot, and a flood from many addresses cannot
// stop /healthz, /readyz and /metrics from being answered. Which paths a
// reserved connection may use is the HTTP handler's decision (Reserved
// tells it); this package only counts, classifies and enforces deadlines.
package connlimit

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Config sets the caps. Zero values disable the cap they name.
type Config struct {
	// Max is how many connections are served at once (0: no total cap).
	Max int
	// PerClient is how many of them one client IP may hold (0: no cap).
	PerClient int
	// Reserve is how many connections may be open beyond Max or
	// PerClient, each for at most ReserveDeadline and (the handler's
	// business) only for health paths. When the reserve is full a new
	// connection takes the place of the oldest reserved one that has not
	// sent a byte yet: an idle flood cannot keep a prober out, and a
	// prober sends its request at once.
	Reserve int
	// ReserveDeadline bounds a reserved connection's whole life (TLS
	// handshake, request, answer); default 2s.
	ReserveDeadline time.Duration
	// Name says which listener logs ("api", "openflow").
	Name   string
	Logger *slog.Logger
}

// Listener enforces a Config on the connections of an inner listener.
// When the total cap and the reserve are both full, Accept waits (new
// clients wait in the kernel's backlog) until a connection ends.
type Listener struct {
	net.Listener
	cfg Config
	log *slog.Logger

	mu       sync.Mutex
	normal   int
	perIP    map[string]int
	reserved []*Conn // oldest first
	freed    chan struct{}

	// Counters for logs and tests.
	refused        atomic.Uint64
	evicted        atomic.Uint64
	reservedServed atomic.Uint64
	lastWarn       atomic.Int64 // unix nanoseconds of the last limit warning

	closeOnce sync.Once
	done      chan struct{}
}

// New wraps ln.
func New(ln net.Listener, cfg Config) *Listener {
	if cfg.ReserveDeadline <= 0 {
		cfg.ReserveDeadline = 2 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Name == "" {
		cfg.Name = "listener"
	}
	return &Listener{Listener: ln, cfg: cfg, log: cfg.Logger.With("listener", cfg.Name),
		perIP: map[string]int{}, freed: make(chan struct{}, 1), done: make(chan struct{})}
}

// Stats is what the listener has done so far.
type Stats struct {
	Normal, Reserved int    // open now
	Refused          uint64 // closed at once: over a cap with no reserve left
	Evicted          uint64 // idle reserved connections replaced by newer ones
	ReservedServed   uint64 // connections given a reserved slot
}

// Stats returns the current counts.
func (l *Listener) Stats() Stats {
	l.mu.Lock()
	defer l.mu.Unlock()
	return Stats{Normal: l.normal, Reserved: len(l.reserved), Refused: l.refused.Load(),
		Evicted: l.evicted.Load(), ReservedServed: l.reservedServed.Load()}
}

// full reports whether a new connection could get neither a normal slot
// (ignoring its address, unknown yet) nor a reserved one. l.mu held.
func (l *Listener) full() bool {
	normalFull := l.cfg.Max > 0 && l.normal >= l.cfg.Max
	if !normalFull {
		return false
	}
	if len(l.reserved) < l.cfg.Reserve {
		return false
	}
	for _, c := range l.reserved {
		if !c.active.Load() {
			return false // an idle one can be evicted
		}
	}
	return true
}

// Accept returns the next connection within the caps. Connections over
// them are given a reserved slot (Reserved reports it) or closed at once.
func (l *Listener) Accept() (net.Conn, error) {
	for {
		l.mu.Lock()
		full := l.full()
		l.mu.Unlock()
		if full {
			select {
			case <-l.freed:
				continue
			case <-l.done:
				return nil, net.ErrClosed
			case <-time.After(l.cfg.ReserveDeadline / 4):
				continue // a reserved connection may have gone idle-evictable
			}
		}
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if conn := l.admit(c); conn != nil {
			return conn, nil
		}
	}
}

func clientIP(c net.Conn) string {
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		return a.IP.String()
	}
	host, _, err := net.SplitHostPort(c.RemoteAddr().String())
	if err != nil {
		return c.RemoteAddr().String()
	}
	return host
}

// admit classifies a new connection: normal, reserved, or refused (nil).
// A connection that finds the reserve full of active connections waits
// for one to end, at most ReserveDeadline (as long as any of them lives),
// then is refused.
func (l *Listener) admit(c net.Conn) *Conn {
	ip := clientIP(c)
	giveUp := time.Now().Add(l.cfg.ReserveDeadline)
	for {
		conn, wait := l.tryAdmit(c, ip, time.Now().After(giveUp))
		if !wait {
			return conn
		}
		select {
		case <-l.freed:
		case <-time.After(time.Until(giveUp) / 4):
		case <-l.done:
			_ = c.Close()
			return nil
		}
	}
}

// tryAdmit admits c or, when only a full reserve stands in the way and
// final is false, asks the caller to wait.
func (l *Listener) tryAdmit(c net.Conn, ip string, final bool) (conn *Conn, wait bool) {
	l.mu.Lock()
	totalOK := l.cfg.Max <= 0 || l.normal < l.cfg.Max
	clientOK := l.cfg.PerClient <= 0 || l.perIP[ip] < l.cfg.PerClient
	if totalOK && clientOK {
		l.normal++
		l.perIP[ip]++
		l.mu.Unlock()
		return &Conn{Conn: c, l: l, ip: ip}, false
	}
	var victim *Conn
	if l.cfg.Reserve > 0 && len(l.reserved) >= l.cfg.Reserve {
		for _, r := range l.reserved {
			if !r.active.Load() {
				victim = r
				break
			}
		}
	}
	if l.cfg.Reserve <= 0 || len(l.reserved) >= l.cfg.Reserve && victim == nil {
		l.mu.Unlock()
		if l.cfg.Reserve > 0 && !final {
			return nil, true
		}
		l.refused.Add(1)
		l.warnLimit(ip, totalOK, "refusing connections beyond the caps and the reserve")
		_ = c.Close()
		return nil, false
	}
	if victim != nil {
		l.removeReserved(victim)
	}
	deadline := time.Now().Add(l.cfg.ReserveDeadline)
	rc := &Conn{Conn: c, l: l, ip: ip, reserved: true, deadline: deadline}
	l.reserved = append(l.reserved, rc)
	l.mu.Unlock()
	if victim != nil {
		l.evicted.Add(1)
		_ = victim.Conn.Close() // its own Close finds it already removed
	}
	l.reservedServed.Add(1)
	l.warnLimit(ip, totalOK, "serving only the reserve beyond it")
	_ = c.SetDeadline(deadline)
	return rc, false
}

// warnLimit logs that a cap was reached at most once every 10 s: a flood
// must not become a flood of log lines. The message starts with
// "<name> connection limit reached", like the controller's.
func (l *Listener) warnLimit(ip string, totalOK bool, what string) {
	now := time.Now().UnixNano()
	last := l.lastWarn.Load()
	if now-last < int64(10*time.Second) || !l.lastWarn.CompareAndSwap(last, now) {
		return
	}
	which := "total"
	if totalOK {
		which = "per client"
	}
	l.log.Warn(l.cfg.Name+" connection limit reached ("+which+"); "+what+" (logged at most every 10s)", "client", ip,
		"max_connections", l.cfg.Max, "max_per_client", l.cfg.PerClient, "reserve", l.cfg.Reserve,
		"reserved_total", l.reservedServed.Load(), "refused_total", l.refused.Load())
}

// removeReserved drops c from the reserve list. l.mu held.
func (l *Listener) removeReserved(c *Conn) bool {
	for i, r := range l.reserved {
		if r == c {
			l.reserved = append(l.reserved[:i:i], l.reserved[i+1:]...)
			return true
		}
	}
	return false
}

func (l *Listener) release(c *Conn) {
	l.mu.Lock()
	if c.reserved {
		l.removeReserved(c)
	} else {
		l.normal--
		if l.perIP[c.ip]--; l.perIP[c.ip] <= 0 {
			delete(l.perIP, c.ip)
		}
	}
	l.mu.Unlock()
	select {
	case l.freed <- struct{}{}:
	default:
	}
}

// Close stops Accept and closes the inner listener; open connections stay.
func (l *Listener) Close() error {
	l.closeOnce.Do(func() { close(l.done) })
	return l.Listener.Close()
}

// Conn is a connection handed out by Listener.
type Conn struct {
	net.Conn
	l        *Listener
	ip       string
	reserved bool
	deadline time.Time   // reserved only: the end of its life
	active   atomic.Bool // it has sent at least one byte
	once     sync.Once
}

// Reserved reports whether c was accepted beyond the caps: the handler
// must serve only what the reserve is for, and close it after one answer.
func (c *Conn) Reserved() bool { return c.reserved }

func (c *Conn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 && !c.active.Load() {
		c.active.Store(true)
	}
	return n, err
}

// clamp keeps a reserved connection's deadlines within its life: net/http
// and crypto/tls set their own deadlines, which must not extend it.
func (c *Conn) clamp(t time.Time) time.Time {
	if c.reserved && (t.IsZero() || t.After(c.deadline)) {
		return c.deadline
	}
	return t
}

func (c *Conn) SetDeadline(t time.Time) error      { return c.Conn.SetDeadline(c.clamp(t)) }
func (c *Conn) SetReadDeadline(t time.Time) error  { return c.Conn.SetReadDeadline(c.clamp(t)) }
func (c *Conn) SetWriteDeadline(t time.Time) error { return c.Conn.SetWriteDeadline(c.clamp(t)) }

// Close closes the connection and frees its slot once.
func (c *Conn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.release(c) })
	return err
}

// Unwrap returns the underlying connection.
func (c *Conn) Unwrap() net.Conn { return c.Conn }

type reservedKey struct{}

// ConnContext is for http.Server.ConnContext: it records whether the
// connection (possibly inside TLS) holds a reserved slot.
func ConnContext(ctx context.Context, c net.Conn) context.Context {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	if lc, ok := c.(*Conn); ok && lc.reserved {
		return context.WithValue(ctx, reservedKey{}, true)
	}
	return ctx
}

// Reserved reports whether the request's connection holds a reserved slot
// (set by ConnContext).
func Reserved(ctx context.Context) bool {
	v, _ := ctx.Value(reservedKey{}).(bool)
	return v
}
