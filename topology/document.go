// Package topology holds op25b's desired state: the policy document of the
// public contract (pools, relays, destination sets, services with phased
// rollouts, bridges), its validation, phase evaluation and its etcd store.
//
// It is the first stage of the pipeline policy → flows → switch → status:
// everything downstream (flows.Compile, the controller, the API) only ever
// sees a Document that passed Validate.
package topology

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

// Phase is one step of a rollout (docs/semantics.md, phases).
type Phase struct {
	// From is RFC 3339; empty means "since the beginning of time".
	From  string `json:"from,omitempty" yaml:"from,omitempty"`
	Block Block  `json:"block" yaml:"block"`
	// Relays permits SMTP towards the relay prefixes. A nil pointer (field
	// absent) means true: the mission is that the ISP's own relays keep
	// working unless a phase explicitly says otherwise.
	Relays *bool    `json:"relays,omitempty" yaml:"relays,omitempty"`
	Pops   []string `json:"pops,omitempty" yaml:"pops,omitempty"`
}

// PermitsRelays reports whether SMTP to the relays is allowed in this phase.
func (p Phase) PermitsRelays() bool { return p.Relays == nil || *p.Relays }

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
