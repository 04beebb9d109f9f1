package main

import (
	"bufio"
	"io"
	"net"
	"testing"
	"time"

	"github.com/op25b/op25b/lab/soak"
)

func echoServer(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
	return ln.Addr().String()
}

func startPath(t *testing.T, target string) *path {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &path{name: "of-labsa-r0", target: target, ln: ln, conns: map[*pair]struct{}{}}
	go p.serve()
	t.Cleanup(func() { ln.Close() })
	return p
}

// roundTrip sends a line and reports whether it came back within wait.
func roundTrip(c net.Conn, wait time.Duration) bool {
	c.SetDeadline(time.Now().Add(wait))
	if _, err := c.Write([]byte("ping\n")); err != nil {
		return false
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && line == "ping\n"
}

// TestProxyCutIsSilentAndHealStartsOver: a cut path forwards nothing and
// resets nothing (a partition, not a refusal); healing closes what lived
// through the cut, and new connections go through again.
func TestProxyCutIsSilentAndHealStartsOver(t *testing.T) {
	p := startPath(t, echoServer(t))
	c, err := net.Dial("tcp", p.ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if !roundTrip(c, 5*time.Second) {
		t.Fatal("no echo through a healthy path")
	}
	p.setCut(true)
	if roundTrip(c, 300*time.Millisecond) {
		t.Fatal("echo through a cut path")
	}
	held, err := net.Dial("tcp", p.ln.Addr().String())
	if err != nil {
		t.Fatalf("a cut path refused a connection (it must accept and hold it): %v", err)
	}
	defer held.Close()
	if roundTrip(held, 300*time.Millisecond) {
		t.Fatal("a connection accepted during the cut reached the target")
	}
	p.setCut(false)
	if roundTrip(c, time.Second) {
		t.Fatal("a connection that lived through the cut still forwards after the heal")
	}
	fresh, err := net.Dial("tcp", p.ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	if !roundTrip(fresh, 5*time.Second) {
		t.Fatal("no echo through a healed path")
	}
}

func TestDedupRevisions(t *testing.T) {
	in := []soak.Revision{{Revision: 12}, {Revision: 10}, {Revision: 12}, {Revision: 11}}
	out := dedupRevisions(in)
	if len(out) != 3 || out[0].Revision != 10 || out[1].Revision != 11 || out[2].Revision != 12 {
		t.Errorf("dedupRevisions = %+v", out)
	}
}
