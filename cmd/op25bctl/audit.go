package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/op25b/op25b/api/apitypes"
)

func runAudit(g *globals, args []string) error {
	fs := g.flagSet("audit")
	limit := fs.Int("limit", 50, "records to show (1..1000)")
	before := fs.Int64("before", 0, "only records older than this revision (paging)")
	if _, err := g.parseInterleaved(fs, args); err != nil {
		return err
	}
	resp, err := fetchAudit(g, *limit, *before)
	if err != nil {
		return err
	}
	if g.jsonOutput() {
		return g.printJSON(resp)
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
		if r.Op == apitypes.OpRollback {
			ch = append([]string{fmt.Sprintf("(rollback to %d)", r.RollbackOf)}, ch...)
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

func fetchAudit(g *globals, limit int, before int64) (*apitypes.Audit, error) {
	if limit < 1 || limit > 1000 || before < 0 {
		return nil, usagef("--limit must be in 1..1000 and --before >= 0")
	}
	c, err := g.client()
	if err != nil {
		return nil, err
	}
	ctx, cancel := g.context(defaultTimeout)
	defer cancel()
	return c.Audit(ctx, limit, before)
}

// runHistory shows each write with what it changed in each item, old value
// → new value, so that an operator can tell which revision to roll back to.
func runHistory(g *globals, args []string) error {
	fs := g.flagSet("history")
	limit := fs.Int("limit", 20, "writes to show (1..1000)")
	before := fs.Int64("before", 0, "only writes older than this revision (paging)")
	if _, err := g.parseInterleaved(fs, args); err != nil {
		return err
	}
	resp, err := fetchAudit(g, *limit, *before)
	if err != nil {
		return err
	}
	if g.jsonOutput() {
		return g.printJSON(resp)
	}
	w := g.stdout
	for i, r := range resp.Records {
		if i > 0 {
			fmt.Fprintln(w)
		}
		head := fmt.Sprintf("revision %d  %s  %s", r.Revision, r.Time.Local().Format(time.RFC3339), dash(r.Who))
		switch {
		case r.Op == apitypes.OpRollback:
			head += fmt.Sprintf("  rollback to revision %d", r.RollbackOf)
		case r.Op != "":
			head += "  " + r.Op
		}
		if r.Base > 0 {
			head += fmt.Sprintf("  (was %d)", r.Base)
		}
		fmt.Fprintln(w, head)
		if len(r.Changes) == 0 {
			// A record written before op25b kept item values.
			for _, it := range r.Added {
				fmt.Fprintf(w, "  + %s\n", it)
			}
			for _, it := range r.Changed {
				fmt.Fprintf(w, "  ~ %s\n", it)
			}
			for _, it := range r.Removed {
				fmt.Fprintf(w, "  - %s\n", it)
			}
			continue
		}
		for _, ch := range r.Changes {
			fmt.Fprintf(w, "  %s\n", describeChange(ch))
		}
		if more := r.ChangesTotal - len(r.Changes); more > 0 {
			fmt.Fprintf(w, "  ... and %d more (compare: op25bctl get config --revision %d, and --revision %d)\n", more, r.Base, r.Revision)
		}
	}
	if resp.NextBefore > 0 {
		fmt.Fprintf(w, "\n(older: op25bctl history --before %d)\n", resp.NextBefore)
	}
	return nil
}

// describeChange renders one item change on one line: "+ item: value",
// "- item: value", or "~ item: field old → new, ...".
func describeChange(ch apitypes.ItemChange) string {
	switch {
	case len(ch.Old) == 0:
		return fmt.Sprintf("+ %s: %s", ch.Item, compactJSON(ch.New))
	case len(ch.New) == 0:
		return fmt.Sprintf("- %s: %s", ch.Item, compactJSON(ch.Old))
	}
	var before, after map[string]json.RawMessage
	if json.Unmarshal(ch.Old, &before) != nil || json.Unmarshal(ch.New, &after) != nil {
		return fmt.Sprintf("~ %s: %s → %s", ch.Item, compactJSON(ch.Old), compactJSON(ch.New))
	}
	keys := map[string]bool{}
	for k := range before {
		keys[k] = true
	}
	for k := range after {
		keys[k] = true
	}
	names := make([]string, 0, len(keys))
	for k := range keys {
		names = append(names, k)
	}
	sort.Strings(names)
	var parts []string
	for _, k := range names {
		o, n := before[k], after[k]
		if bytes.Equal(o, n) {
			continue
		}
		parts = append(parts, fmt.Sprintf("%s %s → %s", k, fieldValue(o), fieldValue(n)))
	}
	return fmt.Sprintf("~ %s: %s", ch.Item, strings.Join(parts, ", "))
}

func fieldValue(raw json.RawMessage) string {
	if len(raw) == 0 {
		return "(absent)"
	}
	var s string
	if json.Unmarshal(raw, &s) == nil && s != "" && !strings.ContainsAny(s, " ,") {
		return s
	}
	if s == "" && string(raw) == `""` {
		return strconv.Quote("")
	}
	return compactJSON(raw)
}

func compactJSON(raw json.RawMessage) string {
	var b bytes.Buffer
	if json.Compact(&b, raw) != nil {
		return string(raw)
	}
	return b.String()
}
