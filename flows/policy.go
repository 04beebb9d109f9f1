package flows

import (
	"strings"
	"time"

	"github.com/op25b/op25b/topology"
)

// These wrappers are the only place flows reads phase and bridge semantics
// (contract §3); Compile and Evaluate share them so that the property tests
// compare pipeline design against the plain §1 rules, not two readings of §3.
// TODO(flows): delegate to topology's ActivePhase/BridgePop/EffectivePorts
// once they land.

func activePhase(doc *topology.Document, service, pop string, at time.Time) (topology.Phase, bool) {
	var (
		best     topology.Phase
		bestFrom time.Time
		found    bool
	)
	for _, s := range doc.Services {
		if s.Name != service {
			continue
		}
		for _, ph := range s.Phases {
			var from time.Time
			if ph.From != "" {
				t, err := time.Parse(time.RFC3339, ph.From)
				if err != nil || t.After(at) {
					continue
				}
				from = t
			}
			if len(ph.Pops) > 0 && !contains(ph.Pops, pop) {
				continue
			}
			if !found || !from.Before(bestFrom) {
				best, bestFrom, found = ph, from, true
			}
		}
	}
	return best, found
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func bridgePop(doc *topology.Document, dpid string) string {
	for _, b := range doc.Bridges {
		if strings.EqualFold(b.DPID, dpid) {
			return b.Pop
		}
	}
	return ""
}

func effectivePorts(doc *topology.Document) []int {
	if len(doc.Ports) == 0 {
		return topology.DefaultPorts
	}
	return doc.Ports
}
