package soak

import (
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/op25b/op25b/topology"
)

// Change is one write the soak's writer makes: a whole document (Kind
// empty) or one item put or deleted, and the document that results from it.
type Change struct {
	Op     string // "replace: ...", "put exemptions/x", "delete quarantines/y"
	Kind   string // item kind for an item write; empty for a whole document
	Key    string
	Item   any  // the item to put; nil for a delete
	Delete bool // delete Kind/Key
	Result *topology.Document
}

// Lab addresses the writer aims its exemptions and quarantines at (the
// hosts of lab/lab.py), so that every change is seen by some prober.
var (
	exemptable    = []string{"10.1.0.10/32", "10.1.1.20/32", "2001:db8:1::10/128", "2001:db8:1::20/128", "10.2.0.11/32", "2001:db8:2::10/128"}
	quarantinable = []string{"10.1.200.3/32", "2001:db8:1:200::3/128", "172.16.0.10/32", "10.2.0.10/32", "10.1.1.20/32"}
)

// Mutate picks a random valid change of base at instant now: a phase with
// a near-future boundary (possibly in observe mode, possibly per PoP), an
// exemption or a quarantine lapsing soon, a pool that moves a host to
// another service or a static pool turned dynamic and back, or the removal
// of a lapsed entry. The result validates (the writer checks before it
// sends).
func Mutate(rng *rand.Rand, base *topology.Document, now time.Time) Change {
	doc := base.Clone()
	soon := func(lo, hi int) string {
		return now.Add(time.Duration(lo+rng.IntN(hi-lo+1)) * time.Second).UTC().Truncate(time.Second).Format(time.RFC3339)
	}
	switch rng.IntN(6) {
	case 0: // a lite phase with a near-future boundary
		ph := topology.Phase{From: soon(5, 40)}
		if rng.IntN(2) == 0 {
			ph.Block = topology.Block{All: true}
		} else {
			ph.Block = topology.Block{Sets: []string{"mobile-carriers"}}
		}
		if rng.IntN(3) == 0 {
			ph.Mode = topology.ModeObserve
		}
		if rng.IntN(3) == 0 {
			f := false
			ph.Relays = &f
		}
		switch rng.IntN(3) {
		case 0:
			ph.Pops = []string{"tokyo-1"}
		case 1:
			ph.Pops = []string{"osaka-1"}
		}
		svc := topology.Service{Name: "lite", Phases: []topology.Phase{{Block: topology.Block{Sets: []string{"mobile-carriers"}}}}}
		if rng.IntN(4) != 0 {
			svc.Phases = append(svc.Phases, ph)
		}
		if rng.IntN(2) == 0 {
			return put(doc, "services", svc, fmt.Sprintf("put services/lite (phase from %s)", ph.From))
		}
		k, _ := topology.ItemKindNamed("services")
		k.Put(doc, svc)
		return Change{Op: "replace (lite phase from " + ph.From + ")", Result: doc}
	case 1: // an exemption lapsing soon
		prefix := exemptable[rng.IntN(len(exemptable))]
		e := topology.Exemption{Name: "soak-ex-" + slug(prefix), Prefix: prefix, Until: soon(10, 60),
			Reason: "soak: customer moving to a fixed address", Ticket: fmt.Sprintf("SOAK-%d", rng.IntN(100000))}
		return put(doc, "exemptions", e, "put exemptions/"+e.Name+" until "+e.Until)
	case 2: // a quarantine lapsing soon
		prefix := quarantinable[rng.IntN(len(quarantinable))]
		q := topology.Quarantine{Name: "soak-q-" + slug(prefix), Prefix: prefix, Until: soon(10, 60),
			Reason: "soak: infected host", Ticket: fmt.Sprintf("SOAK-%d", rng.IntN(100000))}
		return put(doc, "quarantines", q, "put quarantines/"+q.Name+" until "+q.Until)
	case 3: // dyn1's /24 moves to the lite service, or back
		k, _ := topology.ItemKindNamed("pools")
		if i := k.Index(doc, "soak-dyn1-lite"); i >= 0 {
			k.Delete(doc, i)
			return Change{Op: "replace (pool soak-dyn1-lite removed)", Result: doc}
		}
		k.Put(doc, topology.Pool{Name: "soak-dyn1-lite", Prefix: "10.1.0.0/24", Kind: "dynamic", Service: "lite"})
		return Change{Op: "replace (pool soak-dyn1-lite added)", Result: doc}
	case 4: // the static /29 turns dynamic (ftth), or back
		p := topology.Pool{Name: "lab-fixed", Prefix: "10.1.200.0/29", Kind: "static"}
		k, _ := topology.ItemKindNamed("pools")
		if i := k.Index(doc, "lab-fixed"); i >= 0 && k.Item(doc, i).(topology.Pool).Kind == "static" {
			p.Kind, p.Service = "dynamic", "ftth"
		}
		return put(doc, "pools", p, "put pools/lab-fixed "+p.Kind)
	default: // remove a lapsed exemption or quarantine, else replace with the same document
		for _, kind := range []string{"exemptions", "quarantines"} {
			k, _ := topology.ItemKindNamed(kind)
			for i := 0; i < k.Len(doc); i++ {
				var until string
				switch it := k.Item(doc, i).(type) {
				case topology.Exemption:
					until = it.Until
				case topology.Quarantine:
					until = it.Until
				}
				if t, err := topology.ParseTime(until); err == nil && !t.After(now) {
					key := k.Key(doc, i)
					k.Delete(doc, i)
					return Change{Op: "delete " + kind + "/" + key, Kind: kind, Key: key, Delete: true, Result: doc}
				}
			}
		}
		return Change{Op: "replace (unchanged)", Result: doc}
	}
}

func put(doc *topology.Document, kind string, item any, op string) Change {
	k, _ := topology.ItemKindNamed(kind)
	k.Put(doc, item)
	return Change{Op: op, Kind: kind, Key: k.ItemKey(item), Item: item, Result: doc}
}

func slug(prefix string) string {
	out := make([]byte, 0, len(prefix))
	for i := 0; i < len(prefix); i++ {
		c := prefix[i]
		switch {
		case c >= '0' && c <= '9', c >= 'a' && c <= 'f':
			out = append(out, c)
		default:
			if len(out) > 0 && out[len(out)-1] != '-' {
				out = append(out, '-')
			}
		}
	}
	return string(out)
}
