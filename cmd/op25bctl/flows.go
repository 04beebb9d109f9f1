package main

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/op25b/op25b/topology"
)

func runFlows(g *globals, args []string) error {
	fs := g.flagSet("flows")
	pos, err := g.parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("usage: flows BRIDGE (dpid or name)")
	}
	c, err := g.client()
	if err != nil {
		return err
	}
	ctx, cancel := g.context(defaultTimeout)
	defer cancel()
	dpid, err := topology.ParseDPID(pos[0])
	if err != nil { // not a dpid: a bridge's name
		bridges, err := c.Collection(ctx, topology.ItemBridges)
		if err != nil {
			return err
		}
		if dpid, err = bridgeByName(bridges.Bridges, pos[0]); err != nil {
			return err
		}
	}
	fr, err := c.Flows(ctx, dpid)
	if err != nil {
		return err
	}
	if g.jsonOutput() {
		return g.printJSON(fr)
	}
	w := g.stdout
	fmt.Fprintf(w, "bridge %s, revision %d, %d desired flow(s)", fr.DPID, fr.Revision, len(fr.Desired))
	if !fr.Registered {
		fmt.Fprint(w, ", unregistered")
	}
	if fr.InstalledSource == "" {
		fmt.Fprintf(w, "\ninstalled flows unavailable: %s\n\n", fr.InstalledError)
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "STATE\tFLOW")
		for _, f := range fr.Desired {
			fmt.Fprintf(tw, "desired\t%s\n", f)
		}
		return tw.Flush()
	}
	state := "in sync"
	if len(fr.Missing)+len(fr.Extra) > 0 {
		state = fmt.Sprintf("%d missing, %d extra", len(fr.Missing), len(fr.Extra))
	}
	fmt.Fprintf(w, ", %d installed (%s, from %s)\n\n", len(fr.Installed), state, fr.InstalledSource)
	extra := map[string]bool{}
	for _, f := range fr.Extra {
		extra[f] = true
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "STATE\tPACKETS\tBYTES\tFLOW")
	for _, f := range fr.Installed {
		st := "ok"
		if extra[f.Flow] {
			st = "extra"
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\n", st, f.Packets, f.Bytes, f.Flow)
	}
	for _, f := range fr.Missing {
		fmt.Fprintf(tw, "missing\t-\t-\t%s\n", f)
	}
	return tw.Flush()
}

// bridgeByName finds a bridge of the document by its name.
func bridgeByName(bridges []topology.Bridge, name string) (topology.DPID, error) {
	for _, b := range bridges {
		if b.Name == name {
			return b.DPID, nil
		}
	}
	return "", fmt.Errorf("no bridge named %q in the document (give a 16-hex-digit dpid for an unregistered bridge)", strings.TrimSpace(name))
}
