package main

import (
	"fmt"
	"net/http"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/op25b/op25b/api"
)

// pollInterval is how often status --wait-revision asks again.
const pollInterval = 500 * time.Millisecond

func runStatus(g *globals, args []string) error {
	fs := g.flagSet("status")
	wait := fs.Int64("wait-revision", 0, "wait until every connected bridge applied this revision")
	timeout := fs.Duration("timeout", time.Minute, "how long --wait-revision waits")
	if _, err := g.parseInterleaved(fs, args); err != nil {
		return err
	}
	if *wait < 0 || *timeout <= 0 {
		return usagef("--wait-revision must be >= 0 and --timeout > 0")
	}
	if *wait == 0 {
		st, raw, err := fetchStatus(g)
		if err != nil {
			return err
		}
		printStatus(g, st, raw)
		return nil
	}
	deadline := time.Now().Add(*timeout)
	for {
		st, raw, err := fetchStatus(g)
		if err == nil {
			if lagging := laggingBridges(st, *wait); len(lagging) == 0 && st.Revision >= *wait {
				printStatus(g, st, raw)
				if !anyConnected(st) {
					// The API promises this for connected bridges only; say so
					// rather than let a script believe a switch confirmed it.
					fmt.Fprintf(g.stderr, "note: no bridge is connected; revision %d is stored but no switch confirmed it\n", *wait)
				}
				return nil
			} else if time.Now().After(deadline) {
				printStatus(g, st, raw)
				if st.Revision < *wait {
					return fmt.Errorf("timeout after %s: the cluster is at revision %d, not %d", *timeout, st.Revision, *wait)
				}
				return fmt.Errorf("timeout after %s: not at revision %d: %s", *timeout, *wait, strings.Join(lagging, ", "))
			}
		} else if time.Now().After(deadline) {
			return fmt.Errorf("timeout after %s waiting for revision %d: %w", *timeout, *wait, err)
		}
		time.Sleep(pollInterval)
	}
}

func fetchStatus(g *globals) (*api.StatusResponse, []byte, error) {
	var st api.StatusResponse
	raw, err := g.call(http.MethodGet, "/v1/status", nil, nil, &st)
	if err != nil {
		return nil, nil, err
	}
	return &st, raw, nil
}

// laggingBridges lists the connected bridges below revision rev (docs/rest-api.md:
// applied_revision >= revision on every connected bridge means the
// change is in the switches).
func laggingBridges(st *api.StatusResponse, rev int64) []string {
	var out []string
	for _, b := range st.Bridges {
		if b.Connected && b.AppliedRevision < rev {
			desc := fmt.Sprintf("%s (applied %d", b.DPID, b.AppliedRevision)
			if b.LastError != "" {
				desc += ", last error: " + b.LastError
			}
			out = append(out, desc+")")
		}
	}
	sort.Strings(out)
	return out
}

func anyConnected(st *api.StatusResponse) bool {
	for _, b := range st.Bridges {
		if b.Connected {
			return true
		}
	}
	return false
}

func printStatus(g *globals, st *api.StatusResponse, raw []byte) {
	if g.jsonOutput() {
		g.printRaw(raw)
		return
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
	fmt.Fprintln(tw, "DPID\tNAME\tPOP\tCONNECTED\tMASTER\tAPPLIED\tFLOWS\tLAST ERROR")
	for _, b := range st.Bridges {
		name := b.Name
		if !b.Registered {
			name = "(unregistered)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%d\t%s\n", b.DPID, name, dash(b.Pop), yesNo(b.Connected), dash(b.Master), b.AppliedRevision, b.Flows, dash(b.LastError))
	}
	tw.Flush()
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
