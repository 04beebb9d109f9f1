package topology

// MaxFlowsPerBridge bounds the flows a document may compile to on one
// bridge. The per-collection limits alone do not bound it: the destination
// table holds, for every service in use, its relays plus the prefixes of the
// sets it blocks, so 1,000 services × 10k relays would be valid item by item
// yet need 10⁷ flows. flows.Compile enforces the same bound; checking it here
// turns what would be a compile failure on every bridge into a 400.
const MaxFlowsPerBridge = 1_000_000

// worstCaseFlows is an upper bound of the flow count of any bridge at any
// instant, mirroring the pipeline in package flows: two flows per pool (the
// source table and the per-pool drop counter), two per port (tcp and tcp6),
// a handful of catch-alls, one per exemption and two per quarantine, and for
// each service that a dynamic pool uses, the
// largest destination table any of its phases needs. It only reads names and
// counts, so it is safe on a document with other problems.
func worstCaseFlows(doc *Document) int {
	setSize := make(map[string]int, len(doc.Destinations))
	for _, d := range doc.Destinations {
		setSize[d.Name] = len(d.Prefixes)
	}
	used := make(map[string]bool)
	for _, p := range doc.Pools {
		if p.Kind == KindDynamic {
			used[p.Service] = true
		}
	}
	// An exemption is one source flow; a quarantine a source flow and its
	// drop counter.
	n := 2*len(doc.Pools) + 2*len(doc.EffectivePorts()) + 5 + len(doc.Exemptions) + 2*len(doc.Quarantines)
	for _, s := range doc.Services {
		if !used[s.Name] {
			continue
		}
		largest := 0
		for _, ph := range s.Phases {
			size := 1 // the service default
			if ph.PermitsRelays() {
				size += len(doc.Relays)
			}
			if !ph.Block.All {
				for _, set := range ph.Block.Sets {
					size += setSize[set]
				}
			}
			largest = max(largest, size)
		}
		n += largest
	}
	return n
}

func (v *validator) flowBudget(doc *Document) {
	if n := worstCaseFlows(doc); n > MaxFlowsPerBridge {
		v.add("services", "this document needs up to %d flows on one bridge (the limit is %d): "+
			"every service in use gets one flow per relay and per prefix of the sets it blocks; "+
			"use fewer services, or merge services that share a rollout", n, MaxFlowsPerBridge)
	}
}
