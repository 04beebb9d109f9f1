package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/op25b/op25b/controller"
	"github.com/op25b/op25b/flows"
	"github.com/op25b/op25b/internal/testenv"
	"github.com/op25b/op25b/internal/tlsconfig"
)

// BenchmarkOpenFlowInstall100k measures what TLS costs a switch's first
// reconcile: a fresh bridge connects (tcp: or ssl:, mutual TLS) and gets
// 100k drop flows in one bundle, timed from set-controller to applied. It
// prints the ssl/tcp ratio measured in the same run.
//
//	go test -run XXX -bench OpenFlowInstall100k -benchtime 3x ./cmd/op25bd/
func BenchmarkOpenFlowInstall100k(b *testing.B) {
	testenv.RequireOVS(b)
	pki := testenv.NewPKI(b, "bench")
	ctl := pki.Issue(b, "controller")
	sw := pki.Issue(b, "switch")
	testenv.SetOVSSSL(b, sw.Key, sw.Cert, pki.CA)
	h, err := tlsconfig.Load(tlsconfig.Files{Cert: ctl.Cert, Key: ctl.Key, CA: pki.CA}, true)
	if err != nil {
		b.Fatal(err)
	}
	desired := make([]flows.Flow, 0, 100001)
	a := netip.MustParseAddr("10.0.0.1")
	for i := 0; i < 100000; i++ {
		m := flows.Match{EthType: flows.EthTypeIPv4, IPProto: flows.IPProtoTCP, TCPDst: 25, Src: netip.PrefixFrom(a, 32)}
		desired = append(desired, flows.Flow{Priority: 1000, Cookie: flows.CookieMarker | uint64(i+1), Match: m})
		a = a.Next()
	}
	desired = append(desired, flows.Flow{Cookie: flows.CookieMarker | 0xffffffff, Actions: flows.Actions{Output: flows.PortNormal}})

	perRun := map[string]time.Duration{}
	for _, mode := range []string{"tcp", "ssl"} {
		b.Run(mode, func(b *testing.B) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			serve := ln
			if mode == "ssl" {
				serve = tls.NewListener(ln, h.ServerConfig())
			}
			c := controller.New(controller.Config{Logger: slog.New(slog.DiscardHandler), RequestTimeout: 5 * time.Minute})
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- c.Serve(ctx, serve) }()
			defer func() { cancel(); <-done }()
			var total time.Duration
			b.StopTimer()
			for i := 0; i < b.N; i++ {
				br := testenv.NewBridge(b, "")
				c.SetDesired(controller.Desired{DPID: br.DPID, Revision: 1, Flows: desired, Master: true, Generation: 1})
				start := time.Now()
				b.StartTimer()
				br.SetController(b, mode+":"+ln.Addr().String())
				for applied := false; !applied; {
					for _, st := range c.Status() {
						if st.DPID == br.DPID && st.AppliedRevision == 1 {
							applied = true
						}
					}
					if time.Since(start) > 5*time.Minute {
						b.Fatalf("%s: not applied after 5 minutes", mode)
					}
					time.Sleep(5 * time.Millisecond)
				}
				b.StopTimer()
				total += time.Since(start)
				_, _ = testenv.RunErr("ovs-vsctl", "--timeout=30", "del-br", br.Name)
				c.Forget(br.DPID)
			}
			perRun[mode] = total / time.Duration(b.N)
		})
	}
	if perRun["tcp"] > 0 && perRun["ssl"] > 0 {
		fmt.Printf("100k flows, fresh bridge: tcp %s, ssl %s, ssl/tcp = %.2f\n",
			perRun["tcp"].Round(time.Millisecond), perRun["ssl"].Round(time.Millisecond),
			float64(perRun["ssl"])/float64(perRun["tcp"]))
	}
}
