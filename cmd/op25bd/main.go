// Command op25bd is the op25b controller daemon: one replica of a cluster
// that enforces Outbound Port 25 Blocking on Open vSwitch bridges.
//
// It wires the pipeline policy → flows → switch → status: flags → etcd
// (external, or embedded in --data-dir) → store and watch cache → OpenFlow
// controller → cluster membership and per-bridge mastership → REST API, and
// runs until SIGTERM or SIGINT. Shutdown releases mastership at once so
// another replica takes over; the flows stay on the switches. Under
// systemd (Type=notify) it reports READY=1 once it can serve and
// STOPPING=1 when the stop begins.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	systemd "github.com/coreos/go-systemd/v22/daemon"

	"github.com/op25b/op25b/internal/buildinfo"
)

func main() {
	// SIGHUP first: its default action would kill the process.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()

	if code, done := generateDocs(os.Args[1:], os.Stdout, os.Stderr); done {
		os.Exit(code)
	}
	opts, err := parseFlags(os.Args[1:], os.Getenv, os.Stdout)
	switch {
	case errors.Is(err, flag.ErrHelp):
		os.Exit(0)
	case errors.Is(err, errVersion):
		fmt.Println(buildinfo.Read().Line("op25bd"))
		os.Exit(0)
	case err != nil:
		fmt.Fprintf(os.Stderr, "op25bd: %v\n", err)
		os.Exit(2)
	}
	logger := newLogger(os.Stderr, opts)
	for _, v := range strayVariables(os.Environ()) {
		logger.Warn("environment variable matches no op25bd flag; ignored",
			"variable", v.Name, "closest", envName(v.Closest), "closest_flag", "--"+v.Closest)
	}
	notify := func(state string) {
		if _, err := systemd.SdNotify(false, state); err != nil {
			logger.Warn("sd_notify failed", "state", state, "err", err)
		}
	}
	if err := run(ctx, opts, logger, process{hup: hup, notify: notify}); err != nil {
		logger.Error("op25bd stopped", "err", err)
		os.Exit(1)
	}
}

// newLogger is op25bd's structured log on w, in --log-format, with the
// replica id on every line.
func newLogger(w io.Writer, o options) *slog.Logger {
	hopts := &slog.HandlerOptions{Level: o.LogLevel}
	var h slog.Handler = slog.NewTextHandler(w, hopts)
	if o.LogFormat == "json" {
		h = slog.NewJSONHandler(w, hopts)
	}
	return slog.New(h).With("replica", o.NodeID)
}
