// Package synstorm generates the offender storm op25b's benchmark sends
// through a bridge: TCP SYNs to port 25 from many subscriber sources to a
// few destinations, written as raw Ethernet frames on an AF_PACKET socket
// at a fixed rate for a bounded time. It is a load generator for tests and
// benchmarks on the machine itself (run inside a network namespace whose
// interface is a bridge port, by the synstorm command), never part of
// op25bd.
package synstorm

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"time"

	"golang.org/x/sys/unix"
)

// Storm describes the frames: Sources consecutive IPv4 addresses from
// FirstSource, each sending to every one of Destinations consecutive
// addresses from FirstDestination, port 25.
type Storm struct {
	FirstSource      netip.Addr
	Sources          int
	FirstDestination netip.Addr
	Destinations     int
	SrcMAC, DstMAC   net.HardwareAddr
}

// Frames returns one SYN frame per (source, destination) pair, ordered so
// that consecutive frames come from different sources (a round visits
// every pair once).
func (s Storm) Frames() ([][]byte, error) {
	if !s.FirstSource.Is4() || !s.FirstDestination.Is4() || s.Sources < 1 || s.Destinations < 1 {
		return nil, fmt.Errorf("storm: IPv4 first source and destination, at least one of each")
	}
	if len(s.SrcMAC) != 6 || len(s.DstMAC) != 6 {
		return nil, fmt.Errorf("storm: MAC addresses must be 6 bytes")
	}
	out := make([][]byte, 0, s.Sources*s.Destinations)
	dst := s.FirstDestination
	for d := 0; d < s.Destinations; d++ {
		src := s.FirstSource
		for i := 0; i < s.Sources; i++ {
			out = append(out, synFrame(s.SrcMAC, s.DstMAC, src, dst, uint16(1024+(i*7+d)%60000), uint32(i*2654435761+d)))
			src = src.Next()
		}
		dst = dst.Next()
	}
	return out, nil
}

// synFrame is Ethernet + IPv4 + TCP SYN (no options), checksums filled,
// padded to Ethernet's 60-byte minimum.
func synFrame(srcMAC, dstMAC net.HardwareAddr, src, dst netip.Addr, sport uint16, seq uint32) []byte {
	f := make([]byte, 60)
	copy(f[0:6], dstMAC)
	copy(f[6:12], srcMAC)
	binary.BigEndian.PutUint16(f[12:], 0x0800)
	ip := f[14:34]
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:], 40) // IP header + TCP header
	binary.BigEndian.PutUint16(ip[6:], 0x4000)
	ip[8], ip[9] = 64, 6
	s4, d4 := src.As4(), dst.As4()
	copy(ip[12:16], s4[:])
	copy(ip[16:20], d4[:])
	binary.BigEndian.PutUint16(ip[10:], checksum(ip, 0))
	tcp := f[34:54]
	binary.BigEndian.PutUint16(tcp[0:], sport)
	binary.BigEndian.PutUint16(tcp[2:], 25)
	binary.BigEndian.PutUint32(tcp[4:], seq)
	tcp[12] = 5 << 4 // data offset
	tcp[13] = 0x02   // SYN
	binary.BigEndian.PutUint16(tcp[14:], 64240)
	pseudo := uint32(binary.BigEndian.Uint16(s4[0:])) + uint32(binary.BigEndian.Uint16(s4[2:])) +
		uint32(binary.BigEndian.Uint16(d4[0:])) + uint32(binary.BigEndian.Uint16(d4[2:])) + 6 + 20
	binary.BigEndian.PutUint16(tcp[16:], checksum(tcp, pseudo))
	return f
}

// checksum is the Internet checksum of b, starting from sum.
func checksum(b []byte, sum uint32) uint16 {
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return ^uint16(sum)
}

// Result is what Send did.
type Result struct {
	Sent    uint64        `json:"sent"`
	Errors  uint64        `json:"errors"`
	Elapsed time.Duration `json:"elapsed_ns"`
}

// Send writes frames round-robin on iface (an interface of the calling
// thread's network namespace) at rate frames per second, until duration
// has passed or ctx is done.
func Send(ctx context.Context, iface string, frames [][]byte, rate int, duration time.Duration) (Result, error) {
	ifi, err := net.InterfaceByName(iface)
	if err != nil {
		return Result{}, err
	}
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0) // send only: no protocol, receives nothing
	if err != nil {
		return Result{}, fmt.Errorf("AF_PACKET socket: %w", err)
	}
	defer unix.Close(fd)
	// Frames go straight to the device, past the qdisc: the generator,
	// not the kernel's queueing, sets the rate.
	_ = unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_QDISC_BYPASS, 1)
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Ifindex: ifi.Index}); err != nil {
		return Result{}, fmt.Errorf("bind %s: %w", iface, err)
	}
	var res Result
	start := time.Now()
	const batch = 64
	interval := time.Duration(float64(time.Second) * batch / float64(rate))
	next := start
	for i := 0; ; {
		if time.Since(start) >= duration || ctx.Err() != nil {
			break
		}
		for j := 0; j < batch; j++ {
			if _, err := unix.Write(fd, frames[i]); err != nil {
				res.Errors++
			} else {
				res.Sent++
			}
			if i++; i == len(frames) {
				i = 0
			}
		}
		next = next.Add(interval)
		if d := time.Until(next); d > 0 {
			time.Sleep(d)
		}
	}
	res.Elapsed = time.Since(start)
	return res, nil
}
