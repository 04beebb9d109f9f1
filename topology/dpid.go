package topology

import (
	"errors"
	"fmt"

	"gopkg.in/yaml.v3"
)

// DPID is an OpenFlow datapath id in canonical form: exactly 16 lower-case
// hex digits ("00000000000000ab"), as ovs-vsctl prints
// other-config:datapath-id and as a FEATURES_REPLY's 64-bit datapath_id
// is rendered (OpenFlow 1.3 §7.3.1). It is the key of a bridge everywhere:
// maps, etcd keys, URLs, logs, metrics labels.
//
// A DPID is made once, at the edge where a datapath id enters op25b:
// ParseDPID for text (either case is accepted: "0000000000000A0B" and
// "0000000000000a0b" name the same bridge), DPIDFromUint64 for the switch's
// FEATURES_REPLY. Past the edge DPIDs compare with ==; nothing lower-cases
// them again. In JSON and YAML a DPID is a string.
//
// One exception, so that Validate can report every problem of a document
// at once with its path: the document decoders (ParseJSON, ParseYAML,
// ParseJSONItem) keep a bridge's dpid that does not parse as they read it,
// and Validate rejects it. A document that passed Validate holds only
// canonical DPIDs.
type DPID string

// ParseDPID reads a datapath id: exactly 16 hex digits, either case (no
// "0x", no colons), returned in canonical (lower-case) form.
func ParseDPID(s string) (DPID, error) {
	if p := dpidProblem(s); p != "" {
		return "", errors.New(p)
	}
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'F' {
			b[i] = c + ('a' - 'A')
		}
	}
	return DPID(b), nil
}

// DPIDFromUint64 renders the 64-bit datapath_id of a FEATURES_REPLY.
func DPIDFromUint64(id uint64) DPID { return DPID(fmt.Sprintf("%016x", id)) }

func (d DPID) String() string { return string(d) }

// UnmarshalText makes encoding/json (API bodies, status records, the
// store's values) parse a DPID strictly: a string that is not a datapath
// id is an error.
func (d *DPID) UnmarshalText(text []byte) error {
	p, err := ParseDPID(string(text))
	if err != nil {
		return err
	}
	*d = p
	return nil
}

// UnmarshalYAML reads a bridge's dpid in a YAML document the way the JSON
// document decoder does: canonical when it parses, kept as written when
// not, so that Validate reports it with the bridge's path (see DPID).
func (d *DPID) UnmarshalYAML(node *yaml.Node) error {
	var s string
	if err := node.Decode(&s); err != nil {
		return err
	}
	*d = documentDPID(s)
	return nil
}

// documentDPID is the document decoders' reading of a dpid: canonical
// when s is one, s itself otherwise (for Validate to report).
func documentDPID(s string) DPID {
	if p, err := ParseDPID(s); err == nil {
		return p
	}
	return DPID(s)
}

// dpidProblem returns why s is not a datapath id (exactly 16 hex digits, as
// ovs-vsctl prints other-config:datapath-id), or "".
func dpidProblem(s string) string {
	if s == "" {
		return "dpid is required (16 hex digits, e.g. 0000000000000001)"
	}
	if len(s) != 16 {
		return fmt.Sprintf("dpid %q must be exactly 16 hex digits, e.g. 0000000000000001 (no 0x, no colons)", truncate(s))
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return fmt.Sprintf("dpid %q must be exactly 16 hex digits, e.g. 0000000000000001", s)
		}
	}
	return ""
}
