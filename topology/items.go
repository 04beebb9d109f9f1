package topology

import (
	"fmt"
	"slices"
	"sort"
	"strings"
)

// Item kinds: the collections of a document that are stored, served and
// edited one item at a time (docs/rest-api.md, /v1/{kind}/{key}).
const (
	ItemPools        = "pools"
	ItemRelays       = "relays"
	ItemDestinations = "destinations"
	ItemServices     = "services"
	ItemBridges      = "bridges"
	ItemExemptions   = "exemptions"
	ItemQuarantines  = "quarantines"
)

// ItemKinds is the table of item kinds, in document order. The store (one
// etcd key per item), the REST API (one route per kind, the dry run's item
// diff) and Document.Clone iterate it; a new kind of item is one row here
// plus its type and field in Document (and its rules in Validate).
var ItemKinds = []*ItemKind{
	{Name: ItemPools, KeyField: "name", ops: kindOps[Pool, string]{
		list: func(d *Document) *[]Pool { return &d.Pools },
		key:  func(p *Pool) *string { return &p.Name },
	}},
	{Name: ItemRelays, KeyField: "name", ops: kindOps[Relay, string]{
		list: func(d *Document) *[]Relay { return &d.Relays },
		key:  func(r *Relay) *string { return &r.Name },
	}},
	{Name: ItemDestinations, KeyField: "name", ops: kindOps[DestinationSet, string]{
		list:       func(d *Document) *[]DestinationSet { return &d.Destinations },
		key:        func(s *DestinationSet) *string { return &s.Name },
		clone:      func(s DestinationSet) DestinationSet { s.Prefixes = slices.Clone(s.Prefixes); return s },
		references: referencesToDestination,
	}},
	{Name: ItemServices, KeyField: "name", ops: kindOps[Service, string]{
		list:       func(d *Document) *[]Service { return &d.Services },
		key:        func(s *Service) *string { return &s.Name },
		clone:      Service.clone,
		references: referencesToService,
	}},
	{Name: ItemBridges, KeyField: "dpid", ops: kindOps[Bridge, DPID]{
		list:  func(d *Document) *[]Bridge { return &d.Bridges },
		key:   func(b *Bridge) *DPID { return &b.DPID },
		canon: documentDPID,
	}},
	{Name: ItemExemptions, KeyField: "name", ops: kindOps[Exemption, string]{
		list: func(d *Document) *[]Exemption { return &d.Exemptions },
		key:  func(e *Exemption) *string { return &e.Name },
	}},
	{Name: ItemQuarantines, KeyField: "name", ops: kindOps[Quarantine, string]{
		list: func(d *Document) *[]Quarantine { return &d.Quarantines },
		key:  func(q *Quarantine) *string { return &q.Name },
	}},
}

// ItemKindNamed returns the kind called name ("pools", ...).
func ItemKindNamed(name string) (*ItemKind, bool) {
	for _, k := range ItemKinds {
		if k.Name == name {
			return k, true
		}
	}
	return nil, false
}

// Clone returns a deep copy: changing the copy (items, prefixes, phases,
// pops, the relays flag) never changes d. Nil and empty slices are kept as
// they are, so a clone validates and encodes exactly like the original.
func (d *Document) Clone() *Document {
	if d == nil {
		return nil
	}
	c := &Document{Ports: slices.Clone(d.Ports)}
	for _, k := range ItemKinds {
		k.ops.cloneList(c, d)
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

// ItemKind is one row of ItemKinds: a list of the document whose items are
// identified by a key (a name; a dpid for bridges), unique within the kind.
//
// Items are passed as values of the kind's own type (Pool, Bridge, ...)
// boxed in an `any`; a method given an item of another type panics, as a
// failed type assertion does. Keys are strings: a dpid as its canonical
// text. Methods that take a key from outside (a URL, an etcd key) accept
// it in any form CanonicalKey accepts.
type ItemKind struct {
	// Name is the list's JSON key in the document ("pools"), the URL
	// segment (/v1/pools) and the etcd key segment (config/g/<G>/pools/).
	Name string
	// KeyField is the JSON field holding an item's key: "name", or "dpid"
	// for bridges; it names the URL variable too.
	KeyField string
	ops      itemOps
}

// itemOps is kindOps with its type parameters erased.
type itemOps interface {
	length(d *Document) int
	keyAt(d *Document, i int) string
	itemAt(d *Document, i int) any
	listOf(d *Document) any
	set(d *Document, i int, item any)
	insert(d *Document, i int, item any)
	remove(d *Document, i int)
	makeNonNil(d *Document)
	sortByKey(d *Document)
	cloneList(dst, src *Document)
	decode(data []byte) (any, error)
	itemKey(item any) string
	withKey(item any, key string) any
	canonical(key string) string
	referencesTo(d *Document, key string) []string
}

// kindOps implements one kind for items of type T keyed by a K.
type kindOps[T any, K ~string] struct {
	list func(*Document) *[]T
	key  func(*T) *K
	// canon makes a key from outside comparable; nil: keys are compared
	// as they are.
	canon func(string) K
	// clone deep-copies an item; nil: copying the value is enough.
	clone func(T) T
	// references lists the JSON paths that refer to the item with this
	// key; nil: nothing refers to items of this kind.
	references func(*Document, string) []string
}

func (o kindOps[T, K]) length(d *Document) int           { return len(*o.list(d)) }
func (o kindOps[T, K]) keyAt(d *Document, i int) string  { return string(*o.key(&(*o.list(d))[i])) }
func (o kindOps[T, K]) itemAt(d *Document, i int) any    { return (*o.list(d))[i] }
func (o kindOps[T, K]) set(d *Document, i int, item any) { (*o.list(d))[i] = item.(T) }
func (o kindOps[T, K]) remove(d *Document, i int)        { l := o.list(d); *l = slices.Delete(*l, i, i+1) }
func (o kindOps[T, K]) itemKey(item any) string          { t := item.(T); return string(*o.key(&t)) }

func (o kindOps[T, K]) listOf(d *Document) any {
	if l := *o.list(d); l != nil {
		return l
	}
	return []T{}
}

func (o kindOps[T, K]) insert(d *Document, i int, item any) {
	l := o.list(d)
	*l = slices.Insert(*l, i, item.(T))
}

func (o kindOps[T, K]) sortByKey(d *Document) {
	slices.SortStableFunc(*o.list(d), func(a, b T) int { return strings.Compare(string(*o.key(&a)), string(*o.key(&b))) })
}

func (o kindOps[T, K]) makeNonNil(d *Document) {
	if l := o.list(d); *l == nil {
		*l = []T{}
	}
}

func (o kindOps[T, K]) cloneList(dst, src *Document) {
	l := slices.Clone(*o.list(src))
	if o.clone != nil {
		for i := range l {
			l[i] = o.clone(l[i])
		}
	}
	*o.list(dst) = l
}

func (o kindOps[T, K]) decode(data []byte) (any, error) {
	var item T
	if err := ParseJSONItem(data, &item); err != nil {
		return nil, err
	}
	return item, nil
}

func (o kindOps[T, K]) withKey(item any, key string) any {
	t := item.(T)
	*o.key(&t) = K(o.canonical(key))
	return t
}

func (o kindOps[T, K]) canonical(key string) string {
	if o.canon == nil {
		return key
	}
	return string(o.canon(key))
}

func (o kindOps[T, K]) referencesTo(d *Document, key string) []string {
	if o.references == nil || d == nil {
		return nil
	}
	return o.references(d, key)
}

// Len is the number of items of this kind in d.
func (k *ItemKind) Len(d *Document) int { return k.ops.length(d) }

// Key is the key of item i of this kind in d.
func (k *ItemKind) Key(d *Document, i int) string { return k.ops.keyAt(d, i) }

// Item is item i of this kind in d, ready for json.Marshal. It shares
// memory with d (a DestinationSet's prefixes, a Service's phases).
func (k *ItemKind) Item(d *Document, i int) any { return k.ops.itemAt(d, i) }

// List is the whole list of this kind in d ([]Pool, []Bridge, ...), never
// nil, so that an empty list encodes as [] rather than null. It shares
// memory with d.
func (k *ItemKind) List(d *Document) any { return k.ops.listOf(d) }

// Path is the JSON path of item i, as Validate reports it ("pools[3]").
func (k *ItemKind) Path(i int) string { return fmt.Sprintf("%s[%d]", k.Name, i) }

// CanonicalKey is the form of a key items are compared in: a dpid in lower
// case, when it is one; a name as it is.
func (k *ItemKind) CanonicalKey(key string) string { return k.ops.canonical(key) }

// Index returns the position of the item whose key is key, or -1.
func (k *ItemKind) Index(d *Document, key string) int {
	key = k.CanonicalKey(key)
	for i, n := 0, k.Len(d); i < n; i++ {
		if k.Key(d, i) == key {
			return i
		}
	}
	return -1
}

// Search is Index for a list sorted by key (SortByKey), in O(log n): the
// position of the item, or where to Insert it, and whether it is there.
func (k *ItemKind) Search(d *Document, key string) (int, bool) {
	key = k.CanonicalKey(key)
	n := k.Len(d)
	i := sort.Search(n, func(i int) bool { return k.Key(d, i) >= key })
	return i, i < n && k.Key(d, i) == key
}

// Put replaces the item with item's key, or appends item when there is
// none; created reports which.
func (k *ItemKind) Put(d *Document, item any) (created bool) {
	if i := k.Index(d, k.ItemKey(item)); i >= 0 {
		k.ops.set(d, i, item)
		return false
	}
	k.ops.insert(d, k.Len(d), item)
	return true
}

// Set replaces item i.
func (k *ItemKind) Set(d *Document, i int, item any) { k.ops.set(d, i, item) }

// Insert puts item at position i (i == Len appends).
func (k *ItemKind) Insert(d *Document, i int, item any) { k.ops.insert(d, i, item) }

// Delete removes item i.
func (k *ItemKind) Delete(d *Document, i int) { k.ops.remove(d, i) }

// SortByKey sorts the list by key, the order in which the store reads
// items back from etcd.
func (k *ItemKind) SortByKey(d *Document) { k.ops.sortByKey(d) }

// MakeNonNil replaces a nil list with an empty one, so that a document read
// from the store encodes "pools": [] rather than null.
func (k *ItemKind) MakeNonNil(d *Document) { k.ops.makeNonNil(d) }

// Decode reads one item of this kind from JSON as strictly as ParseJSON
// (error paths relative to the item: "prefx").
func (k *ItemKind) Decode(data []byte) (any, error) { return k.ops.decode(data) }

// ItemKey is the key of an item of this kind ("" when it has none).
func (k *ItemKind) ItemKey(item any) string { return k.ops.itemKey(item) }

// WithKey returns item with its key field set to key (in canonical form):
// a PUT body may leave out the name that the URL gives.
func (k *ItemKind) WithKey(item any, key string) any { return k.ops.withKey(item, key) }

// References returns the JSON paths of the fields that refer to the item
// with this key: the "service" of pools for a service, the "block" entries
// of phases for a destination set. Nothing refers to pools, relays,
// bridges, exemptions or quarantines. The API answers 409 to deleting an item that is still
// referenced, rather than letting validation fail with a less direct error.
func (k *ItemKind) References(d *Document, key string) []string { return k.ops.referencesTo(d, key) }

func referencesToService(d *Document, name string) []string {
	var refs []string
	for i, p := range d.Pools {
		if p.Service == name {
			refs = append(refs, fmt.Sprintf("pools[%d].service", i))
		}
	}
	return refs
}

func referencesToDestination(d *Document, name string) []string {
	var refs []string
	for i, s := range d.Services {
		for j, ph := range s.Phases {
			for k, set := range ph.Block.Sets {
				if set == name {
					refs = append(refs, fmt.Sprintf("services[%d].phases[%d].block[%d]", i, j, k))
				}
			}
		}
	}
	return refs
}
