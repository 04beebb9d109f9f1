package synstorm

import (
	"encoding/binary"
	"net"
	"net/netip"
	"testing"
)

// Every frame is a well-formed IPv4 TCP SYN to port 25: the checksums
// verify (the sum over a header including its checksum is 0xffff), and
// the pairs are the storm's, each once.
func TestFrames(t *testing.T) {
	s := Storm{FirstSource: netip.MustParseAddr("10.64.0.1"), Sources: 300, FirstDestination: netip.MustParseAddr("203.0.113.1"), Destinations: 3,
		SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}}
	frames, err := s.Frames()
	if err != nil || len(frames) != 900 {
		t.Fatalf("%d frames, %v", len(frames), err)
	}
	seen := map[[2]netip.Addr]bool{}
	for _, f := range frames {
		ip, tcp := f[14:34], f[34:54]
		if binary.BigEndian.Uint16(f[12:]) != 0x0800 || ip[9] != 6 || tcp[13] != 0x02 || binary.BigEndian.Uint16(tcp[2:]) != 25 {
			t.Fatalf("not a SYN to port 25: %x", f)
		}
		if checksum(ip, 0) != 0 {
			t.Fatalf("IP checksum: %x", ip)
		}
		src, _ := netip.AddrFromSlice(ip[12:16])
		dst, _ := netip.AddrFromSlice(ip[16:20])
		pseudo := uint32(binary.BigEndian.Uint16(ip[12:])) + uint32(binary.BigEndian.Uint16(ip[14:])) +
			uint32(binary.BigEndian.Uint16(ip[16:])) + uint32(binary.BigEndian.Uint16(ip[18:])) + 6 + 20
		if checksum(tcp, pseudo) != 0 {
			t.Fatalf("TCP checksum: %x", tcp)
		}
		k := [2]netip.Addr{src, dst}
		if seen[k] {
			t.Fatalf("pair %v twice", k)
		}
		seen[k] = true
	}
	if !seen[[2]netip.Addr{netip.MustParseAddr("10.64.1.44"), netip.MustParseAddr("203.0.113.3")}] {
		t.Fatal("last pair missing")
	}
	if _, err := (Storm{FirstSource: netip.MustParseAddr("::1"), Sources: 1, FirstDestination: netip.MustParseAddr("::2"), Destinations: 1}).Frames(); err == nil {
		t.Fatal("IPv6 storm accepted")
	}
}
