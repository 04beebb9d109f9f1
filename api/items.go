package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/gorilla/mux"

	"github.com/op25b/op25b/topology"
	"github.com/op25b/op25b/topology/store"
)

// itemAccess describes one collection of the document (docs/rest-api.md
// "/v1/{pools,relays,destinations,services,bridges}/{name-or-dpid}").
type itemAccess[T any, K ~string] struct {
	kind  string // collection name, as in the document and in References
	param string // URL variable: "name", or "dpid" for bridges
	list  func(*topology.Document) *[]T
	key   func(*T) *K
	// canon makes keys comparable (a dpid in a URL may be upper case).
	canon func(string) K
}

func identity(s string) string { return s }

// pathDPID is a dpid from a URL in canonical form; what is not a dpid
// stays as it is (it matches no bridge, and PUT lets Validate report it).
func pathDPID(s string) topology.DPID {
	if d, err := topology.ParseDPID(s); err == nil {
		return d
	}
	return topology.DPID(s)
}

var (
	poolItems = itemAccess[topology.Pool, string]{kind: topology.ItemPools, param: "name", canon: identity,
		list: func(d *topology.Document) *[]topology.Pool { return &d.Pools },
		key:  func(p *topology.Pool) *string { return &p.Name }}
	relayItems = itemAccess[topology.Relay, string]{kind: topology.ItemRelays, param: "name", canon: identity,
		list: func(d *topology.Document) *[]topology.Relay { return &d.Relays },
		key:  func(p *topology.Relay) *string { return &p.Name }}
	destinationItems = itemAccess[topology.DestinationSet, string]{kind: topology.ItemDestinations, param: "name", canon: identity,
		list: func(d *topology.Document) *[]topology.DestinationSet { return &d.Destinations },
		key:  func(p *topology.DestinationSet) *string { return &p.Name }}
	serviceItems = itemAccess[topology.Service, string]{kind: topology.ItemServices, param: "name", canon: identity,
		list: func(d *topology.Document) *[]topology.Service { return &d.Services },
		key:  func(p *topology.Service) *string { return &p.Name }}
	bridgeItems = itemAccess[topology.Bridge, topology.DPID]{kind: topology.ItemBridges, param: "dpid", canon: pathDPID,
		list: func(d *topology.Document) *[]topology.Bridge { return &d.Bridges },
		key:  func(p *topology.Bridge) *topology.DPID { return &p.DPID }}
)

// itemIndexer is the type-erased view diffItems needs.
type itemIndexer interface {
	kindName() string
	index(*topology.Document) map[string]string
}

var itemKinds = []itemIndexer{poolItems, relayItems, destinationItems, serviceItems, bridgeItems}

func (a itemAccess[T, K]) kindName() string { return a.kind }

// index maps each item's canonical key to its JSON encoding.
func (a itemAccess[T, K]) index(d *topology.Document) map[string]string {
	items := *a.list(d)
	out := make(map[string]string, len(items))
	for i := range items {
		b, err := json.Marshal(&items[i])
		if err != nil {
			b = []byte(err.Error())
		}
		out[string(a.canon(string(*a.key(&items[i]))))] = string(b)
	}
	return out
}

func (a itemAccess[T, K]) find(d *topology.Document, key string) int {
	items := *a.list(d)
	want := a.canon(key)
	for i := range items {
		if a.canon(string(*a.key(&items[i]))) == want {
			return i
		}
	}
	return -1
}

// decode parses one item with topology.ParseJSON's strict rules (unknown
// or case-variant fields, duplicate keys, wrong types, nesting, trailing
// data), in one pass; field paths are relative to the item ("prefx").
func (a itemAccess[T, K]) decode(data []byte) (T, error) {
	var item T
	if err := topology.ParseJSONItem(data, &item); err != nil {
		var zero T
		return zero, jsonError(err)
	}
	return item, nil
}

func (a itemAccess[T, K]) notFound(key string) error {
	return newError(http.StatusNotFound, CodeNotFound, "", fmt.Sprintf("%s/%s does not exist", a.kind, key))
}

func registerItems[T any, K ~string](s *server, a itemAccess[T, K]) {
	collection := "/v1/" + a.kind
	one := collection + "/{" + a.param + "}"
	s.router.Handle(collection, s.serve(func(w http.ResponseWriter, r *http.Request) error {
		return getCollection(s, a, w, r)
	})).Methods(http.MethodGet)
	s.router.Handle(one, s.serve(func(w http.ResponseWriter, r *http.Request) error {
		return getItem(s, a, w, r)
	})).Methods(http.MethodGet)
	s.router.Handle(one, s.serve(func(w http.ResponseWriter, r *http.Request) error {
		return putItem(s, a, w, r)
	})).Methods(http.MethodPut)
	s.router.Handle(one, s.serve(func(w http.ResponseWriter, r *http.Request) error {
		return deleteItem(s, a, w, r)
	})).Methods(http.MethodDelete)
}

func getCollection[T any, K ~string](s *server, a itemAccess[T, K], w http.ResponseWriter, r *http.Request) error {
	ctx, cancel := s.storeContext(r)
	defer cancel()
	doc, rev, err := s.cfg.Store.Load(ctx)
	if err != nil {
		return fmt.Errorf("load %s: %w", a.kind, err)
	}
	items := *a.list(doc)
	if items == nil {
		items = []T{}
	}
	w.Header().Set("ETag", etag(rev))
	writeJSON(w, http.StatusOK, map[string]any{"revision": rev, a.kind: items})
	return nil
}

func getItem[T any, K ~string](s *server, a itemAccess[T, K], w http.ResponseWriter, r *http.Request) error {
	key := mux.Vars(r)[a.param]
	ctx, cancel := s.storeContext(r)
	defer cancel()
	doc, rev, err := s.cfg.Store.Load(ctx)
	if err != nil {
		return fmt.Errorf("load %s/%s: %w", a.kind, key, err)
	}
	i := a.find(doc, key)
	if i < 0 {
		return a.notFound(key)
	}
	w.Header().Set("ETag", etag(rev))
	writeJSON(w, http.StatusOK, (*a.list(doc))[i])
	return nil
}

// putItem creates or replaces one item. The body is the item itself; its
// name (dpid for bridges) may be omitted, but if present it must be the
// one in the URL — renaming by PUT would silently orphan references.
func putItem[T any, K ~string](s *server, a itemAccess[T, K], w http.ResponseWriter, r *http.Request) error {
	key := mux.Vars(r)[a.param]
	data, err := s.readBody(w, r)
	if err != nil {
		return err
	}
	item, err := a.decode(data)
	if err != nil {
		return err
	}
	switch k := a.key(&item); {
	case *k == "":
		*k = a.canon(key)
	case a.canon(string(*k)) != a.canon(key):
		return newError(http.StatusBadRequest, CodeNameMismatch, a.param,
			fmt.Sprintf("%s %q in the body differs from %q in the URL", a.param, *k, key))
	}
	rev, err := ifMatch(r, 0)
	if err != nil {
		return err
	}
	created := false
	ctx, cancel := s.storeContext(r)
	defer cancel()
	who := infoFrom(r.Context()).who
	put := func(doc *topology.Document) error {
		list := a.list(doc)
		if i := a.find(doc, key); i >= 0 {
			(*list)[i] = item
			created = false
		} else {
			*list = append(*list, item)
			created = true
		}
		return topology.Validate(doc)
	}
	newRev, err := s.retryUnconditional(ctx, rev, func() (int64, error) {
		return s.cfg.Store.Update(ctx, store.WriteOptions{IfRevision: rev, Who: who}, put)
	})
	if err != nil {
		return err // mutate's own errors, or the store's with their context
	}
	s.cfg.Logger.Info("item written", "item", a.kind+"/"+key, "created", created, "revision", newRev, "who", who)
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	writeJSON(w, status, writeResponse{Revision: newRev})
	return nil
}

// deleteItem removes one item unless something still refers to it: a
// dangling reference would make the document invalid, and silently
// dropping the referrers could unblock subscribers (never open a hole).
func deleteItem[T any, K ~string](s *server, a itemAccess[T, K], w http.ResponseWriter, r *http.Request) error {
	key := mux.Vars(r)[a.param]
	rev, err := ifMatch(r, 0)
	if err != nil {
		return err
	}
	ctx, cancel := s.storeContext(r)
	defer cancel()
	who := infoFrom(r.Context()).who
	del := func(doc *topology.Document) error {
		i := a.find(doc, key)
		if i < 0 {
			return a.notFound(key)
		}
		name := string(*a.key(&(*a.list(doc))[i]))
		if refs := doc.References(a.kind, name); len(refs) > 0 {
			e := newError(http.StatusConflict, CodeReferenced, refs[0],
				fmt.Sprintf("%s/%s is still referenced by %s", a.kind, name, strings.Join(refs, ", ")))
			for _, ref := range refs {
				e.Details = append(e.Details, FieldIssue{Field: ref, Message: "refers to " + a.kind + "/" + name})
			}
			return e
		}
		list := a.list(doc)
		*list = append((*list)[:i:i], (*list)[i+1:]...)
		return topology.Validate(doc)
	}
	newRev, err := s.retryUnconditional(ctx, rev, func() (int64, error) {
		return s.cfg.Store.Update(ctx, store.WriteOptions{IfRevision: rev, Who: who}, del)
	})
	if err != nil {
		return err
	}
	s.cfg.Logger.Info("item deleted", "item", a.kind+"/"+key, "revision", newRev, "who", who)
	writeJSON(w, http.StatusOK, writeResponse{Revision: newRev})
	return nil
}
