package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/op25b/op25b/lab/soak"
)

// runProbe runs inside one lab host's network namespace: one loop per
// target, each a TCP connect from the host's address of the target's
// family, recorded as forward (connected), drop (timed out) or error.
func runProbe(args []string) error {
	fs := flag.NewFlagSet("probe", flag.ContinueOnError)
	host := fs.String("host", "", "lab host name")
	bridge := fs.String("bridge", "", "the bridge the host hangs off")
	pop := fs.String("pop", "", "the bridge's pop")
	src4 := fs.String("src4", "", "the host's IPv4 address")
	src6 := fs.String("src6", "", "the host's IPv6 address")
	targets := fs.String("targets", "", "comma-separated SERVER=IP:PORT ([IPv6]:PORT)")
	timeout := fs.Duration("timeout", 3*time.Second, "connect timeout: no answer within it is a drop")
	pause := fs.Duration("pause", time.Second, "pause between two probes of one target")
	out := fs.String("out", "", "JSON-lines file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	w, err := appendJSONLines(*out)
	if err != nil {
		return err
	}
	defer w.Close()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	var wg sync.WaitGroup
	for _, t := range strings.Split(*targets, ",") {
		server, addr, ok := strings.Cut(t, "=")
		ap, err := netip.ParseAddrPort(addr)
		if !ok || err != nil {
			return fmt.Errorf("target %q: want SERVER=IP:PORT", t)
		}
		src := *src4
		if ap.Addr().Is6() {
			src = *src6
		}
		if src == "" {
			continue
		}
		base := soak.Probe{Host: *host, Bridge: *bridge, Pop: *pop, Src: src, Dst: ap.Addr().String(), Server: server, Port: ap.Port()}
		wg.Add(1)
		go func() {
			defer wg.Done()
			d := net.Dialer{Timeout: *timeout, LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
			for ctx.Err() == nil {
				p := base
				p.Start = time.Now()
				conn, err := d.Dial("tcp", ap.String())
				p.End = time.Now()
				switch {
				case err == nil:
					p.Verdict = soak.Forwarded
					conn.Close()
				case isTimeout(err):
					p.Verdict = soak.Dropped
				default:
					p.Verdict, p.Detail = soak.Errored, err.Error()
				}
				w.add(p)
				select {
				case <-ctx.Done():
				case <-time.After(*pause):
				}
			}
		}()
	}
	wg.Wait()
	return nil
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// runProxy proxies the soak's TCP paths: every path NAME=LISTEN>TARGET
// forwards connections to LISTEN on to TARGET, until the control endpoint
// cuts it (POST /cut?path=PREFIX: every path whose name starts with
// PREFIX goes silent: open connections stop forwarding, new ones are
// accepted and held, nothing is reset; a partition as a router dropping
// everything makes it) or heals it (POST /heal?path=PREFIX).
func runProxy(args []string) error {
	fs := flag.NewFlagSet("proxy", flag.ContinueOnError)
	paths := fs.String("paths", "", "comma-separated NAME=LISTEN>TARGET")
	control := fs.String("control", "", "address of the control endpoint")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	var all []*path
	for _, spec := range strings.Split(*paths, ",") {
		name, rest, ok1 := strings.Cut(spec, "=")
		listen, target, ok2 := strings.Cut(rest, ">")
		if !ok1 || !ok2 {
			return fmt.Errorf("path %q: want NAME=LISTEN>TARGET", spec)
		}
		ln, err := net.Listen("tcp", listen)
		if err != nil {
			return fmt.Errorf("path %s: %w", name, err)
		}
		p := &path{name: name, target: target, ln: ln, conns: map[*pair]struct{}{}}
		all = append(all, p)
		go p.serve()
	}
	mux := http.NewServeMux()
	set := func(cut bool) http.HandlerFunc {
		return func(rw http.ResponseWriter, r *http.Request) {
			prefix := r.URL.Query().Get("path")
			n := 0
			for _, p := range all {
				if prefix != "" && strings.HasPrefix(p.name, prefix) {
					p.setCut(cut)
					n++
				}
			}
			fmt.Fprintf(rw, "%d paths\n", n)
		}
	}
	mux.HandleFunc("POST /cut", set(true))
	mux.HandleFunc("POST /heal", set(false))
	srv := &http.Server{Addr: *control, Handler: mux}
	go func() {
		<-ctx.Done()
		srv.Close()
		for _, p := range all {
			p.ln.Close()
		}
	}()
	fmt.Fprintf(os.Stderr, "soakctl proxy: %d paths, control on %s\n", len(all), *control)
	if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

type path struct {
	name, target string
	ln           net.Listener
	mu           sync.Mutex
	cut          bool
	conns        map[*pair]struct{}
}

// pair is one proxied connection; held connections (accepted while cut)
// have no upstream and are closed when the path heals, as a client whose
// SYN was dropped would time out and retry.
type pair struct {
	down, up net.Conn
}

func (p *path) setCut(cut bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cut == cut {
		return
	}
	p.cut = cut
	if !cut {
		// Healing: connections that lived through the partition are
		// closed (their bytes in flight were dropped; TCP would have
		// timed them out), so both ends start over cleanly.
		for c := range p.conns {
			c.down.Close()
			if c.up != nil {
				c.up.Close()
			}
			delete(p.conns, c)
		}
	}
}

func (p *path) serve() {
	for {
		down, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		cut := p.cut
		c := &pair{down: down}
		p.conns[c] = struct{}{}
		p.mu.Unlock()
		if cut {
			continue // held silently until the heal closes it
		}
		up, err := net.DialTimeout("tcp", p.target, 5*time.Second)
		if err != nil {
			down.Close()
			p.forget(c)
			continue
		}
		p.mu.Lock()
		c.up = up
		p.mu.Unlock()
		go p.copy(c, up, down)
		go p.copy(c, down, up)
	}
}

// copy forwards one direction while the path is not cut; during a cut the
// bytes are read and dropped.
func (p *path) copy(c *pair, dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			cut := p.cut
			p.mu.Unlock()
			if !cut {
				if _, werr := dst.Write(buf[:n]); werr != nil {
					err = werr
				}
			}
		}
		if err != nil {
			if err != io.EOF {
				src.Close()
			}
			dst.Close()
			c.down.Close()
			p.forget(c)
			return
		}
	}
}

func (p *path) forget(c *pair) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
}
