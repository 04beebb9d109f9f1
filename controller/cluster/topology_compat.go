package cluster

import (
	"strings"
	"time"

	"github.com/op25b/op25b/topology"
)

// These mirror topology.CanonicalDPID, Document.BridgePop and
// Document.NextChange (contract §3) until they land in package topology.

func canonicalDPID(s string) string { return strings.ToLower(s) }

func bridgePop(doc *topology.Document, dpid string) (string, bool) {
	if doc == nil {
		return "", false
	}
	for _, b := range doc.Bridges {
		if strings.EqualFold(b.DPID, dpid) {
			return b.Pop, true
		}
	}
	return "", false
}

func nextChange(doc *topology.Document, at time.Time) (time.Time, bool) {
	var next time.Time
	for _, s := range doc.Services {
		for _, p := range s.Phases {
			if p.From == "" {
				continue
			}
			t, err := time.Parse(time.RFC3339, p.From)
			if err != nil || !t.After(at) {
				continue
			}
			if next.IsZero() || t.Before(next) {
				next = t
			}
		}
	}
	return next, !next.IsZero()
}
