package main

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/op25b/op25b/api/apitypes"
	"github.com/op25b/op25b/client"
	"github.com/op25b/op25b/topology"
)

// runExplain: why is this packet dropped or forwarded at that bridge?
func runExplain(g *globals, args []string) error {
	fs := g.flagSet("explain")
	bridge := fs.String("bridge", "", "the bridge the packet enters: a dpid or a bridge name (required)")
	atFlag := fs.String("at", "", "RFC 3339 instant to evaluate at (default now; then the installed flows are compared too)")
	pos, err := g.parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	const usage = "usage: explain SRC DST[:PORT] --bridge DPID|NAME [--at T] (IPv6 with a port: [ADDR]:PORT)"
	if len(pos) != 2 {
		return usagef("%s", usage)
	}
	if *bridge == "" {
		return usagef("--bridge is required: phases may differ per pop (%s)", usage)
	}
	src, err := netip.ParseAddr(pos[0])
	if err != nil {
		return usagef("SRC %q is not an IP address", pos[0])
	}
	dst, port, err := parseDestination(pos[1])
	if err != nil {
		return err
	}
	req := client.ExplainRequest{Src: src.String(), Dst: dst.String(), Port: port, Bridge: *bridge}
	if *atFlag != "" {
		if req.At, err = topology.ParseTime(*atFlag); err != nil {
			return usagef("--at: %v", err)
		}
	}
	c, err := g.client()
	if err != nil {
		return err
	}
	ctx, cancel := g.context(defaultTimeout)
	defer cancel()
	e, err := c.Explain(ctx, req)
	if err != nil {
		return err
	}
	if g.jsonOutput() {
		return g.printJSON(e)
	}
	printExplanation(g, e)
	return nil
}

// parseDestination reads DST[:PORT]: 203.0.113.25, 203.0.113.25:587,
// 2001:db8::25 or [2001:db8::25]:587. The port defaults to 25.
func parseDestination(s string) (netip.Addr, int, error) {
	if a, err := netip.ParseAddr(s); err == nil {
		return a, 25, nil
	}
	ap, err := netip.ParseAddrPort(s)
	if err != nil || ap.Port() == 0 {
		return netip.Addr{}, 0, usagef("DST %q is not ADDR, ADDR:PORT or [IPv6]:PORT with a port 1..65535", s)
	}
	return ap.Addr(), int(ap.Port()), nil
}

func printExplanation(g *globals, e *apitypes.Explain) {
	w := g.stdout
	verdict := e.Verdict
	if e.Observe {
		verdict += " (observe mode: enforcing, it would be dropped)"
	}
	where := string(e.Bridge.DPID)
	switch {
	case e.Bridge.Name != "":
		where = fmt.Sprintf("%s (%s, pop %q)", e.Bridge.Name, e.Bridge.DPID, e.Bridge.Pop)
	case !e.Bridge.Registered:
		where += " (unregistered: only phases without pops apply)"
	}
	fmt.Fprintf(w, "%s: %s -> %s port %d at %s, %s, revision %d\n", verdict, e.Src, e.Dst, e.Port, where,
		e.At.Format(time.RFC3339), e.Revision)
	for _, r := range e.Reasons {
		fmt.Fprintf(w, "  %s\n", r)
	}
	switch in := e.Installed; {
	case in == nil:
		fmt.Fprintf(w, "installed flows: not compared (%s)\n", e.InstalledError)
	case in.Agrees:
		fmt.Fprintf(w, "installed flows: %s, as the policy says (%s)\n", in.Verdict, in.Source)
	default:
		fmt.Fprintf(w, "installed flows: %s, DISAGREE with the policy (%s): the bridge does not enforce the document yet; see op25bctl status and op25bctl flows %s\n",
			in.Verdict, in.Source, e.Bridge.DPID)
	}
}

// runExempt and runQuarantine store one exemption or quarantine for a
// prefix, in force for --for (or until --until).
func runExempt(g *globals, args []string) error {
	return runOverride(g, "exempt", topology.ItemExemptions, args)
}

func runQuarantine(g *globals, args []string) error {
	return runOverride(g, "quarantine", topology.ItemQuarantines, args)
}

func runOverride(g *globals, verb, kind string, args []string) error {
	fs := g.flagSet(verb)
	forFlag := fs.String("for", "", "how long it stays in force from now: a Go duration (36h, 90m) or days/weeks (14d, 2w)")
	untilFlag := fs.String("until", "", "RFC 3339 instant at which it lapses (instead of --for)")
	reason := fs.String("reason", "", "why (required; one line, at most 256 characters)")
	ticket := fs.String("ticket", "", "the ticket or case that asked for it (required; at most 64 characters)")
	name := fs.String("name", "", "item name (default derived from the prefix, e.g. "+verb+"-10-1-3-7-32); an existing one is replaced")
	ifMatch := fs.Int64("if-match", 0, "only store if the document is still at revision REV")
	pos, err := g.parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	usage := fmt.Sprintf("usage: %s PREFIX (--for D | --until T) --reason R --ticket T [--name N]", verb)
	if len(pos) != 1 {
		return usagef("%s", usage)
	}
	prefix, err := parseSourcePrefix(pos[0])
	if err != nil {
		return err
	}
	var until time.Time
	switch {
	case (*forFlag == "") == (*untilFlag == ""):
		return usagef("give exactly one of --for and --until (%s)", usage)
	case *forFlag != "":
		d, err := parseLongDuration(*forFlag)
		if err != nil {
			return usagef("--for: %v", err)
		}
		until = g.now().Add(d).Truncate(time.Second)
	default:
		if until, err = topology.ParseTime(*untilFlag); err != nil {
			return usagef("--until: %v", err)
		}
	}
	if *reason == "" || *ticket == "" {
		return usagef("--reason and --ticket are required: whoever reads the entry later needs both (%s)", usage)
	}
	if *name == "" {
		*name = defaultOverrideName(verb, prefix)
	}
	entry := topology.Exemption{Name: *name, Prefix: prefix.String(), Until: until.Format(time.RFC3339Nano), Reason: *reason, Ticket: *ticket}
	var item any = entry
	if kind == topology.ItemQuarantines {
		item = topology.Quarantine(entry)
	}
	c, err := g.client()
	if err != nil {
		return err
	}
	ctx, cancel := g.context(defaultTimeout)
	defer cancel()
	rev, err := c.PutItem(ctx, kind, *name, item, *ifMatch)
	if err != nil {
		return err
	}
	if g.jsonOutput() {
		return g.printJSON(map[string]any{"revision": rev, strings.TrimSuffix(kind, "s"): item})
	}
	what := map[string]string{topology.ItemExemptions: "exempted", topology.ItemQuarantines: "quarantined"}[kind]
	fmt.Fprintf(g.stdout, "%s %s until %s (%s/%s, ticket %s): revision %d\n", what, prefix, entry.Until, kind, *name, *ticket, rev)
	if !g.now().Before(until) {
		fmt.Fprintf(g.stderr, "warning: %s is not in the future: the entry is stored but has already lapsed\n", entry.Until)
	}
	return nil
}

// parseSourcePrefix accepts a prefix in canonical form or a bare address
// (one host: /32, /128). Host bits are refused, as the server does, with
// the prefix that was probably meant.
func parseSourcePrefix(s string) (netip.Prefix, error) {
	if a, err := netip.ParseAddr(s); err == nil && a.Zone() == "" {
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, usagef("PREFIX %q is not an address or a CIDR prefix (10.1.3.7, 10.1.3.0/24, 2001:db8::/64)", s)
	}
	if m := p.Masked(); m != p {
		return netip.Prefix{}, usagef("PREFIX %s has host bits set; did you mean %s?", s, m)
	}
	return p, nil
}

// defaultOverrideName derives an item name from the verb and the prefix:
// exempt-10-1-3-7-32, quarantine-2001-db8--9-128.
func defaultOverrideName(verb string, p netip.Prefix) string {
	r := strings.NewReplacer(".", "-", ":", "-", "/", "-")
	return verb + "-" + r.Replace(p.String())
}

// parseLongDuration is time.ParseDuration plus whole days and weeks
// ("14d", "2w"), the units tickets are written in.
func parseLongDuration(s string) (time.Duration, error) {
	var d time.Duration
	if n, unit := strings.TrimRight(s, "dw"), strings.TrimLeft(s, "0123456789"); n != s && (unit == "d" || unit == "w") {
		v, err := strconv.Atoi(n)
		if err != nil || v <= 0 || v > 10*366 {
			return 0, fmt.Errorf("%q: want a positive number of days or weeks (at most about 10 years)", s)
		}
		d = time.Duration(v) * 24 * time.Hour
		if unit == "w" {
			d *= 7
		}
		return d, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration (36h, 90m, 14d, 2w)", s)
	}
	if d <= 0 {
		return 0, fmt.Errorf("%q must be positive", s)
	}
	return d, nil
}

// runDelete removes one item of the document: delete KIND NAME, the kind
// singular or plural (delete exemption ticket-4711, delete pools tokyo-dyn).
func runDelete(g *globals, args []string) error {
	fs := g.flagSet("delete")
	ifMatch := fs.Int64("if-match", 0, "only delete if the document is still at revision REV")
	pos, err := g.parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 2 {
		return usagef("usage: delete KIND NAME (KIND: %s; a dpid for bridges)", kindNames())
	}
	k, ok := topology.ItemKindNamed(pos[0])
	if !ok {
		k, ok = topology.ItemKindNamed(pos[0] + "s")
	}
	if !ok {
		return usagef("unknown kind %q (want one of %s)", pos[0], kindNames())
	}
	c, err := g.client()
	if err != nil {
		return err
	}
	ctx, cancel := g.context(defaultTimeout)
	defer cancel()
	rev, err := c.DeleteItem(ctx, k.Name, pos[1], *ifMatch)
	if err != nil {
		return err
	}
	if g.jsonOutput() {
		return g.printJSON(apitypes.WriteResult{Revision: rev})
	}
	fmt.Fprintf(g.stdout, "deleted %s/%s: revision %d\n", k.Name, pos[1], rev)
	return nil
}

func kindNames() string {
	names := make([]string, len(topology.ItemKinds))
	for i, k := range topology.ItemKinds {
		names[i] = k.Name
	}
	return strings.Join(names, ", ")
}
