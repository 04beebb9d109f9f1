package topology

import (
	"errors"
	"strings"
	"testing"
)

func TestValidateBridgeCert(t *testing.T) {
	for _, tc := range []struct {
		cert, problem string // problem "" = valid
	}{
		{"ovs-tokyo-1.example.net", ""},
		{"ovs-*.tokyo.example.net", ""},
		{"switch id:0b6c-41", ""},
		{"*.example.net", ""},
		{"*", "matches any certificate"},
		{"*.*", "matches any certificate"},
		{"..", "matches any certificate"},
		{"ovs-**.example.net", "single '*'"},
		{" ovs.example.net", "leading or trailing spaces"},
		{"ovs.example.net ", "leading or trailing spaces"},
		{"ovs\u00e9.example.net", "printable ASCII"},
		{"ovs\x00.example.net", "printable ASCII"},
		{"ovs\n.example.net", "printable ASCII"},
		{strings.Repeat("a", MaxCertPatternLength+1), "limit is 255"},
	} {
		doc := validDoc()
		doc.Bridges[0].Cert = tc.cert
		err := Validate(doc)
		if tc.problem == "" {
			if err != nil {
				t.Errorf("cert %q: %v", tc.cert, err)
			}
			continue
		}
		var verr *ValidationError
		if !errors.As(err, &verr) || verr.Errors[0].Field != "bridges[0].cert" || !strings.Contains(verr.Errors[0].Message, tc.problem) {
			t.Errorf("cert %q: %v, want bridges[0].cert: …%s…", tc.cert, err, tc.problem)
		}
	}
}

func TestCertMatches(t *testing.T) {
	for _, tc := range []struct {
		pattern, identity string
		want              bool
	}{
		{"ovs-tokyo-1.example.net", "ovs-tokyo-1.example.net", true},
		{"ovs-tokyo-1.example.net", "OVS-Tokyo-1.Example.NET", true},
		{"ovs-tokyo-1.example.net", "ovs-tokyo-2.example.net", false},
		{"ovs-tokyo-1.example.net", "ovs-tokyo-1.example.net.evil", false},
		{"ovs-*.example.net", "ovs-tokyo-1.example.net", true},
		{"ovs-*.example.net", "ovs-.example.net", true},
		{"ovs-*.example.net", "ovs-a.evil.example.net", false},
		{"*.tokyo.example.net", "sw1.tokyo.example.net", true},
		{"*.tokyo.example.net", "tokyo.example.net", false},
		{"ovs-*-sub-*", "ovs-tokyo-1-sub-a", true},
		{"ovs-*-sub-*", "ovs-tokyo-1-sub-", true},
		{"ovs-*-sub-*", "ovs-tokyo.1-sub-a", false},
		{"switch id:0b6c*", "switch id:0b6c-41-aa", true},
		{"a*a*a*a*b", strings.Repeat("a", 200), false},
		{"", "", true},
	} {
		if got := CertMatches(tc.pattern, tc.identity); got != tc.want {
			t.Errorf("CertMatches(%q, %q) = %v, want %v", tc.pattern, tc.identity, got, tc.want)
		}
	}
}

// Regression (issue 11, "Identity"): under OpenFlow TLS nothing tied a
// certificate to the dpids it may claim, so any switch with a certificate
// from the CA could take over another bridge's session by claiming its
// dpid. With "cert" on a bridge, only a matching certificate may claim it,
// and a certificate bound to bridges may claim no other dpid.
func TestRegressionDatapathClaimWithoutCertBinding(t *testing.T) {
	doc := &Document{Bridges: []Bridge{
		{DPID: "0000000000000001", Name: "tokyo-1-sub-a", Pop: "tokyo-1", Cert: "ovs-tokyo-1.example.net"},
		{DPID: "0000000000000002", Name: "tokyo-1-sub-b", Pop: "tokyo-1", Cert: "ovs-tokyo-1.example.net"},
		{DPID: "00000000000000a3", Name: "osaka-1-sub-a", Pop: "osaka-1", Cert: "ovs-*.osaka.example.net"},
		{DPID: "0000000000000004", Name: "legacy", Pop: "osaka-1"},
	}}
	for _, tc := range []struct {
		dpid       DPID
		identities []string
		refused    string // part of the reason, "" = allowed
	}{
		{"0000000000000001", []string{"ovs-tokyo-1.example.net"}, ""},
		{"0000000000000002", []string{"other-cn", "ovs-tokyo-1.example.net"}, ""}, // a SAN matches
		{"00000000000000a3", []string{"ovs-sw9.osaka.example.net"}, ""},           // a pattern
		{"0000000000000001", []string{"ovs-tokyo-2.example.net"}, `requires a certificate matching "ovs-tokyo-1.example.net"`},
		{"0000000000000001", nil, "requires a certificate"},
		{"00000000000000a3", []string{"ovs-tokyo-1.example.net"}, "requires a certificate"},
		// Bound certificates may not claim other dpids, registered or not.
		{"0000000000000004", []string{"ovs-tokyo-1.example.net"}, "bound to bridge(s) tokyo-1-sub-a (0000000000000001), tokyo-1-sub-b (0000000000000002) only"},
		{"00000000000000ff", []string{"ovs-sw9.osaka.example.net"}, "bound to bridge(s) osaka-1-sub-a"},
		// No binding either way: allowed (the field is optional).
		{"0000000000000004", []string{"anything"}, ""},
		{"00000000000000ff", []string{"anything"}, ""},
	} {
		err := doc.CheckDatapathClaim(tc.dpid, tc.identities)
		switch {
		case tc.refused == "" && err != nil:
			t.Errorf("claim of %s by %q refused: %v", tc.dpid, tc.identities, err)
		case tc.refused != "" && (err == nil || !strings.Contains(err.Error(), tc.refused)):
			t.Errorf("claim of %s by %q: %v, want refused because %s", tc.dpid, tc.identities, err, tc.refused)
		}
	}
	if err := (*Document)(nil).CheckDatapathClaim("0000000000000001", nil); err != nil {
		t.Errorf("nil document: %v", err)
	}
}

// FuzzCertMatches: no panic, and a pattern without '*' matches exactly
// its own text (case aside).
func FuzzCertMatches(f *testing.F) {
	f.Add("ovs-*.example.net", "ovs-a.example.net")
	f.Add("a*a*a*b", "aaaaaaaaaaaaaaaa")
	f.Fuzz(func(t *testing.T, pattern, identity string) {
		got := CertMatches(pattern, identity)
		if !strings.Contains(pattern, "*") && got != strings.EqualFold(pattern, identity) && isASCII(pattern+identity) {
			t.Fatalf("CertMatches(%q, %q) = %v", pattern, identity, got)
		}
	})
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
