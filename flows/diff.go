package flows

// Diff returns the changes that turn installed into desired. Flows are
// identified by Key; flows whose actions or cookie differ are modified.
// PLACEHOLDER ORDER: refined to make-before-break by the flows owner.
func Diff(desired, installed []Flow) []Change {
	have := make(map[Key]Flow, len(installed))
	for _, f := range installed {
		have[f.Key()] = f
	}
	var changes []Change
	want := make(map[Key]struct{}, len(desired))
	for _, f := range desired {
		want[f.Key()] = struct{}{}
		old, ok := have[f.Key()]
		switch {
		case !ok:
			changes = append(changes, Change{Op: OpAdd, Flow: f})
		case old.Actions != f.Actions || old.Cookie != f.Cookie:
			changes = append(changes, Change{Op: OpModify, Flow: f})
		}
	}
	for _, f := range installed {
		if _, ok := want[f.Key()]; !ok {
			changes = append(changes, Change{Op: OpDelete, Flow: f})
		}
	}
	return changes
}
