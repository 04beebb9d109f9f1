// Package topology holds op25b's desired state: the policy document of the
// public contract (pools, relays, destination sets, services with phased
// rollouts, bridges), its validation, phase evaluation and its etcd store.
//
// It is the first stage of the pipeline policy → flows → switch → status:
// everything downstream (flows.Compile, the controller, the API) only ever
// sees a Document that passed Validate.
package topology

import "time"

// Pool kinds (docs/semantics.md, docs/policy-document.md).
const (
	KindDynamic = "dynamic"
	KindStatic  = "static"
)

// DefaultPorts is used when a document has no "ports" (docs/semantics.md).
var DefaultPorts = []int{25}

// Document is the whole desired state (docs/policy-document.md). Prefixes stay strings
// so that a document round-trips byte-for-byte through the API and etcd;
// Validate proves they parse canonically, after which downstream code may
// use netip.MustParsePrefix on them.
type Document struct {
	Ports        []int            `json:"ports,omitempty" yaml:"ports,omitempty"`
	Pools        []Pool           `json:"pools" yaml:"pools"`
	Relays       []Relay          `json:"relays" yaml:"relays"`
	Destinations []DestinationSet `json:"destinations" yaml:"destinations"`
	Services     []Service        `json:"services" yaml:"services"`
	Bridges      []Bridge         `json:"bridges" yaml:"bridges"`
	// Exemptions and Quarantines act on source prefixes ahead of the
	// pools, each until its own instant (docs/semantics.md). Both are
	// optional and left out of the JSON when empty, so that a document
	// without them reads as it did before they existed.
	Exemptions  []Exemption  `json:"exemptions,omitempty" yaml:"exemptions,omitempty"`
	Quarantines []Quarantine `json:"quarantines,omitempty" yaml:"quarantines,omitempty"`
}

// Pool is a subscriber address range. Static pools (fixed-IP plans) are
// never blocked; dynamic pools follow their service's active phase.
type Pool struct {
	Name    string `json:"name" yaml:"name"`
	Prefix  string `json:"prefix" yaml:"prefix"`
	Kind    string `json:"kind" yaml:"kind"`
	Service string `json:"service,omitempty" yaml:"service,omitempty"`
}

// Relay is one of the ISP's own relay/MSA prefixes.
type Relay struct {
	Name   string `json:"name" yaml:"name"`
	Prefix string `json:"prefix" yaml:"prefix"`
}

// DestinationSet is a named group of destination prefixes that a phase can
// block selectively (e.g. mobile-carrier MX ranges).
type DestinationSet struct {
	Name     string   `json:"name" yaml:"name"`
	Prefixes []string `json:"prefixes" yaml:"prefixes"`
}

// Service is a subscriber product whose port-25 policy is rolled out in
// phases.
type Service struct {
	Name   string  `json:"name" yaml:"name"`
	Phases []Phase `json:"phases" yaml:"phases"`
}

// Phase modes (docs/semantics.md, observe mode). An absent mode enforces.
const (
	ModeEnforce = "enforce"
	ModeObserve = "observe"
)

// Phase is one step of a rollout (docs/semantics.md, phases).
type Phase struct {
	// From is RFC 3339; empty means "since the beginning of time".
	From  string `json:"from,omitempty" yaml:"from,omitempty"`
	Block Block  `json:"block" yaml:"block"`
	// Mode is ModeEnforce (also when empty) or ModeObserve: an observing
	// phase forwards what it would drop, and the switches still count it
	// per pool, so an ISP can measure who a rollout would affect before
	// it announces a date.
	Mode string `json:"mode,omitempty" yaml:"mode,omitempty"`
	// Relays permits SMTP towards the relay prefixes. A nil pointer (field
	// absent) means true: the mission is that the ISP's own relays keep
	// working unless a phase explicitly says otherwise.
	Relays *bool    `json:"relays,omitempty" yaml:"relays,omitempty"`
	Pops   []string `json:"pops,omitempty" yaml:"pops,omitempty"`
}

// PermitsRelays reports whether SMTP to the relays is allowed in this phase.
func (p Phase) PermitsRelays() bool { return p.Relays == nil || *p.Relays }

// Observes reports whether the phase only observes: what it would drop is
// forwarded (and counted).
func (p Phase) Observes() bool { return p.Mode == ModeObserve }

// Block is either "all" or a list of destination-set names. JSON and YAML
// encode it as the string "all" or an array of strings (see block.go).
type Block struct {
	All  bool
	Sets []string
}

// Bridge is a subscriber-facing OVS bridge, identified by its datapath id
// and placed in a PoP for phase scoping.
type Bridge struct {
	DPID DPID   `json:"dpid" yaml:"dpid"`
	Name string `json:"name" yaml:"name"`
	Pop  string `json:"pop" yaml:"pop"`
	// Cert, when set, binds the bridge to a switch certificate under
	// OpenFlow TLS (see identity.go): only a switch whose certificate
	// carries a matching identity (Subject CN or a SAN) may claim this
	// dpid, and such a certificate may claim no dpid outside the bridges
	// that name it. A pattern: '*' matches any run of characters other
	// than '.'.
	Cert string `json:"cert,omitempty" yaml:"cert,omitempty"`
}

// Exemption lets SMTP from a source prefix through, whatever its pool says,
// until an instant: a customer who runs a mail server until a fixed-IP move,
// say. A Quarantine has the same fields and blocks the prefix instead. Both
// act ahead of the pool lookup and lapse at Until by themselves; a lapsed
// entry stays in the document, inert, until someone removes it
// (docs/semantics.md).
type Exemption struct {
	Name   string `json:"name" yaml:"name"`
	Prefix string `json:"prefix" yaml:"prefix"`
	// Until is RFC 3339 and required: the entry acts strictly before it.
	Until string `json:"until" yaml:"until"`
	// Reason and Ticket are for the people who read the entry later (the
	// helpdesk, the abuse desk, an auditor): why, and under which ticket.
	Reason string `json:"reason" yaml:"reason"`
	Ticket string `json:"ticket" yaml:"ticket"`
}

// Quarantine drops SMTP from a source prefix toward every destination,
// relays included, whatever its pool (even a static one, even none), until
// an instant: an infected host loses port 25 until it is cleaned. It has
// the fields of an Exemption and beats one.
type Quarantine Exemption

// ActiveAt reports whether the exemption acts at instant at: strictly
// before its Until (at Until it has lapsed). An Until that does not parse
// (only in a document that skipped Validate) never acts.
func (e Exemption) ActiveAt(at time.Time) bool {
	until, err := ParseTime(e.Until)
	return err == nil && at.Before(until)
}

// ActiveAt reports whether the quarantine acts at instant at (see
// Exemption.ActiveAt).
func (q Quarantine) ActiveAt(at time.Time) bool { return Exemption(q).ActiveAt(at) }
