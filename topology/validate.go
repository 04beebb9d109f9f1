package topology

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Size limits of one document. They are checked by Validate (an error naming
// the collection), never crashed into: the flow compiler, etcd (1.5 MiB per
// value by default, which the store splits per item) and the switches'
// flow tables are sized for documents within them.
const (
	MaxPools               = 100_000
	MaxRelays              = 10_000
	MaxDestinationSets     = 1_000
	MaxDestinationPrefixes = 100_000 // total over all destination sets
	MaxServices            = 1_000
	MaxPhasesPerService    = 100
	MaxPopsPerPhase        = 1_000
	MaxBridges             = 10_000
	MaxPorts               = 16
	MaxExemptions          = 10_000
	MaxQuarantines         = 10_000
	// MaxReasonLength and MaxTicketLength bound an exemption's or a
	// quarantine's reason and ticket, in characters: a sentence and an
	// identifier, shown on one line by op25bctl and in explanations.
	MaxReasonLength = 256
	MaxTicketLength = 64
	// MaxReportedErrors bounds ValidationError.Errors so that a broken
	// 100k-pool document yields a readable answer, not a 10 MB one; a final
	// document-level entry says how many problems were left out.
	MaxReportedErrors = 1_000
)

// FieldError is one validation problem. Field is the JSON path of the
// offending value ("pools[2].prefix", "services[0].phases[1].from",
// "ports[0]", "bridges[3].dpid"), or "" for the document as a whole.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

func (e FieldError) String() string {
	if e.Field == "" {
		return e.Message
	}
	return e.Field + ": " + e.Message
}

// ValidationError lists every problem found in a document at once, so a NOC
// engineer fixes a file in one round trip instead of one error per attempt.
type ValidationError struct {
	Errors []FieldError `json:"errors"`
}

// Error joins all problems, one "field: message" per problem.
func (e *ValidationError) Error() string {
	if e == nil || len(e.Errors) == 0 {
		return "invalid document"
	}
	parts := make([]string, len(e.Errors))
	for i, fe := range e.Errors {
		parts[i] = fe.String()
	}
	return "invalid document: " + strings.Join(parts, "; ")
}

// Validate checks every rule of docs/policy-document.md and docs/semantics.md (see the package README
// for the full list) and returns nil or a *ValidationError listing every
// problem with its JSON path. It is pure, never panics, and runs in
// O(n log n) of the document size (maps and sorts, no pairwise loops).
func Validate(doc *Document) error {
	if doc == nil {
		return &ValidationError{Errors: []FieldError{{Message: "document is missing (null)"}}}
	}
	v := &validator{}
	// Problems are reported in document order; names are collected first
	// so that references may point forward.
	services := make(map[string]bool, len(doc.Services))
	for _, s := range doc.Services {
		services[s.Name] = true
	}
	sets := make(map[string]bool, len(doc.Destinations))
	for _, d := range doc.Destinations {
		sets[d.Name] = true
	}
	v.ports(doc.Ports)
	v.pools(doc.Pools, services)
	v.relays(doc.Relays)
	v.destinations(doc.Destinations)
	v.services(doc.Services, sets)
	v.bridges(doc.Bridges)
	v.exemptions(doc.Exemptions)
	v.quarantines(doc.Quarantines)
	v.flowBudget(doc)
	return v.result()
}

type validator struct {
	errs    []FieldError
	dropped int
}

func (v *validator) add(field, format string, args ...any) {
	if len(v.errs) >= MaxReportedErrors {
		v.dropped++
		return
	}
	v.errs = append(v.errs, FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
}

func (v *validator) result() error {
	if len(v.errs) == 0 {
		return nil
	}
	errs := v.errs
	if v.dropped > 0 {
		errs = append(errs, FieldError{Message: fmt.Sprintf("%d more problems not shown (only the first %d are reported)", v.dropped, MaxReportedErrors)})
	}
	return &ValidationError{Errors: errs}
}

func (v *validator) limit(field, what string, n, max int) {
	if n > max {
		v.add(field, "too many %s: %d (the limit is %d)", what, n, max)
	}
}

// path is the JSON path of a field, formatted only when a problem is
// reported: building strings for every field of 100k valid pools would
// dominate the cost of validation.
type path struct {
	coll  string // "pools"
	i     int    // 2
	field string // "prefixes"
	j     int    // 0, or -1 for none
}

func at(coll string, i int, field string) path { return path{coll, i, field, -1} }

func (p path) String() string {
	s := fmt.Sprintf("%s[%d]", p.coll, p.i)
	if p.field != "" {
		s += "." + p.field
	}
	if p.j >= 0 {
		s += fmt.Sprintf("[%d]", p.j)
	}
	return s
}

// nameProblem returns why s is not a valid name (^[a-z0-9][a-z0-9._-]{0,62}$),
// or "". Hand-written rather than a regexp: it runs for every pool of a
// 100k-pool document.
func nameProblem(s string) string {
	switch {
	case s == "":
		return "is required"
	case len(s) > 63:
		return fmt.Sprintf("%q is %d characters long; the limit is 63", truncate(s), len(s))
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		lowerOrDigit := c >= 'a' && c <= 'z' || c >= '0' && c <= '9'
		if lowerOrDigit || i > 0 && (c == '.' || c == '_' || c == '-') {
			continue
		}
		if i == 0 {
			return fmt.Sprintf("%q must start with a lower-case letter or digit", s)
		}
		return fmt.Sprintf("%q may only contain lower-case letters, digits, '.', '_' and '-'", s)
	}
	return ""
}

func truncate(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

// name checks one item name and its uniqueness among the items of its kind.
func (v *validator) name(field path, kind, name string, seen map[string]path) {
	if p := nameProblem(name); p != "" {
		v.add(field.String(), "%s name %s", kind, p)
		return
	}
	if first, dup := seen[name]; dup {
		v.add(field.String(), "duplicate %s name %q (already used by %s)", kind, name, first)
		return
	}
	seen[name] = field
}

// prefix parses a CIDR prefix and insists on its canonical text form, so that
// what the operator wrote is exactly what the switches match: "10.1.0.1/16"
// is a typo more often than a wish for 10.1.0.0/16, so it is rejected, not
// silently masked.
func (v *validator) prefix(at path, s string) (netip.Prefix, bool) {
	if s == "" {
		v.add(at.String(), "prefix is required (CIDR, e.g. 10.1.0.0/16 or 2001:db8::/32)")
		return netip.Prefix{}, false
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		// Keep netip's reason ("no '/'", "octet with leading zero"),
		// not its nested call trace.
		reason := err.Error()
		if k := strings.LastIndex(reason, "): "); k >= 0 {
			reason = reason[k+3:]
		}
		v.add(at.String(), "%q is not a CIDR prefix (e.g. 10.1.0.0/16 or 2001:db8::/32): %s", truncate(s), reason)
		return netip.Prefix{}, false
	}
	if p.Addr().Is4In6() {
		// An IPv4-mapped IPv6 prefix would compile to an ipv6_src match
		// that no IPv4 packet ever hits: write the IPv4 prefix instead.
		v.add(at.String(), "%q is an IPv4-mapped IPv6 prefix; write it as an IPv4 prefix", s)
		return netip.Prefix{}, false
	}
	if m := p.Masked(); m != p {
		v.add(at.String(), "%q has host bits set; did you mean %s?", s, m)
		return netip.Prefix{}, false
	}
	var buf [64]byte
	if c := p.AppendTo(buf[:0]); string(c) != s {
		v.add(at.String(), "%q is not in canonical form; write %s", s, c)
		return netip.Prefix{}, false
	}
	return p, true
}

func (v *validator) ports(ports []int) {
	if ports == nil {
		return
	}
	if len(ports) == 0 {
		v.add("ports", "ports must list at least one TCP port, or be omitted for the default [25]")
		return
	}
	v.limit("ports", "ports", len(ports), MaxPorts)
	seen := make(map[int]int, len(ports))
	for i, p := range ports {
		field := fmt.Sprintf("ports[%d]", i)
		if p < 1 || p > 65535 {
			v.add(field, "port %d is out of range 1..65535", p)
			continue
		}
		if first, dup := seen[p]; dup {
			v.add(field, "duplicate port %d (already ports[%d])", p, first)
			continue
		}
		seen[p] = i
	}
}

func (v *validator) destinations(sets []DestinationSet) {
	v.limit("destinations", "destination sets", len(sets), MaxDestinationSets)
	seen := make(map[string]path, len(sets))
	total := 0
	for i, d := range sets {
		v.name(at("destinations", i, "name"), "destination set", d.Name, seen)
		total += len(d.Prefixes)
		if len(d.Prefixes) == 0 {
			// An empty set blocks nothing: almost certainly an unfinished
			// edit, and "block: [empty-set]" would silently do nothing.
			v.add(at("destinations", i, "prefixes").String(), "destination set %q needs at least one prefix", d.Name)
			continue
		}
		inSet := make(map[netip.Prefix]int, len(d.Prefixes))
		for j, s := range d.Prefixes {
			field := path{"destinations", i, "prefixes", j}
			p, ok := v.prefix(field, s)
			if !ok {
				continue
			}
			if first, dup := inSet[p]; dup {
				v.add(field.String(), "duplicate prefix %s in destination set %q (already %s)", s, d.Name, path{"destinations", i, "prefixes", first})
				continue
			}
			inSet[p] = j
		}
	}
	v.limit("destinations", "destination prefixes in total", total, MaxDestinationPrefixes)
}

func (v *validator) pools(pools []Pool, services map[string]bool) {
	v.limit("pools", "pools", len(pools), MaxPools)
	seen := make(map[string]path, len(pools))
	prefixes := make(map[netip.Prefix]int, len(pools))
	for i, p := range pools {
		field := func(name string) string { return at("pools", i, name).String() }
		v.name(at("pools", i, "name"), "pool", p.Name, seen)
		if pfx, ok := v.prefix(at("pools", i, "prefix"), p.Prefix); ok {
			if first, dup := prefixes[pfx]; dup {
				v.add(field("prefix"), "prefix %s is already used by pools[%d] (%q); two pools may not share a prefix", p.Prefix, first, pools[first].Name)
			} else {
				prefixes[pfx] = i
			}
		}
		switch p.Kind {
		case KindDynamic:
			switch {
			case p.Service == "":
				v.add(field("service"), "a dynamic pool needs a service (the name of an entry in services)")
			case !services[p.Service]:
				v.add(field("service"), "unknown service %q (not in services)", p.Service)
			}
		case KindStatic:
			if p.Service != "" {
				v.add(field("service"), "a static pool is never blocked and takes no service; remove %q or make the pool dynamic", p.Service)
			}
		case "":
			v.add(field("kind"), `kind is required: "dynamic" or "static"`)
		default:
			v.add(field("kind"), `kind must be "dynamic" or "static", not %q`, truncate(p.Kind))
		}
	}
}

func (v *validator) relays(relays []Relay) {
	v.limit("relays", "relays", len(relays), MaxRelays)
	seen := make(map[string]path, len(relays))
	prefixes := make(map[netip.Prefix]int, len(relays))
	for i, r := range relays {
		v.name(at("relays", i, "name"), "relay", r.Name, seen)
		if pfx, ok := v.prefix(at("relays", i, "prefix"), r.Prefix); ok {
			if first, dup := prefixes[pfx]; dup {
				v.add(at("relays", i, "prefix").String(), "prefix %s is already used by relays[%d] (%q)", r.Prefix, first, relays[first].Name)
			} else {
				prefixes[pfx] = i
			}
		}
	}
}

func (v *validator) services(services []Service, sets map[string]bool) {
	v.limit("services", "services", len(services), MaxServices)
	seen := make(map[string]path, len(services))
	for i, s := range services {
		base := fmt.Sprintf("services[%d]", i)
		v.name(at("services", i, "name"), "service", s.Name, seen)
		if len(s.Phases) == 0 {
			v.add(base+".phases", "service %q needs at least one phase", s.Name)
			continue
		}
		v.limit(base+".phases", "phases", len(s.Phases), MaxPhasesPerService)
		v.phases(base, s.Phases, sets)
	}
}

// phaseStart is a phase's parsed "from"; absent is the beginning of time.
type phaseStart struct {
	set bool
	at  time.Time
}

func (a phaseStart) before(b phaseStart) bool {
	switch {
	case !b.set:
		return false
	case !a.set:
		return true
	}
	return a.at.Before(b.at)
}

func (a phaseStart) equal(b phaseStart) bool {
	return a.set == b.set && (!a.set || a.at.Equal(b.at))
}

func (v *validator) phases(base string, phases []Phase, sets map[string]bool) {
	starts := make([]phaseStart, len(phases))
	valid := make([]bool, len(phases))
	for j, ph := range phases {
		pbase := fmt.Sprintf("%s.phases[%d]", base, j)
		valid[j] = true
		if ph.From != "" {
			t, err := ParseTime(ph.From)
			if err != nil {
				v.add(pbase+".from", "%s", err)
				valid[j] = false
			} else {
				starts[j] = phaseStart{set: true, at: t}
			}
		}
		v.block(pbase+".block", ph.Block, sets)
		v.pops(pbase+".pops", ph.Pops)
		switch ph.Mode {
		case "", ModeEnforce, ModeObserve:
		default:
			v.add(pbase+".mode", `mode must be "enforce" (the default) or "observe", not %q`, truncate(ph.Mode))
		}
	}

	// Order: each phase starts no earlier than the previous valid one, so
	// the document reads as a timeline. Phases with an equal start form a
	// run; within a run no pop may be covered twice (see conflict).
	prev := -1
	var run phaseRun
	for j := range phases {
		if !valid[j] {
			continue
		}
		if prev >= 0 && starts[j].before(starts[prev]) {
			v.add(fmt.Sprintf("%s.phases[%d].from", base, j), "phases must be in order of \"from\" (a phase without \"from\" first): this phase starts before %s.phases[%d] (%s)", base, prev, describeFrom(phases[prev].From))
			continue
		}
		if prev < 0 || !starts[j].equal(starts[prev]) {
			run = phaseRun{first: j, global: -1}
		}
		prev = j
		if k, shared, ok := run.conflict(j, phases[j].Pops); ok {
			v.overlap(base, phases, k, j, shared)
			continue
		}
		run.add(j, phases[j].Pops)
	}
}

// phaseRun indexes the pops covered by phases that start at the same
// instant, so that overlaps are found in time linear in the number of pops.
type phaseRun struct {
	first  int            // first phase of the run
	global int            // a phase of the run without pops, or -1
	pops   map[string]int // pop → phase of the run covering it
}

// conflict returns an earlier phase of the run that also covers one of
// pops (all pops when empty), and the pop they share ("" when one of the two
// covers every pop). The phase rule (docs/semantics.md) picks the phase with the latest "from";
// with two at the same instant for one bridge there is no answer.
func (r *phaseRun) conflict(j int, pops []string) (int, string, bool) {
	switch {
	case r.global >= 0:
		return r.global, "", true
	case len(pops) == 0:
		if r.first != j {
			return r.first, "", true
		}
		return 0, "", false
	}
	for _, p := range pops {
		if k, ok := r.pops[p]; ok {
			return k, p, true
		}
	}
	return 0, "", false
}

func (r *phaseRun) add(j int, pops []string) {
	if len(pops) == 0 {
		r.global = j
		return
	}
	if r.pops == nil {
		r.pops = make(map[string]int, len(pops))
	}
	for _, p := range pops {
		r.pops[p] = j
	}
}

// overlap reports that phases k and j start at the same instant and both
// cover a pop.
func (v *validator) overlap(base string, phases []Phase, k, j int, shared string) {
	field := fmt.Sprintf("%s.phases[%d].from", base, j)
	when := describeFrom(phases[j].From)
	switch {
	case len(phases[k].Pops) == 0 && len(phases[j].Pops) == 0:
		v.add(field, "%s.phases[%d] already starts at the same instant (%s) for every pop; a bridge would have two active phases", base, k, when)
	case slices.Equal(sortedCopy(phases[k].Pops), sortedCopy(phases[j].Pops)):
		v.add(field, "%s.phases[%d] already starts at the same instant (%s) for the same pops; a bridge would have two active phases", base, k, when)
	case shared == "":
		v.add(field, "%s.phases[%d] starts at the same instant (%s) and one of the two applies to every pop, so a bridge would have two active phases; give one of them a different \"from\" or disjoint pops", base, k, when)
	default:
		v.add(field, "%s.phases[%d] starts at the same instant (%s) and also applies to pop %q, so that pop would have two active phases", base, k, when, shared)
	}
}

func sortedCopy(s []string) []string {
	c := slices.Clone(s)
	slices.Sort(c)
	return c
}

func describeFrom(from string) string {
	if from == "" {
		return `no "from", i.e. the beginning of time`
	}
	return from
}

func (v *validator) block(field string, b Block, sets map[string]bool) {
	if b.All {
		if len(b.Sets) > 0 {
			v.add(field, `block is either "all" or a list of destination sets, not both`)
		}
		return
	}
	if b.Sets == nil {
		// A missing block is ambiguous (all? nothing?): make it explicit.
		// "block": [] is accepted and blocks nothing.
		v.add(field, `block is required: "all" or a list of destination-set names ([] blocks nothing)`)
		return
	}
	seen := make(map[string]int, len(b.Sets))
	for k, name := range b.Sets {
		f := fmt.Sprintf("%s[%d]", field, k)
		if !sets[name] {
			v.add(f, "unknown destination set %q (not in destinations)", truncate(name))
			continue
		}
		if first, dup := seen[name]; dup {
			v.add(f, "destination set %q is listed twice (already %s[%d])", name, field, first)
			continue
		}
		seen[name] = k
	}
}

func (v *validator) pops(field string, pops []string) {
	if pops == nil {
		return
	}
	if len(pops) == 0 {
		// An empty list reads as "no pop", yet would mean "every pop":
		// make the operator say which.
		v.add(field, "pops must list at least one pop, or be omitted for a phase that applies to every pop")
		return
	}
	v.limit(field, "pops", len(pops), MaxPopsPerPhase)
	seen := make(map[string]int, len(pops))
	for k, pop := range pops {
		f := fmt.Sprintf("%s[%d]", field, k)
		if pop == "" {
			v.add(f, "pop names may not be empty")
			continue
		}
		if p := nameProblem(pop); p != "" {
			v.add(f, "pop %s", p)
			continue
		}
		if first, dup := seen[pop]; dup {
			v.add(f, "pop %q is listed twice (already %s[%d])", pop, field, first)
			continue
		}
		seen[pop] = k
	}
}

func (v *validator) bridges(bridges []Bridge) {
	v.limit("bridges", "bridges", len(bridges), MaxBridges)
	names := make(map[string]path, len(bridges))
	dpids := make(map[DPID]int, len(bridges))
	for i, b := range bridges {
		field := func(name string) string { return at("bridges", i, name).String() }
		if p := dpidProblem(string(b.DPID)); p != "" {
			v.add(field("dpid"), "%s", p)
		} else if canonical, _ := ParseDPID(string(b.DPID)); canonical != b.DPID {
			// Only a Document built in Go gets here: the decoders
			// canonicalize every dpid that parses.
			v.add(field("dpid"), "dpid %q is not in canonical form; write %s", b.DPID, canonical)
		} else if first, dup := dpids[b.DPID]; dup {
			v.add(field("dpid"), "duplicate dpid %s (already bridges[%d], %q)", b.DPID, first, bridges[first].Name)
		} else {
			dpids[b.DPID] = i
		}
		v.name(at("bridges", i, "name"), "bridge", b.Name, names)
		if b.Cert != "" {
			if p := certPatternProblem(b.Cert); p != "" {
				v.add(field("cert"), "%s", p)
			}
		}
		// An empty pop is allowed: such a bridge, like an unregistered
		// one, only gets phases without "pops" (docs/semantics.md, phases).
		if b.Pop != "" {
			if p := nameProblem(b.Pop); p != "" {
				v.add(field("pop"), "pop %s", p)
			}
		}
	}
}

func (v *validator) exemptions(list []Exemption) {
	v.limit(ItemExemptions, "exemptions", len(list), MaxExemptions)
	names := make(map[string]path, len(list))
	prefixes := make(map[netip.Prefix]int, len(list))
	for i, e := range list {
		v.override(ItemExemptions, "exemption", i, e, names, prefixes, func(j int) string { return list[j].Name })
	}
}

func (v *validator) quarantines(list []Quarantine) {
	v.limit(ItemQuarantines, "quarantines", len(list), MaxQuarantines)
	names := make(map[string]path, len(list))
	prefixes := make(map[netip.Prefix]int, len(list))
	for i, q := range list {
		v.override(ItemQuarantines, "quarantine", i, Exemption(q), names, prefixes, func(j int) string { return list[j].Name })
	}
}

// override checks one exemption or quarantine (the two share their fields).
// Two entries of one kind may not share a prefix: the later would hide the
// earlier on the switch, and which ticket a drop is counted under would
// depend on list order. Renew an entry by changing its until.
func (v *validator) override(coll, kind string, i int, e Exemption, names map[string]path, prefixes map[netip.Prefix]int, nameOf func(int) string) {
	field := func(name string) string { return at(coll, i, name).String() }
	v.name(at(coll, i, "name"), kind, e.Name, names)
	if pfx, ok := v.prefix(at(coll, i, "prefix"), e.Prefix); ok {
		if first, dup := prefixes[pfx]; dup {
			v.add(field("prefix"), "prefix %s is already used by %s[%d] (%q); change that entry's until instead of adding another", e.Prefix, coll, first, nameOf(first))
		} else {
			prefixes[pfx] = i
		}
	}
	if e.Until == "" {
		v.add(field("until"), "until is required: the RFC 3339 instant at which the %s lapses (e.g. 2026-12-01T00:00:00+09:00)", kind)
	} else if _, err := ParseTime(e.Until); err != nil {
		v.add(field("until"), "%s", err)
	}
	if p := noteProblem(e.Reason, MaxReasonLength); p != "" {
		v.add(field("reason"), "reason %s (why the %s exists, for whoever reads it later)", p, kind)
	}
	if p := noteProblem(e.Ticket, MaxTicketLength); p != "" {
		v.add(field("ticket"), "ticket %s (the ticket or case that asked for the %s)", p, kind)
	}
}

// noteProblem returns why s is not an acceptable reason or ticket, or "":
// required, at most max characters, one line of printable text without
// surrounding spaces (it is printed in explanations, logs and tables).
func noteProblem(s string, max int) string {
	if s == "" {
		return "is required"
	}
	if !utf8.ValidString(s) {
		return "is not valid UTF-8"
	}
	if n := utf8.RuneCountInString(s); n > max {
		return fmt.Sprintf("is %d characters long; the limit is %d", n, max)
	}
	if strings.TrimSpace(s) != s {
		return "must not start or end with white space"
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return fmt.Sprintf("must be one line of printable text (it contains %U)", r)
		}
	}
	return ""
}
