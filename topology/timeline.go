package topology

import (
	"slices"
	"sort"
	"time"
)

// PopTimeline is one service's rollout as seen from one pop: the phases
// that apply there in the order they take effect, the one active at an
// instant and the next boundary. A phase has no name in the document; it
// is known by its index, its position in the service's "phases" (the 1 of
// services[0].phases[1]).
type PopTimeline struct {
	Pop string
	// Phases are the indexes of the phases that apply at Pop, by start
	// (a phase without "from" first; equal starts in list order).
	Phases []int
	// Active is the index of the phase active at the instant, the one
	// ActivePhase returns; -1 when none applies yet (SMTP is forwarded).
	Active int
	// Next is the index of the phase that becomes active at NextAt, the
	// next boundary at Pop; -1 (and NextAt zero) when no later phase of
	// the service applies at Pop.
	Next   int
	NextAt time.Time
}

// Timeline returns the rollout of service at a bridge in pop at instant
// at, by the rule ActivePhase implements (docs/semantics.md, phases).
// Phases whose "from" does not parse (only possible in a document that
// was not validated) never apply, as there. An unknown service has no
// phases.
func (d *Document) Timeline(service, pop string, at time.Time) PopTimeline {
	tl := PopTimeline{Pop: pop, Active: -1, Next: -1}
	s, ok := d.Service(service)
	if !ok {
		return tl
	}
	starts := map[int]phaseStart{}
	var activeStart phaseStart
	for i, ph := range s.Phases {
		start, ok := parseStart(ph.From)
		if !ok || !appliesToPop(ph.Pops, pop) {
			continue
		}
		starts[i] = start
		tl.Phases = append(tl.Phases, i)
		if !start.set || !start.at.After(at) {
			// Ties go to the later phase in the list, as in ActivePhase.
			if tl.Active < 0 || !start.before(activeStart) {
				tl.Active, activeStart = i, start
			}
			continue
		}
		// A later start: the earliest one is the next boundary; of equal
		// starts the later in the list is the one that will be active.
		if tl.Next < 0 || !start.at.After(tl.NextAt) {
			tl.Next, tl.NextAt = i, start.at
		}
	}
	sort.SliceStable(tl.Phases, func(a, b int) bool { return starts[tl.Phases[a]].before(starts[tl.Phases[b]]) })
	return tl
}

// Pops returns every pop the document names, in its bridges and in its
// phases' "pops", sorted and without duplicates. Pop "" (unregistered
// bridges) is not one of them.
func (d *Document) Pops() []string {
	if d == nil {
		return nil
	}
	var pops []string
	for _, b := range d.Bridges {
		if b.Pop != "" {
			pops = append(pops, b.Pop)
		}
	}
	for _, s := range d.Services {
		for _, ph := range s.Phases {
			for _, p := range ph.Pops {
				if p != "" {
					pops = append(pops, p)
				}
			}
		}
	}
	slices.Sort(pops)
	return slices.Compact(pops)
}
