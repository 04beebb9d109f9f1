// Package freeport picks unused loopback TCP ports for servers that cannot
// listen on port 0 themselves (etcd's embed package and the etcd binary take
// URLs, not listeners).
package freeport

import (
	"fmt"
	"net"
)

// Loopback returns n distinct ports that were free on 127.0.0.1 a moment
// ago. All n are held open until every one is picked, so they differ; the
// caller must still expect a rare race with another process taking one.
func Loopback(n int) ([]int, error) {
	var listeners []net.Listener
	defer func() {
		for _, l := range listeners {
			l.Close()
		}
	}()
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("pick a free loopback port: %w", err)
		}
		listeners = append(listeners, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
