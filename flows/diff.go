package flows

import (
	"cmp"
	"slices"
)

// Diff returns the changes that turn installed into desired: an add for each
// desired flow not installed, a modify for each flow whose actions or cookie
// differ, a strict delete for each installed flow not desired, and nothing
// for flows that are already right. Flows are identified by Key. A modify
// whose cookie differs must be sent as an OFPFC_ADD (which replaces the entry,
// OF1.3 §6.4), because MODIFY leaves the cookie alone.
//
// The order is make-before-break for a switch that applies the changes one
// at a time (the fallback when a bundle is not available): after every
// prefix of the list, an SMTP-bound packet that both the installed and the
// desired policy drop is still dropped. The roles come from the cookies
// (see cookie.go), so Diff needs no Options. The stages:
//
//  1. drop-count and offender table: adds and modifies of drops and
//     counters, deletes of flows that forward (an observing pool's; see
//     Compile). None of these can forward anything.
//  2. destination tightening: adds and modifies whose result is a drop,
//     deletes of forwarding flows. The destination table is then the
//     intersection of old and new: it forwards a (service, packet) only if
//     both old and new forward it.
//  3. source table: adds from the most specific prefix down, then modifies,
//     then deletes from the least specific prefix up. At every step the
//     longest present prefix containing a source is the old policy's or the
//     new policy's choice for that source, with that policy's action, so the
//     verdict is no looser than old or than new.
//  4. classifier: adds from high to low priority (SMTP ports before the
//     catch-all Continue), modifies, deletes from low to high. A packet sent
//     on by a missing port flow is one that the policy lacking that port
//     forwards anyway.
//  5. destination loosening: the remaining adds, modifies and deletes; the
//     new policy's drops are all present already, so each step forwards only
//     what the new policy forwards.
//  6. drop-count and offender table: adds and modifies of flows that
//     forward (an observing pool's: once every other table is the new
//     policy's, only the new policy's packets of that pool reach it), then
//     deletes of drops and counters.
//
// Changing Options.FirstTable moves every flow to other tables; that is not
// make-before-break on the one-by-one path (use a bundle).
func Diff(desired, installed []Flow) []Change {
	have := newFlowIndex(installed)
	want := newFlowIndex(desired)
	var changes []Change
	for i, f := range desired {
		if !want.first(int32(i)) {
			continue // a duplicate key: the first one is the desired flow
		}
		j, ok := have.lookup(f.Key(), want.hashes[i])
		switch {
		case !ok:
			changes = append(changes, Change{Op: OpAdd, Flow: f})
		case installed[j].Actions != f.Actions || installed[j].Cookie != f.Cookie:
			changes = append(changes, Change{Op: OpModify, Flow: f})
		}
	}
	for i, f := range installed {
		if !have.first(int32(i)) {
			continue
		}
		if _, ok := want.lookup(f.Key(), have.hashes[i]); !ok {
			changes = append(changes, Change{Op: OpDelete, Flow: f})
		}
	}
	slices.SortStableFunc(changes, compareChanges)
	return changes
}

// stage numbers follow the list in Diff's comment; within the source and
// classifier tables the op order is add, modify, delete.
func stage(c Change) int {
	role := CookieRole(c.Flow.Cookie)
	switch role {
	case RoleDropCount: // and the offender table
		// Drops and counters first, and a flow that forwards (an observing
		// pool) last: adding or changing one loosens, deleting one tightens.
		if (c.Op == OpDelete) != c.Flow.Actions.IsDrop() {
			return 10
		}
		if c.Op == OpDelete {
			return 90
		}
		return 85
	case RoleDestination:
		dropping := c.Flow.Actions.IsDrop() || c.Flow.Actions.Goto && c.Flow.Actions.GotoTable == c.Flow.Table+1
		if (c.Op == OpDelete) != dropping {
			return 20 // tightening
		}
		return 80
	case RoleSource:
		return 30 + int(c.Op)
	default: // classifier
		return 50 + int(c.Op)
	}
}

func compareChanges(a, b Change) int {
	if c := cmp.Compare(stage(a), stage(b)); c != 0 {
		return c
	}
	fa, fb := a.Flow, b.Flow
	if c := cmp.Compare(fa.Table, fb.Table); c != 0 {
		return c
	}
	if fa.Priority != fb.Priority {
		// Adds (and modifies) from high to low priority, deletes from low to
		// high: see stages 3 and 4.
		if a.Op == OpDelete {
			return cmp.Compare(fa.Priority, fb.Priority)
		}
		return cmp.Compare(fb.Priority, fa.Priority)
	}
	return compareMatch(fa.Match, fb.Match)
}
