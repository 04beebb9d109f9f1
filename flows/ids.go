package flows

import (
	"hash/fnv"
	"slices"
)

// stableIDs gives every name a non-zero 32-bit id that depends only on the
// name, so adding or removing one pool or service leaves every other id
// (and therefore every other flow's match and metadata) untouched: the diff
// of a one-pool change stays a handful of flows even at 100k pools.
//
// The id is FNV-1a of the name; on a collision the names are taken in sorted
// order and the later one probes linearly to the next free id. So another
// name's id changes only when a newly added name both collides with it and
// sorts before it (probability about n/2^32 per change, ~2e-5 at 100k pools).
// Zero is skipped so that metadata 0 (a packet that never went through the
// source table) never selects a service or pool.
func stableIDs(names []string) map[string]uint32 {
	sorted := slices.Clone(names)
	slices.Sort(sorted)
	ids := make(map[string]uint32, len(sorted))
	taken := make(map[uint32]struct{}, len(sorted))
	for _, name := range sorted {
		if _, dup := ids[name]; dup {
			continue
		}
		h := fnv.New32a()
		_, _ = h.Write([]byte(name))
		id := h.Sum32()
		for {
			if id == 0 {
				id = 1
			}
			if _, used := taken[id]; !used {
				break
			}
			id++
		}
		taken[id] = struct{}{}
		ids[name] = id
	}
	return ids
}
