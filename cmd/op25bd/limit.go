package main

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/op25b/op25b/api"
	"github.com/op25b/op25b/internal/connlimit"
)

// limitOptions are the saturation bounds of the API and OpenFlow ports
// (issue 11), beyond --api-max-connections and --openflow-max-connections.
type limitOptions struct {
	APIPerClient      int
	APIReserve        int
	APIBodyTimeout    time.Duration
	OpenFlowPerClient int
}

// Reserve slots are few and short: enough for a monitoring system's probes
// (and a NOC's curl) while the API is saturated, not a second API.
const (
	defaultAPIReserve      = 16
	apiReserveDeadline     = 2 * time.Second
	defaultAPIPerClient    = 32
	defaultOpenFlowPerHost = 256
)

// limitFlags registers the flags of limitOptions on fs.
func limitFlags(fs *flag.FlagSet, o *limitOptions) {
	fs.IntVar(&o.APIPerClient, "api-max-connections-per-client", defaultAPIPerClient,
		"`n` API connections one client address may hold at once (0: no per-client cap); beyond it, or beyond --api-max-connections, a connection gets one of the reserve slots")
	fs.IntVar(&o.APIReserve, "api-reserve-connections", defaultAPIReserve,
		"`n` API connections accepted beyond the caps for 2s each, answering only /healthz, /readyz and /metrics (others get 503 at once); an idle one is replaced by a newer connection")
	fs.DurationVar(&o.APIBodyTimeout, "api-body-timeout", api.DefaultBodyReadTimeout,
		"a request body must arrive within this `duration` plus 1s per MiB its Content-Length announces, independently of how long the request then takes")
	fs.IntVar(&o.OpenFlowPerClient, "openflow-max-connections-per-client", defaultOpenFlowPerHost,
		"`n` OpenFlow connections one address may hold at once (one per bridge and replica target: raise it for OVS hosts with more bridges; 0: no cap)")
}

func (o limitOptions) check() error {
	switch {
	case o.APIPerClient < 0:
		return fmt.Errorf("--api-max-connections-per-client %d: must be 0 (no cap) or more", o.APIPerClient)
	case o.APIReserve < 0:
		return fmt.Errorf("--api-reserve-connections %d: must be 0 or more", o.APIReserve)
	case o.APIBodyTimeout <= 0:
		return errors.New("--api-body-timeout: must be positive")
	case o.OpenFlowPerClient < 0:
		return fmt.Errorf("--openflow-max-connections-per-client %d: must be 0 (no cap) or more", o.OpenFlowPerClient)
	}
	return nil
}

// apiListener bounds the API's connections: --api-max-connections in
// total, --api-max-connections-per-client per address, and a reserve for
// the health paths. Serve it with http.Server.ConnContext =
// connlimit.ConnContext so that the API knows a reserved connection.
func apiListener(ln net.Listener, o options, logger *slog.Logger) net.Listener {
	return connlimit.New(ln, connlimit.Config{Name: "api", Max: o.APIMaxConns, PerClient: o.Limits.APIPerClient,
		Reserve: o.Limits.APIReserve, ReserveDeadline: apiReserveDeadline, Logger: logger})
}

// openFlowListener caps the connections per switch address; the
// controller itself caps the total (--openflow-max-connections). There is
// no reserve: OpenFlow has no health path.
func openFlowListener(ln net.Listener, o options, logger *slog.Logger) net.Listener {
	if o.Limits.OpenFlowPerClient <= 0 {
		return ln
	}
	return connlimit.New(ln, connlimit.Config{Name: "openflow", PerClient: o.Limits.OpenFlowPerClient, Logger: logger})
}

// metricsListener bounds the --metrics-listen connections: a Prometheus
// and a load balancer or two, each from its own address.
func metricsListener(ln net.Listener, logger *slog.Logger) net.Listener {
	return connlimit.New(ln, connlimit.Config{Name: "metrics", Max: 32, PerClient: 8, Logger: logger})
}
