// Command synstorm sends an offender storm (package synstorm) on one
// interface for a bounded time and prints what it sent as JSON. op25b's
// offender benchmark runs it inside a network namespace:
//
//	ip netns exec NS synstorm -iface IF -sources 10000 -destinations 3 -rate 30000 -duration 20s
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/op25b/op25b/internal/synstorm"
)

func main() {
	iface := flag.String("iface", "", "interface to send on")
	first := flag.String("first-source", "10.64.0.1", "first source address")
	sources := flag.Int("sources", 10000, "consecutive source addresses")
	firstDst := flag.String("first-destination", "203.0.113.1", "first destination address")
	dsts := flag.Int("destinations", 1, "consecutive destination addresses, each tried by every source")
	rate := flag.Int("rate", 30000, "SYNs per second")
	duration := flag.Duration("duration", 10*time.Second, "how long to send (bounded: at most 10m)")
	flag.Parse()
	if err := run(*iface, *first, *sources, *firstDst, *dsts, *rate, *duration); err != nil {
		fmt.Fprintln(os.Stderr, "synstorm:", err)
		os.Exit(1)
	}
}

func run(iface, first string, sources int, firstDst string, dsts, rate int, duration time.Duration) error {
	if duration <= 0 || duration > 10*time.Minute || rate < 1 {
		return fmt.Errorf("-duration must be in (0, 10m] and -rate positive")
	}
	src, err := netip.ParseAddr(first)
	if err != nil {
		return err
	}
	dst, err := netip.ParseAddr(firstDst)
	if err != nil {
		return err
	}
	frames, err := synstorm.Storm{FirstSource: src, Sources: sources, FirstDestination: dst, Destinations: dsts,
		SrcMAC: net.HardwareAddr{0x02, 0x25, 0xb0, 0, 0, 2}, DstMAC: net.HardwareAddr{0x02, 0x25, 0xb0, 0, 0, 1}}.Frames()
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := synstorm.Send(ctx, iface, frames, rate, duration)
	if err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(res)
}
