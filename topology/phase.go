package topology

import (
	"slices"
	"time"
)

// EffectivePorts returns the SMTP ports of the document: its "ports", or
// DefaultPorts when there are none (docs/semantics.md). The result may be the
// document's own slice; callers must not modify it.
func (d *Document) EffectivePorts() []int {
	if d == nil || len(d.Ports) == 0 {
		return DefaultPorts
	}
	return d.Ports
}

// BridgePop returns the pop of the bridge with this datapath id and
// whether the bridge is registered in "bridges". An unregistered bridge is
// still enforced, with pop "" (docs/semantics.md, phases): only phases
// without "pops" apply to it.
func (d *Document) BridgePop(dpid DPID) (pop string, registered bool) {
	if d == nil {
		return "", false
	}
	for _, b := range d.Bridges {
		if b.DPID == dpid {
			return b.Pop, true
		}
	}
	return "", false
}

// Service returns the service with this name.
func (d *Document) Service(name string) (Service, bool) {
	if d == nil {
		return Service{}, false
	}
	for _, s := range d.Services {
		if s.Name == name {
			return s, true
		}
	}
	return Service{}, false
}

// ActivePhase implements the phase rule of docs/semantics.md for one service, at a bridge in `pop`,
// at instant `at`: a phase applies when its "from" is absent or not after
// `at` (a phase starting exactly at `at` is already active) and its "pops"
// is absent or contains `pop`; of the phases that apply, the one with the
// latest "from" is active, an absent "from" counting as the beginning of
// time. False means no phase applies: SMTP is forwarded (not yet rolled out).
//
// Validate guarantees that at most one phase can win. On an unvalidated
// document ties go to the later phase in the list and phases whose "from"
// does not parse never apply, so the function still never panics.
func (d *Document) ActivePhase(service, pop string, at time.Time) (Phase, bool) {
	s, ok := d.Service(service)
	if !ok {
		return Phase{}, false
	}
	var (
		best      Phase
		bestStart phaseStart
		found     bool
	)
	for _, ph := range s.Phases {
		start, ok := parseStart(ph.From)
		if !ok || start.set && start.at.After(at) {
			continue
		}
		if !appliesToPop(ph.Pops, pop) {
			continue
		}
		if !found || !start.before(bestStart) {
			best, bestStart, found = ph, start, true
		}
	}
	return best, found
}

func parseStart(from string) (phaseStart, bool) {
	if from == "" {
		return phaseStart{}, true
	}
	t, err := ParseTime(from)
	if err != nil {
		return phaseStart{}, false
	}
	return phaseStart{set: true, at: t}, true
}

// appliesToPop: a phase without pops applies everywhere, including to
// bridges with pop "" (unregistered ones); a phase with pops never applies
// to pop "".
func appliesToPop(pops []string, pop string) bool {
	if len(pops) == 0 {
		return true
	}
	return pop != "" && slices.Contains(pops, pop)
}

// NextChange returns the earliest instant strictly after `at` at which the
// policy of some bridge may change by itself: a phase start (across all
// services and pops) or the until of an exemption or a quarantine. The
// controller arms a timer for it and re-evaluates with no API call
// (docs/semantics.md). False when there is none. The instant may be
// centuries away (RFC 3339 allows year 9999); callers arming a timer must
// cope with durations beyond time.Duration's ~292 years.
func (d *Document) NextChange(at time.Time) (time.Time, bool) {
	if d == nil {
		return time.Time{}, false
	}
	var (
		next  time.Time
		found bool
	)
	for _, s := range d.Services {
		for _, ph := range s.Phases {
			start, ok := parseStart(ph.From)
			if !ok || !start.set || !start.at.After(at) {
				continue
			}
			if !found || start.at.Before(next) {
				next, found = start.at, true
			}
		}
	}
	consider := func(until string) {
		t, err := ParseTime(until)
		if err == nil && t.After(at) && (!found || t.Before(next)) {
			next, found = t, true
		}
	}
	for _, e := range d.Exemptions {
		consider(e.Until)
	}
	for _, q := range d.Quarantines {
		consider(q.Until)
	}
	return next, found
}
