package main

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/op25b/op25b/api/apitypes"
)

// pollInterval is how often status --wait-revision asks again.
const pollInterval = 500 * time.Millisecond

// defaultWait bounds status --wait-revision when --timeout is not given.
const defaultWait = time.Minute

func runStatus(g *globals, args []string) error {
	fs := g.flagSet("status")
	wait := fs.Int64("wait-revision", 0, "wait until every registered bridge is connected and applied this revision")
	allowDisconnected := fs.Bool("allow-disconnected", false, "with --wait-revision: do not wait for registered bridges that are not connected")
	if _, err := g.parseInterleaved(fs, args); err != nil {
		return err
	}
	if *wait < 0 {
		return usagef("--wait-revision must be >= 0")
	}
	c, err := g.client()
	if err != nil {
		return err
	}
	if *wait == 0 {
		ctx, cancel := g.context(defaultTimeout)
		defer cancel()
		st, err := c.Status(ctx)
		if err != nil {
			return err
		}
		return printStatus(g, st)
	}
	timeout := g.timeout
	if timeout <= 0 {
		timeout = defaultWait
	}
	ctx, cancel := g.context(defaultWait)
	defer cancel()
	var last *apitypes.Status
	var lastErr error
	for {
		st, err := c.Status(ctx)
		if err == nil {
			last, lastErr = st, nil
			v := waitVerdict(st, *wait, *allowDisconnected)
			if v.done() {
				if err := printStatus(g, st); err != nil {
					return err
				}
				if len(v.disconnected) > 0 {
					fmt.Fprintf(g.stderr, "note: not connected, so not confirmed (--allow-disconnected): %s\n", strings.Join(v.disconnected, ", "))
				}
				if !anyConnected(st) {
					// The API promises this for connected bridges only; say so
					// rather than let a script believe a switch confirmed it.
					fmt.Fprintf(g.stderr, "note: no bridge is connected; revision %d is stored but no switch confirmed it\n", *wait)
				}
				return nil
			}
		} else if ctx.Err() == nil {
			lastErr = err
		}
		select {
		case <-ctx.Done():
			return waitTimeout(g, last, lastErr, *wait, *allowDisconnected, timeout)
		case <-time.After(pollInterval):
		}
	}
}

// waitTimeout explains why status --wait-revision gave up, naming the
// bridges that did not make it.
func waitTimeout(g *globals, st *apitypes.Status, lastErr error, rev int64, allowDisconnected bool, timeout time.Duration) error {
	if st == nil {
		if lastErr == nil {
			lastErr = context.DeadlineExceeded
		}
		return fmt.Errorf("timeout after %s waiting for revision %d: %w", timeout, rev, lastErr)
	}
	if err := printStatus(g, st); err != nil {
		return err
	}
	if st.Revision < rev {
		return fmt.Errorf("timeout after %s: the cluster is at revision %d, not %d", timeout, st.Revision, rev)
	}
	v := waitVerdict(st, rev, allowDisconnected)
	var why []string
	if len(v.lagging) > 0 {
		why = append(why, "not at revision "+fmt.Sprint(rev)+": "+strings.Join(v.lagging, ", "))
	}
	if len(v.disconnected) > 0 && !allowDisconnected {
		why = append(why, "registered but not connected to any replica: "+strings.Join(v.disconnected, ", ")+
			" (--allow-disconnected to accept that)")
	}
	return fmt.Errorf("timeout after %s: %s", timeout, strings.Join(why, "; "))
}

// verdict is what stands between the cluster and "revision N is in the
// switches".
type verdict struct {
	atRevision   bool
	lagging      []string // connected bridges below the revision
	disconnected []string // registered bridges no replica is connected to
	allowDisc    bool
}

func (v verdict) done() bool {
	return v.atRevision && len(v.lagging) == 0 && (v.allowDisc || len(v.disconnected) == 0)
}

// waitVerdict: applied_revision >= revision on every connected bridge
// means the change is in those switches; a registered bridge that no
// replica is connected to has not confirmed anything, so it counts as not
// there unless the operator allows it.
func waitVerdict(st *apitypes.Status, rev int64, allowDisconnected bool) verdict {
	v := verdict{atRevision: st.Revision >= rev, allowDisc: allowDisconnected}
	for _, b := range st.Bridges {
		switch {
		case b.Connected && b.AppliedRevision < rev:
			desc := fmt.Sprintf("%s (applied %d", bridgeLabel(b), b.AppliedRevision)
			if b.LastError != "" {
				desc += ", last error: " + b.LastError
			}
			v.lagging = append(v.lagging, desc+")")
		case !b.Connected && b.Registered:
			v.disconnected = append(v.disconnected, bridgeLabel(b))
		}
	}
	sort.Strings(v.lagging)
	sort.Strings(v.disconnected)
	return v
}

func bridgeLabel(b apitypes.BridgeView) string {
	if b.Name != "" {
		return string(b.DPID) + " " + b.Name
	}
	return string(b.DPID)
}

func anyConnected(st *apitypes.Status) bool {
	for _, b := range st.Bridges {
		if b.Connected {
			return true
		}
	}
	return false
}

func printStatus(g *globals, st *apitypes.Status) error {
	if g.jsonOutput() {
		return g.printJSON(st)
	}
	var ids []string
	for _, r := range st.Replicas {
		ids = append(ids, r.ID)
	}
	fmt.Fprintf(g.stdout, "revision %d, %d replica(s): %s\n", st.Revision, len(st.Replicas), strings.Join(ids, ", "))
	if st.DocumentError != "" {
		fmt.Fprintf(g.stdout, "WARNING: etcd holds an invalid document; revision %d stays enforced: %s\n", st.Revision, st.DocumentError)
	}
	fmt.Fprintln(g.stdout)
	tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "DPID\tNAME\tPOP\tCONNECTED\tMASTER\tAPPLIED\tFLOWS\tDRIFT\tLAST ERROR")
	for _, b := range st.Bridges {
		name := b.Name
		if !b.Registered {
			name = "(unregistered)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%d\t%s\t%s\n", b.DPID, name, dash(b.Pop), yesNo(b.Connected), dash(b.Master), b.AppliedRevision, b.Flows,
			dash(b.DriftDetection), dash(b.LastError))
	}
	return tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
