package topology

import (
	"bytes"
	"encoding/json"
	"errors"
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

// ErrUnknownKind is returned for a kind not in ItemKinds.
var ErrUnknownKind = errors.New("unknown item kind")

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

// itemIndex returns the position of the item named `key`, or -1. Bridges are
// addressed by dpid (any case) or, when key is not a dpid, by name
// (docs/rest-api.md: /v1/bridges/{name-or-dpid}).
func (d *Document) itemIndex(kind, key string) (int, error) {
	match := func(n int, name func(int) string) int {
		for i := 0; i < n; i++ {
			if name(i) == key {
				return i
			}
		}
		return -1
	}
	switch kind {
	case ItemPools:
		return match(len(d.Pools), func(i int) string { return d.Pools[i].Name }), nil
	case ItemRelays:
		return match(len(d.Relays), func(i int) string { return d.Relays[i].Name }), nil
	case ItemDestinations:
		return match(len(d.Destinations), func(i int) string { return d.Destinations[i].Name }), nil
	case ItemServices:
		return match(len(d.Services), func(i int) string { return d.Services[i].Name }), nil
	case ItemBridges:
		if !ValidDPID(key) {
			return match(len(d.Bridges), func(i int) string { return d.Bridges[i].Name }), nil
		}
		key = CanonicalDPID(key)
		return match(len(d.Bridges), func(i int) string { return CanonicalDPID(d.Bridges[i].DPID) }), nil
	}
	return -1, fmt.Errorf("%w %q (one of pools, relays, destinations, services, bridges)", ErrUnknownKind, kind)
}

// Item returns one item (a Pool, Relay, DestinationSet, Service or Bridge
// value, ready for json.Marshal) by name; bridges by dpid or name. The value
// shares no memory with d.
func (d *Document) Item(kind, key string) (any, bool) {
	if d == nil {
		return nil, false
	}
	i, err := d.itemIndex(kind, key)
	if err != nil || i < 0 {
		return nil, false
	}
	switch kind {
	case ItemPools:
		return d.Pools[i], true
	case ItemRelays:
		return d.Relays[i], true
	case ItemDestinations:
		ds := d.Destinations[i]
		ds.Prefixes = slices.Clone(ds.Prefixes)
		return ds, true
	case ItemServices:
		return d.Services[i].clone(), true
	default:
		return d.Bridges[i], true
	}
}

// Items returns a copy of one collection as a non-nil slice ([]Pool,
// []Relay, ...), so an empty collection encodes as [] rather than null.
func (d *Document) Items(kind string) (any, error) {
	c := d.Clone()
	if c == nil {
		c = &Document{}
	}
	switch kind {
	case ItemPools:
		return nonNil(c.Pools), nil
	case ItemRelays:
		return nonNil(c.Relays), nil
	case ItemDestinations:
		return nonNil(c.Destinations), nil
	case ItemServices:
		return nonNil(c.Services), nil
	case ItemBridges:
		return nonNil(c.Bridges), nil
	}
	return nil, fmt.Errorf("%w %q (one of pools, relays, destinations, services, bridges)", ErrUnknownKind, kind)
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// PutItem decodes one item from JSON (strictly, as ParseJSON) and replaces
// the item named `key` in d, or appends it when there is none; created
// reports which. The item's own name must equal key; when the body leaves it
// out, key is used. A bridge keyed by a dpid takes the same rule for its
// dpid; a bridge keyed by name must carry its dpid in the body. PutItem does not validate the
// document: call Validate on the result (on a Clone, so a rejected change
// leaves the original untouched).
func (d *Document) PutItem(kind, key string, data []byte) (created bool, err error) {
	if d == nil {
		return false, errors.New("put item: nil document")
	}
	if _, err := d.itemIndex(kind, key); err != nil {
		return false, err
	}
	if !json.Valid(data) {
		return false, &ParseError{Message: "the item is not valid JSON"}
	}
	// Decode through ParseJSON's strict walker by wrapping the item in a
	// one-item document, so field paths read "pools[0].prefx".
	var wrapped bytes.Buffer
	wrapped.WriteString(`{"` + kind + `":[`)
	wrapped.Write(bytes.TrimSpace(data))
	wrapped.WriteString(`]}`)
	one, err := ParseJSON(wrapped.Bytes())
	if err != nil {
		var pe *ParseError
		if errors.As(err, &pe) {
			pe.Field = trimItemPath(pe.Field, kind)
		}
		return false, err
	}
	// The wrapper can only hold exactly one value because data is valid
	// JSON on its own.
	switch kind {
	case ItemPools:
		it := one.Pools[0]
		if err := checkItemKey(&it.Name, key, "name"); err != nil {
			return false, err
		}
		created = putAt(&d.Pools, it, d.mustIndex(kind, key))
	case ItemRelays:
		it := one.Relays[0]
		if err := checkItemKey(&it.Name, key, "name"); err != nil {
			return false, err
		}
		created = putAt(&d.Relays, it, d.mustIndex(kind, key))
	case ItemDestinations:
		it := one.Destinations[0]
		if err := checkItemKey(&it.Name, key, "name"); err != nil {
			return false, err
		}
		created = putAt(&d.Destinations, it, d.mustIndex(kind, key))
	case ItemServices:
		it := one.Services[0]
		if err := checkItemKey(&it.Name, key, "name"); err != nil {
			return false, err
		}
		created = putAt(&d.Services, it, d.mustIndex(kind, key))
	case ItemBridges:
		it := one.Bridges[0]
		if !ValidDPID(key) {
			// Addressed by name: the body carries the dpid.
			if err := checkItemKey(&it.Name, key, "name"); err != nil {
				return false, err
			}
		} else if it.DPID == "" {
			it.DPID = key
		} else if CanonicalDPID(it.DPID) != CanonicalDPID(key) {
			return false, &ParseError{Field: "dpid", Message: fmt.Sprintf("dpid %q in the body does not match %q in the path", it.DPID, key)}
		}
		created = putAt(&d.Bridges, it, d.mustIndex(kind, key))
	}
	return created, nil
}

func (d *Document) mustIndex(kind, key string) int {
	i, _ := d.itemIndex(kind, key)
	return i
}

// putAt replaces the item at i, or appends it when i < 0, and reports
// whether it appended.
func putAt[T any](s *[]T, item T, i int) bool {
	if i >= 0 {
		(*s)[i] = item
		return false
	}
	*s = append(*s, item)
	return true
}

func checkItemKey(name *string, key, field string) error {
	if *name == "" {
		*name = key
		return nil
	}
	if *name != key {
		return &ParseError{Field: field, Message: fmt.Sprintf("%s %q in the body does not match %q in the path", field, *name, key)}
	}
	return nil
}

// trimItemPath turns "pools[0].prefx" into "prefx" for errors about a single
// item body.
func trimItemPath(field, kind string) string {
	prefix := kind + "[0]"
	switch {
	case field == prefix || field == kind:
		return ""
	case len(field) > len(prefix) && field[:len(prefix)+1] == prefix+".":
		return field[len(prefix)+1:]
	}
	return field
}

// DeleteItem removes the item named `key` (dpid or name for bridges) and reports
// whether it existed. It does not check References: the caller decides
// whether deleting a referenced item is allowed.
func (d *Document) DeleteItem(kind, key string) (bool, error) {
	if d == nil {
		return false, nil
	}
	i, err := d.itemIndex(kind, key)
	if err != nil || i < 0 {
		return false, err
	}
	switch kind {
	case ItemPools:
		d.Pools = slices.Delete(d.Pools, i, i+1)
	case ItemRelays:
		d.Relays = slices.Delete(d.Relays, i, i+1)
	case ItemDestinations:
		d.Destinations = slices.Delete(d.Destinations, i, i+1)
	case ItemServices:
		d.Services = slices.Delete(d.Services, i, i+1)
	case ItemBridges:
		d.Bridges = slices.Delete(d.Bridges, i, i+1)
	}
	return true, nil
}
