package main

import (
	"errors"
	"log/slog"
	"net"
	"testing"
	"time"
)

// limitListener serves n connections at once: the n+1th waits in the
// backlog until one closes, and Close unblocks a waiting Accept.
func TestLimitListener(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := limitListener(inner, 2, slog.New(slog.DiscardHandler))
	accepted := make(chan net.Conn, 10)
	acceptErr := make(chan error, 1)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				acceptErr <- err
				return
			}
			accepted <- c
		}
	}()
	for i := 0; i < 3; i++ {
		c, err := net.Dial("tcp", inner.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	first, second := <-accepted, <-accepted
	select {
	case <-accepted:
		t.Fatal("a third connection was accepted with a limit of 2")
	case <-time.After(200 * time.Millisecond): // absence cannot be proven; a short look
	}
	first.Close()
	first.Close() // a second Close must not free a second slot
	select {
	case c := <-accepted:
		c.Close()
	case <-time.After(60 * time.Second):
		t.Fatal("the third connection was not accepted after one closed")
	}
	// Both slots are taken again (second + a new one); Close unblocks Accept.
	c4, err := net.Dial("tcp", inner.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c4.Close()
	<-accepted
	c5, err := net.Dial("tcp", inner.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c5.Close()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-acceptErr:
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("Accept after Close: %v, want net.ErrClosed", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("Close did not unblock Accept")
	}
	second.Close()
}
