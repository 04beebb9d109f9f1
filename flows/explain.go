package flows

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/op25b/op25b/topology"
)

// Rule names the step of docs/semantics.md that decided a packet's fate.
type Rule string

// Rules, in the order Explain tries them.
const (
	RuleNotSMTP       Rule = "not-smtp"       // not TCP to an SMTP port: forward
	RuleQuarantine    Rule = "quarantine"     // a quarantine in force: drop
	RuleExemption     Rule = "exemption"      // an exemption in force: forward
	RuleNoPool        Rule = "no-pool"        // not a subscriber address: forward
	RuleStatic        Rule = "static-pool"    // a static pool: forward
	RuleNoPhase       Rule = "no-phase"       // no active phase here: forward
	RuleRelay         Rule = "relay"          // to a relay the phase permits: forward
	RuleBlockAll      Rule = "block-all"      // the phase blocks every destination: drop
	RuleBlockedSet    Rule = "blocked-set"    // the destination is in a blocked set: drop
	RuleNotBlocked    Rule = "not-blocked"    // the destination is in no blocked set: forward
	RuleInvalidPacket Rule = "invalid-packet" // not IPv4 or IPv6, or mixed families: forward
	RuleNoDocument    Rule = "no-document"    // no policy at all: forward
)

// Explanation is the reference verdict for one packet with everything that
// led to it, for the helpdesk (GET /v1/explain, op25bctl explain). The pool
// path (pool, service, phase, relay, destination set) is filled in whenever
// the source is in a pool, even when a quarantine or an exemption decided:
// it is what applies once that entry lapses.
type Explanation struct {
	Verdict Verdict
	// Rule is the step that decided Verdict.
	Rule Rule
	// Observe is set when the active phase observes and the packet is
	// forwarded only for that reason: enforcing, the phase would drop it.
	// The drop-count table still counts it.
	Observe bool
	// SMTPBound: TCP over IPv4 or IPv6 to one of the document's ports.
	SMTPBound bool

	// Quarantine and Exemption are the entries in force at the instant
	// whose prefix holds the source, the longest prefix of each kind; a
	// quarantine beats an exemption. Lapsed lists the entries of either
	// kind that hold the source but whose until has passed ("kind/name").
	Quarantine *topology.Quarantine
	Exemption  *topology.Exemption
	Lapsed     []string

	// Pool is the most specific pool holding the source (nil: none).
	Pool *topology.Pool
	// Phase is the pool's service's active phase at the bridge (nil: none),
	// PhaseIndex its position in the service's phases.
	Phase      *topology.Phase
	PhaseIndex int
	// Relay is a relay holding the destination, looked up once a phase is
	// active (whether or not the phase permits relays).
	Relay *topology.Relay
	// Destination is the blocked destination set holding the destination
	// (the first of the phase's "block" list that does).
	Destination string
	// PoolVerdict is what the pool path says, before exemptions,
	// quarantines and observe mode; zero when the packet is not SMTP-bound.
	PoolVerdict Verdict
}

// Explain is the reference reading of docs/semantics.md for a packet
// entering a bridge in pop at instant at, with its reasons. It is
// deliberately plain (loops over the document, no tries, no knowledge of
// Compile's tables) so that the property tests compare two independent
// implementations: Simulate(Compile(...)) must equal Explain(...).Verdict.
func Explain(doc *topology.Document, pop string, at time.Time, p Packet) Explanation {
	if doc == nil {
		return Explanation{Verdict: Forward, Rule: RuleNoDocument}
	}
	if _, ok := p.ethType(); !ok {
		return Explanation{Verdict: Forward, Rule: RuleInvalidPacket}
	}
	if p.Proto != IPProtoTCP || !slices.Contains(doc.EffectivePorts(), int(p.DstPort)) {
		return Explanation{Verdict: Forward, Rule: RuleNotSMTP}
	}
	e := Explanation{SMTPBound: true}
	contains := func(prefix string, a netip.Addr) (int, bool) {
		pfx, err := netip.ParsePrefix(prefix)
		if err != nil || !pfx.Contains(a) {
			return 0, false
		}
		return pfx.Bits(), true
	}

	// Quarantines and exemptions act ahead of the pools, before their until.
	qBits, eBits := -1, -1
	for i := range doc.Quarantines {
		q := &doc.Quarantines[i]
		bits, ok := contains(q.Prefix, p.Src)
		switch {
		case !ok:
		case !q.ActiveAt(at):
			e.Lapsed = append(e.Lapsed, topology.ItemQuarantines+"/"+q.Name)
		case bits > qBits:
			e.Quarantine, qBits = q, bits
		}
	}
	for i := range doc.Exemptions {
		x := &doc.Exemptions[i]
		bits, ok := contains(x.Prefix, p.Src)
		switch {
		case !ok:
		case !x.ActiveAt(at):
			e.Lapsed = append(e.Lapsed, topology.ItemExemptions+"/"+x.Name)
		case bits > eBits:
			e.Exemption, eBits = x, bits
		}
	}

	// The pool path (docs/semantics.md steps 1-5).
	e.PoolVerdict, e.Rule = e.poolPath(doc, pop, at, p)
	e.Verdict = e.PoolVerdict
	switch {
	case e.Quarantine != nil:
		e.Verdict, e.Rule = Drop, RuleQuarantine
	case e.Exemption != nil:
		e.Verdict, e.Rule = Forward, RuleExemption
	case e.Verdict == Drop && e.Phase != nil && e.Phase.Observes():
		e.Verdict, e.Observe = Forward, true
	}
	return e
}

// poolPath is steps 1-5 of docs/semantics.md.
func (e *Explanation) poolPath(doc *topology.Document, pop string, at time.Time, p Packet) (Verdict, Rule) {
	// 1. The most specific pool containing the source.
	bits := -1
	for i := range doc.Pools {
		prefix, err := netip.ParsePrefix(doc.Pools[i].Prefix)
		if err != nil || !prefix.Contains(p.Src) {
			continue
		}
		if prefix.Bits() > bits {
			e.Pool, bits = &doc.Pools[i], prefix.Bits()
		}
	}
	if e.Pool == nil {
		return Forward, RuleNoPool
	}
	// 2. Static pools are never blocked.
	if e.Pool.Kind != topology.KindDynamic {
		return Forward, RuleStatic
	}
	// 3. The service's active phase at this bridge.
	phase, ok := doc.ActivePhase(e.Pool.Service, pop, at)
	if !ok {
		return Forward, RuleNoPhase
	}
	e.Phase, e.PhaseIndex = &phase, phaseIndex(doc, e.Pool.Service, phase)
	// 4. The ISP's own relays.
	for i := range doc.Relays {
		if prefix, err := netip.ParsePrefix(doc.Relays[i].Prefix); err == nil && prefix.Contains(p.Dst) {
			e.Relay = &doc.Relays[i]
			break
		}
	}
	if e.Relay != nil && phase.PermitsRelays() {
		return Forward, RuleRelay
	}
	// 5. Block all, or the named destination sets.
	if phase.Block.All {
		return Drop, RuleBlockAll
	}
	for _, name := range phase.Block.Sets {
		for _, d := range doc.Destinations {
			if d.Name != name {
				continue
			}
			for _, s := range d.Prefixes {
				if prefix, err := netip.ParsePrefix(s); err == nil && prefix.Contains(p.Dst) {
					e.Destination = name
					return Drop, RuleBlockedSet
				}
			}
		}
	}
	return Forward, RuleNotBlocked
}

// phaseIndex finds the position of the active phase in its service (for
// "phase 2 of ftth"); -1 if it is not there, which ActivePhase rules out.
func phaseIndex(doc *topology.Document, service string, ph topology.Phase) int {
	s, _ := doc.Service(service)
	for i := range s.Phases {
		q := s.Phases[i]
		if q.From == ph.From && slices.Equal(q.Pops, ph.Pops) && q.Mode == ph.Mode &&
			q.Block.All == ph.Block.All && slices.Equal(q.Block.Sets, ph.Block.Sets) && q.PermitsRelays() == ph.PermitsRelays() {
			return i
		}
	}
	return -1
}

// Summary is one sentence saying what decided the verdict.
func (e Explanation) Summary() string {
	switch e.Rule {
	case RuleNoDocument:
		return "forwarded: no policy is loaded"
	case RuleInvalidPacket:
		return "forwarded: not an IPv4 or IPv6 packet with addresses of one family"
	case RuleNotSMTP:
		return "forwarded: not SMTP-bound (only TCP to the document's SMTP ports is ever affected)"
	case RuleQuarantine:
		return fmt.Sprintf("dropped: the source is quarantined by %s until %s (ticket %s), toward every destination, relays included",
			e.Quarantine.Name, e.Quarantine.Until, e.Quarantine.Ticket)
	case RuleExemption:
		return fmt.Sprintf("forwarded: the source is exempted by %s until %s (ticket %s)", e.Exemption.Name, e.Exemption.Until, e.Exemption.Ticket)
	case RuleNoPool:
		return "forwarded: the source is in no pool (not a subscriber address)"
	case RuleStatic:
		return fmt.Sprintf("forwarded: pool %s is static (fixed-IP plans are never blocked)", e.Pool.Name)
	case RuleNoPhase:
		return fmt.Sprintf("forwarded: service %s has no active phase at this bridge (not rolled out here yet)", e.Pool.Service)
	case RuleRelay:
		return fmt.Sprintf("forwarded: the destination is relay %s, which the active phase of %s permits", e.Relay.Name, e.Pool.Service)
	case RuleBlockAll, RuleBlockedSet:
		what := "blocks every destination"
		if e.Rule == RuleBlockedSet {
			what = "blocks destination set " + e.Destination
		}
		if e.Observe {
			return fmt.Sprintf("forwarded, observed: the active phase of %s %s but only observes; enforcing, it would drop this", e.Pool.Service, what)
		}
		return fmt.Sprintf("dropped: the active phase of %s %s", e.Pool.Service, what)
	case RuleNotBlocked:
		return fmt.Sprintf("forwarded: the destination is in none of the destination sets the active phase of %s blocks", e.Pool.Service)
	}
	return e.Verdict.String()
}

// Reasons lists every reason, one line each, in the order the policy looks
// at them: quarantine, exemption, pool and kind, service and active phase
// (since when), relay, destination set, observe, verdict.
func (e Explanation) Reasons() []string {
	if !e.SMTPBound {
		return []string{e.Summary()}
	}
	var out []string
	if q := e.Quarantine; q != nil {
		out = append(out, fmt.Sprintf("quarantine: %s (%s) until %s, ticket %s: %s", q.Name, q.Prefix, q.Until, q.Ticket, q.Reason))
	}
	if x := e.Exemption; x != nil {
		line := fmt.Sprintf("exemption: %s (%s) until %s, ticket %s: %s", x.Name, x.Prefix, x.Until, x.Ticket, x.Reason)
		if e.Quarantine != nil {
			line += " (a quarantine beats an exemption)"
		}
		out = append(out, line)
	}
	for _, l := range e.Lapsed {
		out = append(out, "lapsed, no longer in force: "+l)
	}
	if e.Pool == nil {
		out = append(out, "pool: none holds the source (not a subscriber address)")
	} else {
		line := fmt.Sprintf("pool: %s (%s), %s", e.Pool.Name, e.Pool.Prefix, e.Pool.Kind)
		if e.Pool.Kind == topology.KindDynamic {
			line += ", service " + e.Pool.Service
		}
		out = append(out, line)
	}
	if e.Pool != nil && e.Pool.Kind == topology.KindDynamic {
		if ph := e.Phase; ph == nil {
			out = append(out, "phase: none of "+e.Pool.Service+"'s phases is active at this bridge (not rolled out here yet)")
		} else {
			out = append(out, "phase: "+describePhase(*ph, e.PhaseIndex))
		}
	}
	if e.Phase != nil {
		switch {
		case e.Relay == nil:
			out = append(out, "relay: the destination is not a relay")
		case e.Phase.PermitsRelays():
			out = append(out, fmt.Sprintf("relay: the destination is relay %s (%s), permitted by the phase", e.Relay.Name, e.Relay.Prefix))
		default:
			out = append(out, fmt.Sprintf("relay: the destination is relay %s (%s), but the phase says relays: false", e.Relay.Name, e.Relay.Prefix))
		}
		switch {
		case e.Destination != "":
			out = append(out, "destination: in blocked set "+e.Destination)
		case !e.Phase.Block.All && e.PoolVerdict == Forward && e.Rule != RuleRelay && !(e.Relay != nil && e.Phase.PermitsRelays()):
			out = append(out, "destination: in none of the blocked sets ["+strings.Join(e.Phase.Block.Sets, ", ")+"]")
		}
		if e.Phase.Observes() {
			out = append(out, "mode: observe (what the phase would drop is forwarded and counted)")
		}
	}
	return append(out, "verdict: "+e.Summary())
}

func describePhase(ph topology.Phase, index int) string {
	since := "since the beginning (no from)"
	if ph.From != "" {
		since = "since " + ph.From
	}
	block := "all"
	if !ph.Block.All {
		block = "[" + strings.Join(ph.Block.Sets, ", ") + "]"
	}
	pops := "every pop"
	if len(ph.Pops) > 0 {
		pops = "pops [" + strings.Join(ph.Pops, ", ") + "]"
	}
	mode := topology.ModeEnforce
	if ph.Observes() {
		mode = topology.ModeObserve
	}
	return fmt.Sprintf("phases[%d] active %s: block %s, relays %v, %s, %s", index, since, block, ph.PermitsRelays(), pops, mode)
}
