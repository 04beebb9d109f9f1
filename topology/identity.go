package topology

import (
	"fmt"
	"sort"
	"strings"
)

// MaxCertPatternLength bounds a bridge's "cert" (a DNS name is at most 253).
const MaxCertPatternLength = 255

// certPatternProblem returns why p is not a usable "cert" pattern, or "".
// Printable ASCII only: certificate identities are compared byte for
// byte, and a look-alike character must not be able to match.
func certPatternProblem(p string) string {
	switch {
	case len(p) > MaxCertPatternLength:
		return fmt.Sprintf("cert pattern is %d characters long; the limit is %d", len(p), MaxCertPatternLength)
	case strings.TrimSpace(p) != p:
		return fmt.Sprintf("cert pattern %q has leading or trailing spaces", truncate(p))
	case strings.Trim(p, "*.") == "":
		return fmt.Sprintf("cert pattern %q matches any certificate; name the switch's identity (e.g. ovs-tokyo-1.example.net or ovs-*.tokyo.example.net)", p)
	case strings.Contains(p, "**"):
		return fmt.Sprintf("cert pattern %q: write a single '*'", truncate(p))
	}
	for i := 0; i < len(p); i++ {
		if c := p[i]; c < 0x20 || c > 0x7e {
			return fmt.Sprintf("cert pattern %q may only contain printable ASCII", truncate(p))
		}
	}
	return ""
}

// CertMatches reports whether identity (a certificate's Subject CN or one
// of its SANs) matches pattern: byte for byte, ASCII case-insensitively
// (DNS names are case-insensitive), except that each '*' matches any run
// of characters other than '.' (so "ovs-*.example.net" matches
// "ovs-tokyo-1.example.net" but not "ovs-a.evil.example.net").
func CertMatches(pattern, identity string) bool {
	p, s := strings.ToLower(pattern), strings.ToLower(identity)
	// Iterative glob with one backtrack point: linear in practice, and
	// never recursive whatever the pattern holds.
	pi, si := 0, 0
	star, mark := -1, 0
	for si < len(s) {
		switch {
		case pi < len(p) && p[pi] == '*':
			star, mark = pi, si
			pi++
		case pi < len(p) && p[pi] == s[si]:
			pi++
			si++
		case star >= 0 && s[mark] != '.':
			mark++
			pi, si = star+1, mark
		default:
			return false
		}
	}
	for pi < len(p) && p[pi] == '*' {
		pi++
	}
	return pi == len(p)
}

// DatapathClaimError says why a certificate may not claim a datapath id.
type DatapathClaimError struct {
	DPID       DPID
	Identities []string
	Reason     string
}

func (e *DatapathClaimError) Error() string {
	return fmt.Sprintf("datapath %s claimed by a certificate with identities %q: %s", e.DPID, e.Identities, e.Reason)
}

// CheckDatapathClaim decides whether a switch whose TLS certificate
// carries identities (Subject CN and SANs) may claim datapath id dpid,
// from the "cert" fields of the bridges registry:
//
//   - the bridge with this dpid has a cert: one of the identities must
//     match it;
//   - otherwise, when the identities match the cert of other bridges, the
//     certificate is bound to those and the claim is refused;
//   - otherwise (no binding either way) the claim is allowed.
//
// It is pure; the controller calls it after FEATURES_REPLY, before the
// connection may take over a session.
func (d *Document) CheckDatapathClaim(dpid DPID, identities []string) error {
	if d == nil {
		return nil
	}
	var boundTo []string
	for _, b := range d.Bridges {
		if b.Cert == "" {
			continue
		}
		matches := false
		for _, id := range identities {
			if CertMatches(b.Cert, id) {
				matches = true
				break
			}
		}
		if b.DPID == dpid {
			if matches {
				return nil
			}
			return &DatapathClaimError{DPID: dpid, Identities: identities,
				Reason: fmt.Sprintf("bridge %q requires a certificate matching %q", b.Name, b.Cert)}
		}
		if matches {
			boundTo = append(boundTo, b.Name+" ("+string(b.DPID)+")")
		}
	}
	if len(boundTo) > 0 {
		sort.Strings(boundTo)
		return &DatapathClaimError{DPID: dpid, Identities: identities,
			Reason: "the certificate is bound to bridge(s) " + strings.Join(boundTo, ", ") + " only"}
	}
	return nil
}
