package topology

import (
	"fmt"
	"slices"
)

// Item kinds: the collections of a document that the REST API exposes one
// item at a time (docs/rest-api.md, /v1/{kind}/{name-or-dpid}).
const (
	ItemPools        = "pools"
	ItemRelays       = "relays"
	ItemDestinations = "destinations"
	ItemServices     = "services"
	ItemBridges      = "bridges"
)

// ItemKinds lists every item kind, in document order.
var ItemKinds = []string{ItemPools, ItemRelays, ItemDestinations, ItemServices, ItemBridges}

// Clone returns a deep copy: changing the copy (items, prefixes, phases,
// pops, the relays flag) never changes d. Nil and empty slices are kept as
// they are, so a clone validates and encodes exactly like the original.
func (d *Document) Clone() *Document {
	if d == nil {
		return nil
	}
	c := &Document{
		Ports:        slices.Clone(d.Ports),
		Pools:        slices.Clone(d.Pools),
		Relays:       slices.Clone(d.Relays),
		Destinations: slices.Clone(d.Destinations),
		Services:     slices.Clone(d.Services),
		Bridges:      slices.Clone(d.Bridges),
	}
	for i := range c.Destinations {
		c.Destinations[i].Prefixes = slices.Clone(c.Destinations[i].Prefixes)
	}
	for i := range c.Services {
		c.Services[i] = c.Services[i].clone()
	}
	return c
}

func (s Service) clone() Service {
	s.Phases = slices.Clone(s.Phases)
	for j := range s.Phases {
		ph := &s.Phases[j]
		ph.Block.Sets = slices.Clone(ph.Block.Sets)
		ph.Pops = slices.Clone(ph.Pops)
		if ph.Relays != nil {
			r := *ph.Relays
			ph.Relays = &r
		}
	}
	return s
}

// References returns the JSON paths of the fields that refer to the item
// `name` of `kind`: the "service" of pools for a service, the "block"
// entries of phases for a destination set. Nothing refers to pools, relays
// or bridges. The API answers 409 to deleting an item that is still
// referenced, rather than letting validation fail with a less direct error.
func (d *Document) References(kind, name string) []string {
	if d == nil {
		return nil
	}
	var refs []string
	switch kind {
	case ItemServices:
		for i, p := range d.Pools {
			if p.Service == name {
				refs = append(refs, fmt.Sprintf("pools[%d].service", i))
			}
		}
	case ItemDestinations:
		for i, s := range d.Services {
			for j, ph := range s.Phases {
				for k, set := range ph.Block.Sets {
					if set == name {
						refs = append(refs, fmt.Sprintf("services[%d].phases[%d].block[%d]", i, j, k))
					}
				}
			}
		}
	}
	return refs
}
