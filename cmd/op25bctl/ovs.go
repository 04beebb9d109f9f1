package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/op25b/op25b/internal/ovsattach"
)

// runOVS is `ovs attach BRIDGE --controllers ...` and
// `ovs detach BRIDGE`, run on a PoP's OVS host against the local
// ovsdb-server (not through the API).
func runOVS(g *globals, args []string) error {
	if len(args) < 2 || (args[0] != "attach" && args[0] != "detach") {
		return usagef("usage: ovs attach BRIDGE --controllers tcp:IP:PORT,... | ovs detach BRIDGE")
	}
	verb, bridge := args[0], args[1]
	fs := g.flagSet("ovs " + verb)
	controllers := fs.String("controllers", "", "comma-separated controller targets, one per op25bd replica")
	rest, err := g.parseInterleaved(fs, args[2:])
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return usagef("ovs %s: unexpected argument %q", verb, rest[0])
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	timeout := g.timeout
	if timeout <= 0 {
		timeout = time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	switch verb {
	case "attach":
		if *controllers == "" {
			return usagef("ovs attach: --controllers is required")
		}
		if err := ovsattach.Attach(ctx, bridge, []string{*controllers}); err != nil {
			return err
		}
		fmt.Fprintf(g.stdout, "%s: protocols=OpenFlow13 fail-mode=secure controllers=%s (verified)\n", bridge, *controllers)
	case "detach":
		if *controllers != "" {
			return usagef("ovs detach: --controllers is not accepted")
		}
		if err := ovsattach.Detach(ctx, bridge); err != nil {
			return err
		}
		fmt.Fprintf(g.stdout, "%s: controllers removed, fail-mode stays secure, flows left in place\n", bridge)
	}
	return nil
}
