package main

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/op25b/op25b/client"
	"github.com/op25b/op25b/topology"
)

// runOffenders lists the sources whose SMTP attempts were blocked (or, in
// observe mode, would have been), most attempts first: the abuse desk's
// list of subscribers to notify.
func runOffenders(g *globals, args []string) error {
	fs := g.flagSet("offenders")
	since := fs.Duration("since", time.Hour, "the window: attempts since this long ago (at most op25bd's --offenders-retention, 24h by default)")
	limit := fs.Int("limit", 20, "sources to show, most attempts first (1..10000)")
	pop := fs.String("pop", "", "only the bridges of this pop")
	pos, err := g.parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	switch {
	case len(pos) > 0:
		return usagef("usage: offenders [--since 1h] [--limit 20] [--pop P]")
	case *since <= 0:
		return usagef("--since must be positive, got %s", *since)
	case *limit < 1 || *limit > 10000:
		return usagef("--limit must be in 1..10000, got %d", *limit)
	}
	c, err := g.client()
	if err != nil {
		return err
	}
	ctx, cancel := g.context(defaultTimeout)
	defer cancel()
	resp, err := c.Offenders(ctx, client.OffendersQuery{Since: *since, Limit: *limit, Pop: *pop})
	if err != nil {
		return err
	}
	if g.jsonOutput() {
		return g.printJSON(resp)
	}
	// Bridge names make the table readable; without them, dpids.
	names := map[string]string{}
	if bridges, err := c.Collection(ctx, topology.ItemBridges); err == nil {
		for _, b := range bridges.Bridges {
			names[b.DPID.String()] = b.Name
		}
	}
	w := g.stdout
	fmt.Fprintf(w, "offenders since %s", resp.Since.Local().Format(time.RFC3339))
	if *pop != "" {
		fmt.Fprintf(w, " in pop %s", *pop)
	}
	fmt.Fprintf(w, ": %d source(s)\n", len(resp.Offenders))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SRC\tPOOL\tBRIDGE\tPOP\tATTEMPTS\tDESTINATIONS\tFIRST SEEN\tLAST SEEN\tMODE")
	for _, o := range resp.Offenders {
		bridge := o.Bridge
		if n := names[o.Bridge]; n != "" {
			bridge = n
		}
		mode := "blocked"
		if o.Observed {
			mode = "observed"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%s\t%s\t%s\n", o.Src, o.Pool, bridge, o.Pop, o.Attempts, o.Destinations,
			o.FirstSeen.Local().Format(time.RFC3339), o.LastSeen.Local().Format(time.RFC3339), mode)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if resp.Truncated {
		fmt.Fprintln(w, "(truncated: some attempts in this window could not be attributed to a source: a switch reached its learn limit, a replica its --offenders-max-sources, or a replica did not answer)")
	}
	return nil
}
