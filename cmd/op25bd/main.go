// Command op25bd is the op25b controller daemon: one replica of a cluster
// that enforces Outbound Port 25 Blocking on Open vSwitch bridges.
//
// It wires the pipeline policy → flows → switch → status: flags → etcd
// (external, or embedded in --data-dir) → store and watch cache → OpenFlow
// controller → cluster membership and per-bridge mastership → REST API, and
// runs until SIGTERM or SIGINT. Shutdown releases mastership at once so
// another replica takes over; the flows stay on the switches.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

// version is set at build time (-ldflags "-X main.version=...").
var version = "dev"

func main() {
	opts, err := parseFlags(os.Args[1:], os.Getenv, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "op25bd: %v\n", err)
		os.Exit(2)
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: opts.LogLevel})).
		With("replica", opts.NodeID)

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := run(ctx, opts, logger); err != nil {
		logger.Error("op25bd stopped", "err", err)
		os.Exit(1)
	}
}
