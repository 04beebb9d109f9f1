package main

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"text/tabwriter"

	"github.com/op25b/op25b/api"
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
	dpid, err := resolveBridge(g, pos[0])
	if err != nil {
		return err
	}
	var fr api.FlowsResponse
	raw, err := g.call(http.MethodGet, "/v1/bridges/"+url.PathEscape(dpid)+"/flows", nil, nil, &fr)
	if err != nil {
		return err
	}
	if g.jsonOutput() {
		g.printRaw(raw)
		return nil
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

// resolveBridge accepts a dpid or a bridge name from the document.
func resolveBridge(g *globals, arg string) (string, error) {
	if len(arg) == 16 && strings.Trim(strings.ToLower(arg), "0123456789abcdef") == "" {
		return topology.CanonicalDPID(arg), nil
	}
	var resp struct {
		Bridges []topology.Bridge `json:"bridges"`
	}
	if _, err := g.call(http.MethodGet, "/v1/bridges", nil, nil, &resp); err != nil {
		return "", err
	}
	for _, b := range resp.Bridges {
		if b.Name == arg {
			return topology.CanonicalDPID(b.DPID), nil
		}
	}
	return "", fmt.Errorf("no bridge named %q in the document (give a 16-hex-digit dpid for an unregistered bridge)", arg)
}
