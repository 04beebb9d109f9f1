package soak

import (
	"fmt"
	"io"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/op25b/op25b/flows"
	"github.com/op25b/op25b/topology"
)

// Windows are the documented tolerances of the checker (lab/README.md, "How
// the checker judges"). None of them excuses a leak during a fault: a fault
// never widens what the policy permits.
type Windows struct {
	// Apply: after a write is acknowledged, the bridges may enforce the
	// document before it for this long (the master learns the revision
	// from etcd, compiles and commits a bundle; a dead or partitioned
	// master first loses its lease to another replica).
	Apply time.Duration
	// Timer: a phase boundary or an until takes effect on the bridge within
	// this much of its instant (the controller's timer slack).
	Timer time.Duration
	// FaultTimer replaces Timer when a control-plane fault (a replica
	// killed, restarted or partitioned, etcd members stopped) was under way
	// within Apply before the instant: the new master applies it on
	// takeover.
	FaultTimer time.Duration
	// Reinstall: after ovs-vswitchd is back, its bridges are empty and
	// fail-secure (everything drops) until op25b reinstalls its flows.
	Reinstall time.Duration
	// Repair: after op25b's flows were wiped or altered by hand, op25b
	// repairs them within this long (flow monitoring, else the audit).
	Repair time.Duration
	// Converge: every bridge at the final document within this long of the
	// last fault's end.
	Converge time.Duration
	// Clock: the slack around an audit record's time when no acknowledged
	// write brackets the revision (the setup's own write, a write whose
	// answer was lost).
	Clock time.Duration
}

// DefaultWindows are the soak's windows.
var DefaultWindows = Windows{
	Apply:      20 * time.Second,
	Timer:      3 * time.Second,
	FaultTimer: 20 * time.Second,
	Reinstall:  15 * time.Second,
	Repair:     15 * time.Second,
	Converge:   15 * time.Second,
	Clock:      2 * time.Second,
}

// Violation kinds.
const (
	VLost        = "lost-write"           // an acknowledged revision is not in the history
	VContent     = "content-mismatch"     // ... or is, with other content
	VReordered   = "reordered-write"      // acknowledged in one order, stored in the other
	VPhantom     = "phantom-revision"     // a revision no write of the soak explains
	VFinal       = "final-document"       // the final document is not the last acknowledged one
	VConverge    = "not-converged"        // a bridge not at the final document within Converge
	VLeak        = "leak"                 // a probe got through while every policy in force said drop
	VFalseBlock  = "false-block"          // a probe was dropped while every policy in force said forward
	VPanic       = "daemon-panic"         // a daemon log says panic, bug or fatal
	VHistoryGap  = "history-order"        // the history itself is out of order
	VEmptyProbes = "no-probes"            // nothing was probed: the soak proved nothing
	VNoQuorum    = "acked-without-quorum" // a write acknowledged while two of three etcd members were down
)

// Violation is one broken promise, with the instant the timeline is
// printed around.
type Violation struct {
	Kind   string
	At     time.Time
	Detail string
	// Probe is the probe that broke it, for leaks and false blocks.
	Probe *Probe
}

// Report is the checker's verdict on a history.
type Report struct {
	Seed        int64
	Faults      map[Kind]int
	FaultErrors int
	Writes      map[string]int // acked, refused, indeterminate
	Refusals    map[string]int // "409 revision_conflict", "503 unavailable", "timeout", ...
	Revisions   int
	Probes      map[string]int // "forward", "drop", "error"
	// Expected counts probes by what the policy in force said: "drop",
	// "forward", or "either" (inside a window).
	Expected    map[string]int
	Excused     int // dropped probes inside a fault window (vswitchd down, flows tampered)
	Converged   time.Duration
	Violations  []Violation
	history     *History
	revisionIdx []span
}

// OK reports whether the history keeps every promise.
func (r *Report) OK() bool { return len(r.Violations) == 0 }

// span is when a revision's document may be what a bridge enforces.
type span struct {
	rev      Revision
	from, to time.Time // to is zero for the last one
}

// Check judges a soak's history.
func Check(h *History, w Windows) *Report {
	r := &Report{Seed: h.Seed, Faults: map[Kind]int{}, Writes: map[string]int{}, Refusals: map[string]int{},
		Probes: map[string]int{}, Expected: map[string]int{}, history: h}
	for _, f := range h.Faults {
		r.Faults[f.Kind]++
		if f.Error != "" {
			r.FaultErrors++
		}
	}
	for _, wr := range h.Writes {
		r.Writes[wr.Outcome]++
		if wr.Outcome != Acked {
			r.Refusals[refusal(wr)]++
		}
	}
	r.checkHistory(h)
	r.checkQuorum(h)
	r.revisionIdx = spans(h, w)
	r.checkProbes(h, w)
	r.checkConvergence(h, w)
	for _, f := range h.LogFindings {
		r.add(Violation{Kind: VPanic, At: f.At, Detail: f.File + ": " + f.Line})
	}
	sort.SliceStable(r.Violations, func(i, j int) bool { return r.Violations[i].At.Before(r.Violations[j].At) })
	return r
}

func refusal(wr Write) string {
	switch {
	case wr.Status != 0 && wr.Code != "":
		return fmt.Sprintf("%d %s", wr.Status, wr.Code)
	case wr.Status != 0:
		return fmt.Sprintf("%d", wr.Status)
	case wr.Code != "":
		return wr.Code
	}
	return "no answer"
}

func (r *Report) add(v Violation) { r.Violations = append(r.Violations, v) }

// checkHistory: every acknowledged revision is in the history with its
// content, acknowledgements and revisions agree on order, every revision
// is explained by a write, and the history's own order is sane.
func (r *Report) checkHistory(h *History) {
	byRev := map[int64]Revision{}
	for i, rv := range h.Revisions {
		byRev[rv.Revision] = rv
		if i > 0 {
			prev := h.Revisions[i-1]
			if rv.Revision <= prev.Revision {
				r.add(Violation{Kind: VHistoryGap, At: rv.Time,
					Detail: fmt.Sprintf("revision %d listed after %d", rv.Revision, prev.Revision)})
			}
		}
	}
	r.Revisions = len(h.Revisions)
	var acked []Write
	explained := map[int64]bool{}
	for _, wr := range h.Writes {
		if wr.Outcome != Acked {
			continue
		}
		acked = append(acked, wr)
		rv, ok := byRev[wr.Revision]
		switch {
		case !ok:
			r.add(Violation{Kind: VLost, At: wr.Done,
				Detail: fmt.Sprintf("%s acknowledged at revision %d, which the history does not hold", wr.Op, wr.Revision)})
		case rv.Hash != wr.Hash:
			r.add(Violation{Kind: VContent, At: wr.Done,
				Detail: fmt.Sprintf("%s acknowledged at revision %d with document %.12s, the history holds %.12s",
					wr.Op, wr.Revision, wr.Hash, rv.Hash)})
		default:
			explained[wr.Revision] = true
		}
	}
	// Real-time order: a write acknowledged before another was sent must
	// have the lower revision.
	byDone := slices.Clone(acked)
	sort.Slice(byDone, func(i, j int) bool { return byDone[i].Done.Before(byDone[j].Done) })
	bySent := slices.Clone(acked)
	sort.Slice(bySent, func(i, j int) bool { return bySent[i].Sent.Before(bySent[j].Sent) })
	var maxRev int64
	var maxW Write
	k := 0
	for _, b := range bySent {
		for k < len(byDone) && byDone[k].Done.Before(b.Sent) {
			if byDone[k].Revision > maxRev {
				maxRev, maxW = byDone[k].Revision, byDone[k]
			}
			k++
		}
		if maxRev != 0 && (b.Revision < maxRev || (b.Revision == maxRev && !b.Unchanged)) {
			r.add(Violation{Kind: VReordered, At: b.Done,
				Detail: fmt.Sprintf("%s sent after %s was acknowledged at revision %d, yet acknowledged at revision %d",
					b.Op, maxW.Op, maxRev, b.Revision)})
		}
	}
	indeterminate := map[string]bool{}
	for _, wr := range h.Writes {
		if wr.Outcome == Indeterminate {
			indeterminate[wr.Hash] = true
		}
	}
	for _, rv := range h.Revisions {
		if rv.Revision <= h.Baseline || explained[rv.Revision] || indeterminate[rv.Hash] {
			continue
		}
		r.add(Violation{Kind: VPhantom, At: rv.Time,
			Detail: fmt.Sprintf("revision %d (by %q, document %.12s) matches no write of the soak", rv.Revision, rv.Who, rv.Hash)})
	}
}

// quorumSlack: stopping two members takes a moment after the fault starts.
const quorumSlack = 5 * time.Second

// checkQuorum: no write is acknowledged while etcd has lost its quorum
// (sent after both members were surely down, answered before they were
// started again).
func (r *Report) checkQuorum(h *History) {
	for _, f := range h.Faults {
		if f.Kind != LoseEtcdQuorum || f.Error != "" {
			continue
		}
		for _, wr := range h.Writes {
			if wr.Outcome == Acked && !wr.Unchanged && wr.Sent.After(f.Start.Add(quorumSlack)) && wr.Done.Before(f.End) {
				r.add(Violation{Kind: VNoQuorum, At: wr.Done,
					Detail: fmt.Sprintf("%s acknowledged at revision %d while etcd members %s were down", wr.Op, wr.Revision, f.Target)})
			}
		}
	}
}

// spans places each revision of the history in time: from the earliest it
// can have reached a bridge (its write was sent) to the latest the next one
// can have replaced it (the next was acknowledged, plus w.Apply).
func spans(h *History, w Windows) []span {
	type bracket struct{ lo, hi time.Time }
	known := map[int64]bracket{}
	for _, wr := range h.Writes {
		// An unchanged write answers the revision someone else stored
		// earlier: it says nothing about when that revision was written.
		if wr.Outcome == Acked && !wr.Unchanged {
			known[wr.Revision] = bracket{wr.Sent, wr.Done}
		}
	}
	brackets := make([]bracket, len(h.Revisions))
	for i, rv := range h.Revisions {
		b, ok := known[rv.Revision]
		if !ok {
			b = bracket{rv.Time.Add(-w.Clock), rv.Time.Add(w.Clock)}
			// A write whose answer was lost: it was sent no earlier than
			// the first indeterminate write with this content.
			for _, wr := range h.Writes {
				if wr.Outcome == Indeterminate && wr.Hash == rv.Hash {
					if wr.Sent.Before(b.lo) {
						b.lo = wr.Sent
					}
					if wr.Done.After(b.hi) {
						b.hi = wr.Done
					}
				}
			}
		}
		brackets[i] = b
	}
	out := make([]span, len(h.Revisions))
	for i, rv := range h.Revisions {
		out[i] = span{rev: rv, from: brackets[i].lo}
		if i+1 < len(h.Revisions) {
			out[i].to = brackets[i+1].hi.Add(w.Apply)
		}
	}
	return out
}

// possible is every verdict a bridge may give packet p between from and to:
// under each document that may be in force then, at each instant the
// document's verdict can change (phase boundaries, untils, each with the
// timer slack).
func (r *Report) possible(pop string, p flows.Packet, from, to time.Time, w Windows) (fwd, drop bool) {
	for _, s := range r.revisionIdx {
		if s.from.After(to) || (!s.to.IsZero() && s.to.Before(from)) || s.rev.Doc == nil {
			continue
		}
		doc := s.rev.Doc
		try := func(at time.Time) {
			switch flows.Evaluate(doc, pop, at, p) {
			case flows.Forward:
				fwd = true
			case flows.Drop:
				drop = true
			}
		}
		try(from)
		try(to)
		slack := w.Timer
		if r.controlFaultNear(from, w) || r.controlFaultNear(to, w) {
			slack = w.FaultTimer
		}
		at := from.Add(-slack)
		for i := 0; i < 1000; i++ {
			next, ok := doc.NextChange(at)
			if !ok || next.After(to.Add(slack)) {
				break
			}
			try(next.Add(-time.Nanosecond))
			try(next)
			at = next
		}
	}
	return fwd, drop
}

// controlFaultNear: a fault that can delay the control plane was under way
// within w.Apply before at.
func (r *Report) controlFaultNear(at time.Time, w Windows) bool {
	for _, f := range r.history.Faults {
		switch f.Kind {
		case KillReplica, RollingRestart, StopEtcdMember, LoseEtcdQuorum, PartitionEtcd, PartitionSwitch, RestartVswitchd:
			if !f.Start.After(at) && !f.End.Add(w.Apply).Before(at) {
				return true
			}
		}
	}
	return false
}

// excusedDrop: the probe overlapped a window in which the bridge drops
// everything whatever op25b does: ovs-vswitchd down and until op25b has
// reinstalled its flows, or op25b's flows wiped or altered by hand until
// op25b has repaired them.
func (r *Report) excusedDrop(p Probe, w Windows) bool {
	for _, f := range r.history.Faults {
		var until time.Time
		switch f.Kind {
		case RestartVswitchd:
			until = f.End.Add(w.Reinstall)
		case WipeFlows, AlterFlows:
			if f.Target != p.Bridge {
				continue
			}
			until = f.End.Add(w.Repair)
		default:
			continue
		}
		if !f.Start.After(p.End) && !until.Before(p.Start) {
			return true
		}
	}
	return false
}

func (r *Report) checkProbes(h *History, w Windows) {
	if len(h.Probes) == 0 {
		r.add(Violation{Kind: VEmptyProbes, At: h.Started, Detail: "no probe was recorded"})
	}
	for i := range h.Probes {
		p := &h.Probes[i]
		r.Probes[p.Verdict]++
		src, err1 := netip.ParseAddr(p.Src)
		dst, err2 := netip.ParseAddr(p.Dst)
		if err1 != nil || err2 != nil {
			r.add(Violation{Kind: VFalseBlock, At: p.Start, Probe: p, Detail: "probe with unparsable addresses"})
			continue
		}
		fwd, drop := r.possible(p.Pop, flows.Packet{Src: src, Dst: dst, Proto: 6, DstPort: p.Port}, p.Start, p.End, w)
		switch {
		case fwd && drop:
			r.Expected["either"]++
		case fwd:
			r.Expected["forward"]++
		case drop:
			r.Expected["drop"]++
		default:
			r.Expected["no policy"]++
		}
		switch p.Verdict {
		case Forwarded:
			if !fwd {
				r.add(Violation{Kind: VLeak, At: p.Start, Probe: p,
					Detail: fmt.Sprintf("%s %s -> %s %s:%d connected while every policy in force said drop", p.Host, p.Src, p.Server, p.Dst, p.Port)})
			}
		case Dropped:
			if drop {
				continue
			}
			if r.excusedDrop(*p, w) {
				r.Excused++
				continue
			}
			r.add(Violation{Kind: VFalseBlock, At: p.Start, Probe: p,
				Detail: fmt.Sprintf("%s %s -> %s %s:%d timed out while every policy in force said forward", p.Host, p.Src, p.Server, p.Dst, p.Port)})
		}
	}
}

func (r *Report) checkConvergence(h *History, w Windows) {
	c := h.Convergence
	var last *Revision
	if n := len(h.Revisions); n > 0 {
		last = &h.Revisions[n-1]
	}
	var lastAck *Write
	for i := range h.Writes {
		if wr := &h.Writes[i]; wr.Outcome == Acked && (lastAck == nil || wr.Revision > lastAck.Revision) {
			lastAck = wr
		}
	}
	switch {
	case last == nil:
		r.add(Violation{Kind: VFinal, At: c.Converged, Detail: "the history holds no revision"})
	case c.Revision != last.Revision || c.Hash != last.Hash:
		r.add(Violation{Kind: VFinal, At: c.LastFaultEnd,
			Detail: fmt.Sprintf("final document is revision %d (%.12s), the history ends at %d (%.12s)", c.Revision, c.Hash, last.Revision, last.Hash)})
	case lastAck != nil && last.Revision != lastAck.Revision && !r.laterIndeterminate(h, lastAck.Revision):
		r.add(Violation{Kind: VFinal, At: c.LastFaultEnd,
			Detail: fmt.Sprintf("final document is revision %d, the last acknowledged write is %d", c.Revision, lastAck.Revision)})
	}
	if c.Converged.IsZero() {
		r.add(Violation{Kind: VConverge, At: c.LastFaultEnd, Detail: "never converged: " + c.Detail})
		return
	}
	r.Converged = c.Converged.Sub(c.LastFaultEnd)
	if r.Converged > w.Converge {
		r.add(Violation{Kind: VConverge, At: c.LastFaultEnd,
			Detail: fmt.Sprintf("converged %v after the last fault (allowed %v)", r.Converged.Round(time.Millisecond), w.Converge)})
	}
}

// laterIndeterminate: every revision after rev is explained by a write
// whose answer was lost.
func (r *Report) laterIndeterminate(h *History, rev int64) bool {
	ind := map[string]bool{}
	for _, wr := range h.Writes {
		if wr.Outcome == Indeterminate {
			ind[wr.Hash] = true
		}
	}
	for _, rv := range h.Revisions {
		if rv.Revision > rev && !ind[rv.Hash] {
			return false
		}
	}
	return true
}

// Print writes the table and, for each violation, the timeline around it.
func (r *Report) Print(out io.Writer) { r.PrintN(out, 10) }

// PrintN is Print showing the timelines of the first maxShown violations
// (all of them when maxShown < 0).
func (r *Report) PrintN(out io.Writer, maxShown int) {
	h := r.history
	fmt.Fprintf(out, "soak seed %d, duration %v\n\n", r.Seed, h.Duration)
	fmt.Fprintf(out, "%-22s %6s\n", "faults by kind", "count")
	total := 0
	for _, k := range Kinds {
		fmt.Fprintf(out, "  %-20s %6d\n", k, r.Faults[k])
		total += r.Faults[k]
	}
	fmt.Fprintf(out, "  %-20s %6d (injector errors: %d)\n\n", "total", total, r.FaultErrors)
	fmt.Fprintf(out, "%-22s %6s\n", "writes", "count")
	for _, o := range []string{Acked, Refused, Indeterminate} {
		fmt.Fprintf(out, "  %-20s %6d\n", o, r.Writes[o])
	}
	for _, k := range sortedKeys(r.Refusals) {
		fmt.Fprintf(out, "    %-18s %6d\n", k, r.Refusals[k])
	}
	fmt.Fprintf(out, "  %-20s %6d\n\n", "revisions in history", r.Revisions)
	fmt.Fprintf(out, "%-22s %6s\n", "probes by verdict", "count")
	for _, k := range sortedKeys(r.Probes) {
		fmt.Fprintf(out, "  %-20s %6d\n", k, r.Probes[k])
	}
	fmt.Fprintf(out, "%-22s %6s\n", "policy said", "count")
	for _, k := range sortedKeys(r.Expected) {
		fmt.Fprintf(out, "  %-20s %6d\n", k, r.Expected[k])
	}
	fmt.Fprintf(out, "  %-20s %6d\n\n", "drops in fault windows", r.Excused)
	fmt.Fprintf(out, "converged %v after the last fault\n\n", r.Converged.Round(time.Millisecond))
	counts := map[string]int{}
	for _, v := range r.Violations {
		counts[v.Kind]++
	}
	fmt.Fprintf(out, "%-22s %6s\n", "violations", "count")
	for _, k := range []string{VLost, VContent, VReordered, VPhantom, VHistoryGap, VNoQuorum, VFinal, VConverge, VLeak, VFalseBlock, VPanic, VEmptyProbes} {
		fmt.Fprintf(out, "  %-20s %6d\n", k, counts[k])
	}
	fmt.Fprintf(out, "  %-20s %6d\n", "total", len(r.Violations))
	for i, v := range r.Violations {
		if i == maxShown {
			fmt.Fprintf(out, "\n... %d more violations (soakctl check -all prints every one)\n", len(r.Violations)-maxShown)
			break
		}
		fmt.Fprintf(out, "\nVIOLATION %s at %s (seed %d): %s\n", v.Kind, stamp(v.At), r.Seed, v.Detail)
		r.timeline(out, v)
	}
	if r.OK() {
		fmt.Fprintf(out, "\nsoak ok: seed %d\n", r.Seed)
	} else {
		fmt.Fprintf(out, "\nsoak FAILED: %d violations; replay with SOAK_SEED=%d SOAK_DURATION=%v\n", len(r.Violations), r.Seed, h.Duration)
	}
}

// timeline prints faults, writes and revisions within ±10 s of a violation,
// and the probes of the same row (host, destination, port).
func (r *Report) timeline(out io.Writer, v Violation) {
	if v.At.IsZero() {
		return
	}
	from, to := v.At.Add(-10*time.Second), v.At.Add(10*time.Second)
	type line struct {
		at   time.Time
		text string
	}
	var lines []line
	h := r.history
	for _, f := range h.Faults {
		if !f.Start.After(to) && !f.End.Before(from) {
			lines = append(lines, line{f.Start, fmt.Sprintf("fault %s %s starts (ends %s)%s", f.Kind, f.Target, stamp(f.End), errSuffix(f.Error))})
		}
	}
	for _, wr := range h.Writes {
		if !wr.Sent.After(to) && !wr.Done.Before(from) {
			answer := fmt.Sprintf("revision %d", wr.Revision)
			if wr.Outcome != Acked {
				answer = refusal(wr)
			}
			lines = append(lines, line{wr.Sent, fmt.Sprintf("write %s if-match %d -> %s %s (answered %s)", wr.Op, wr.IfMatch, wr.Outcome, answer, stamp(wr.Done))})
		}
	}
	for _, rv := range h.Revisions {
		if !rv.Time.Before(from) && !rv.Time.After(to) {
			lines = append(lines, line{rv.Time, fmt.Sprintf("revision %d stored (%.12s)%s", rv.Revision, rv.Hash, changes(rv.Doc, v))})
		}
	}
	for _, p := range h.Probes {
		if v.Probe == nil || p.Host != v.Probe.Host || p.Dst != v.Probe.Dst || p.Port != v.Probe.Port {
			continue
		}
		if !p.Start.Before(from) && !p.Start.After(to) {
			mark := ""
			if p.Start.Equal(v.Probe.Start) {
				mark = "  <=="
			}
			lines = append(lines, line{p.Start, fmt.Sprintf("probe %s -> %s:%d %s in %v%s", p.Host, p.Dst, p.Port, p.Verdict, p.End.Sub(p.Start).Round(time.Millisecond), mark)})
		}
	}
	sort.SliceStable(lines, func(i, j int) bool { return lines[i].at.Before(lines[j].at) })
	for _, l := range lines {
		fmt.Fprintf(out, "  %s  %s\n", stamp(l.at), l.text)
	}
}

// changes names, for a leak or false block, what the document says about
// the probe's row at the violation's instant.
func changes(doc *topology.Document, v Violation) string {
	if doc == nil || v.Probe == nil {
		return ""
	}
	src, _ := netip.ParseAddr(v.Probe.Src)
	dst, _ := netip.ParseAddr(v.Probe.Dst)
	e := flows.Explain(doc, v.Probe.Pop, v.At, flows.Packet{Src: src, Dst: dst, Proto: 6, DstPort: v.Probe.Port})
	return ": " + e.Verdict.String() + " (" + e.Summary() + ")"
}

func errSuffix(e string) string {
	if e == "" {
		return ""
	}
	return " error: " + e
}

func stamp(t time.Time) string { return t.UTC().Format("15:04:05.000") }

func sortedKeys(m map[string]int) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Summary is the one-line verdict.
func (r *Report) Summary() string {
	if r.OK() {
		return fmt.Sprintf("soak ok: seed %d", r.Seed)
	}
	kinds := map[string]bool{}
	for _, v := range r.Violations {
		kinds[v.Kind] = true
	}
	names := make([]string, 0, len(kinds))
	for k := range kinds {
		names = append(names, k)
	}
	sort.Strings(names)
	return fmt.Sprintf("soak FAILED: seed %d: %d violations (%s)", r.Seed, len(r.Violations), strings.Join(names, ", "))
}
