package testenv

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// Host is a network namespace with one veth interface whose peer is a port
// of a bridge: a subscriber (or server) that sends real packets through
// the bridge's userspace datapath.
type Host struct {
	Namespace string // name under /run/netns
	Iface     string // the interface inside the namespace
	Port      string // its peer, a port of the bridge
	OFPort    int
}

// gatewayMAC is the permanent neighbour every host's default route points
// at: packets leave with a fixed destination MAC and no ARP, which is all
// a bridge that drops or counts them needs.
const (
	gatewayAddr = "169.254.25.1"
	gatewayMAC  = "02:25:b0:00:00:01"
)

// AddHost creates a namespace whose interface holds addrs (host
// addresses, IPv4 or IPv6) and routes everything through the bridge
// (ofport), and removes it when the test ends. It needs root (ip netns).
func (b Bridge) AddHost(t testing.TB, ofport int, addrs ...netip.Addr) *Host {
	t.Helper()
	h := &Host{Namespace: UniqueName("o25n"), Iface: UniqueName("o25h"), Port: UniqueName("o25p"), OFPort: ofport}
	Run(t, "ip", "netns", "add", h.Namespace)
	t.Cleanup(func() { _, _ = RunErr("ip", "netns", "del", h.Namespace) })
	Run(t, "ip", "link", "add", h.Port, "type", "veth", "peer", "name", h.Iface)
	t.Cleanup(func() { _, _ = RunErr("ip", "link", "del", h.Port) })
	Run(t, "ip", "link", "set", h.Iface, "netns", h.Namespace)
	Run(t, "ip", "link", "set", h.Port, "up")
	Run(t, "ovs-vsctl", "--timeout=10", "add-port", b.Name, h.Port, "--",
		"set", "interface", h.Port, fmt.Sprintf("ofport_request=%d", ofport))
	in := func(args ...string) { Run(t, "ip", append([]string{"netns", "exec", h.Namespace}, args...)...) }
	in("ip", "link", "set", "lo", "up")
	in("ip", "link", "set", h.Iface, "up")
	v6 := false
	for _, a := range addrs {
		if a.Is4() {
			in("ip", "addr", "add", a.String()+"/32", "dev", h.Iface)
		} else {
			v6 = true
			in("ip", "-6", "addr", "add", a.String()+"/128", "dev", h.Iface, "nodad")
		}
	}
	in("ip", "route", "add", "default", "via", gatewayAddr, "dev", h.Iface, "onlink")
	in("ip", "neigh", "add", gatewayAddr, "lladdr", gatewayMAC, "dev", h.Iface, "nud", "permanent")
	if v6 {
		in("ip", "-6", "route", "add", "default", "via", "fe80::25", "dev", h.Iface)
		in("ip", "-6", "neigh", "add", "fe80::25", "lladdr", gatewayMAC, "dev", h.Iface, "nud", "permanent")
	}
	return h
}

// Do runs fn on an OS thread inside the host's namespace. Sockets fn
// opens belong to the namespace for good. The thread is not returned to
// the Go scheduler afterwards (it exits), so no other goroutine ever runs
// in the namespace by accident.
func (h *Host) Do(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		f, err := os.Open(filepath.Join("/run/netns", h.Namespace))
		if err != nil {
			errc <- err
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns %s: %w", h.Namespace, err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// ConnectAttempts makes n TCP connection attempts from src (an address of
// the host) to dst:port through the kernel's own TCP stack, each exactly
// one SYN: a non-blocking connect, closed before any retransmission (a
// socket closed in SYN_SENT sends nothing more).
func (h *Host) ConnectAttempts(src, dst netip.Addr, port, n int) error {
	return h.ConnectAttemptsFrom(src, 0, dst, port, n)
}

// ConnectAttemptsFrom is ConnectAttempts from a fixed source port (0: an
// ephemeral port per attempt, as clients do).
func (h *Host) ConnectAttemptsFrom(src netip.Addr, srcPort int, dst netip.Addr, port, n int) error {
	return h.Do(func() error {
		for i := 0; i < n; i++ {
			if err := synOnce(src, srcPort, dst, port); err != nil {
				return fmt.Errorf("attempt %d from %s to %s:%d: %w", i+1, src, dst, port, err)
			}
		}
		return nil
	})
}

func synOnce(src netip.Addr, srcPort int, dst netip.Addr, port int) error {
	family := unix.AF_INET
	if src.Is6() {
		family = unix.AF_INET6
	}
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	var local, remote unix.Sockaddr
	if src.Is4() {
		local, remote = &unix.SockaddrInet4{Addr: src.As4(), Port: srcPort}, &unix.SockaddrInet4{Addr: dst.As4(), Port: port}
	} else {
		local, remote = &unix.SockaddrInet6{Addr: src.As16(), Port: srcPort}, &unix.SockaddrInet6{Addr: dst.As16(), Port: port}
	}
	if srcPort != 0 {
		// The previous attempt from this port was closed in SYN_SENT:
		// nothing holds the port, but say so for the kernel's checks.
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
			return err
		}
	}
	if err := unix.Bind(fd, local); err != nil {
		return fmt.Errorf("bind: %w", err)
	}
	if err := unix.Connect(fd, remote); err != nil && !errors.Is(err, syscall.EINPROGRESS) {
		return fmt.Errorf("connect: %w", err)
	}
	return nil
}
