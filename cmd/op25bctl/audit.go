package main

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/op25b/op25b/api"
)

func runAudit(g *globals, args []string) error {
	fs := g.flagSet("audit")
	limit := fs.Int("limit", 50, "records to show (1..1000)")
	before := fs.Int64("before", 0, "only records older than this revision (paging)")
	if _, err := g.parseInterleaved(fs, args); err != nil {
		return err
	}
	q := url.Values{}
	q.Set("limit", strconv.Itoa(*limit))
	if *before > 0 {
		q.Set("before", strconv.FormatInt(*before, 10))
	}
	var resp api.AuditResponse
	raw, err := g.call(http.MethodGet, "/v1/audit?"+q.Encode(), nil, nil, &resp)
	if err != nil {
		return err
	}
	if g.jsonOutput() {
		g.printRaw(raw)
		return nil
	}
	tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "REVISION\tTIME\tWHO\tCHANGES")
	for _, r := range resp.Records {
		var ch []string
		for _, it := range r.Added {
			ch = append(ch, "+"+it)
		}
		for _, it := range r.Changed {
			ch = append(ch, "~"+it)
		}
		for _, it := range r.Removed {
			ch = append(ch, "-"+it)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", r.Revision, r.Time.Local().Format(time.RFC3339), r.Who, strings.Join(ch, " "))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if resp.NextBefore > 0 {
		fmt.Fprintf(g.stdout, "(older: op25bctl audit --before %d)\n", resp.NextBefore)
	}
	return nil
}
