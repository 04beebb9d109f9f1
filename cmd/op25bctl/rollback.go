package main

import (
	"fmt"
	"strconv"

	"github.com/op25b/op25b/api/apitypes"
	"github.com/op25b/op25b/client"
)

// runRollback stores the document of an earlier revision again. The write
// is conditional on the current revision (--if-match, or the one read just
// before), so a rollback never undoes a change it did not see; the audit
// log records it as a rollback to that revision.
func runRollback(g *globals, args []string) error {
	fs := g.flagSet("rollback")
	dryRun := fs.Bool("dry-run", false, "show what the rollback would change; store nothing")
	ifMatch := fs.Int64("if-match", 0, "only roll back if the stored revision is still REV (default: the revision read just before)")
	pos, err := g.parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("usage: rollback REVISION")
	}
	target, err := strconv.ParseInt(pos[0], 10, 64)
	if err != nil || target <= 0 {
		return usagef("REVISION must be a positive integer, got %q", pos[0])
	}
	c, err := g.client()
	if err != nil {
		return err
	}
	ctx, cancel := g.context(defaultTimeout)
	defer cancel()
	current := *ifMatch
	if current == 0 {
		cfg, err := c.Config(ctx)
		if err != nil {
			return err
		}
		current = cfg.Revision
	}
	if *dryRun {
		old, err := c.ConfigAt(ctx, target)
		if err != nil {
			return err
		}
		_, err = showDiff(g, old.Document, current)
		return err
	}
	rev, err := c.Rollback(ctx, target, current)
	if err != nil {
		if client.ErrorCode(err) == apitypes.CodeConflict {
			return fmt.Errorf("%s; look at `op25bctl history` and run the rollback again if it is still what you want", conflictSummary(err))
		}
		return err
	}
	if g.jsonOutput() {
		return g.printJSON(apitypes.WriteResult{Revision: rev})
	}
	fmt.Fprintf(g.stdout, "rolled back to revision %d: revision %d\n", target, rev)
	return nil
}
