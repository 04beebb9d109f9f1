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

// registerItems serves one kind of the document's items
// (docs/rest-api.md "/v1/{pools,relays,destinations,services,bridges}/{name-or-dpid}"):
// GET of the list, and GET/PUT/DELETE of one item under its key, the URL
// variable named after the kind's key field ("name", "dpid").
func registerItems(s *server, k *topology.ItemKind) {
	collection := "/v1/" + k.Name
	one := collection + "/{" + k.KeyField + "}"
	s.router.Handle(collection, s.serve(func(w http.ResponseWriter, r *http.Request) error {
		return getCollection(s, k, w, r)
	})).Methods(http.MethodGet)
	s.router.Handle(one, s.serve(func(w http.ResponseWriter, r *http.Request) error {
		return getItem(s, k, w, r)
	})).Methods(http.MethodGet)
	s.router.Handle(one, s.serve(func(w http.ResponseWriter, r *http.Request) error {
		return putItem(s, k, w, r)
	})).Methods(http.MethodPut)
	s.router.Handle(one, s.serve(func(w http.ResponseWriter, r *http.Request) error {
		return deleteItem(s, k, w, r)
	})).Methods(http.MethodDelete)
}

func itemNotFound(k *topology.ItemKind, key string) error {
	return newError(http.StatusNotFound, CodeNotFound, "", fmt.Sprintf("%s/%s does not exist", k.Name, key))
}

func getCollection(s *server, k *topology.ItemKind, w http.ResponseWriter, r *http.Request) error {
	ctx, cancel := s.storeContext(r)
	defer cancel()
	doc, rev, err := s.cfg.Store.Load(ctx)
	if err != nil {
		return fmt.Errorf("load %s: %w", k.Name, err)
	}
	w.Header().Set("ETag", etag(rev))
	writeJSON(w, http.StatusOK, map[string]any{"revision": rev, k.Name: k.List(doc)})
	return nil
}

func getItem(s *server, k *topology.ItemKind, w http.ResponseWriter, r *http.Request) error {
	key := mux.Vars(r)[k.KeyField]
	ctx, cancel := s.storeContext(r)
	defer cancel()
	doc, rev, err := s.cfg.Store.Load(ctx)
	if err != nil {
		return fmt.Errorf("load %s/%s: %w", k.Name, key, err)
	}
	i := k.Index(doc, key)
	if i < 0 {
		return itemNotFound(k, key)
	}
	w.Header().Set("ETag", etag(rev))
	writeJSON(w, http.StatusOK, k.Item(doc, i))
	return nil
}

// putItem creates or replaces one item. The body is the item itself; its
// name (dpid for bridges) may be omitted, but if present it must be the
// one in the URL — renaming by PUT would silently orphan references.
func putItem(s *server, k *topology.ItemKind, w http.ResponseWriter, r *http.Request) error {
	key := mux.Vars(r)[k.KeyField]
	data, err := s.readBody(w, r)
	if err != nil {
		return err
	}
	// The strict single-pass decoder of ParseJSON (unknown or
	// case-variant fields, duplicate keys, wrong types, nesting, trailing
	// data); field paths are relative to the item ("prefx").
	item, err := k.Decode(data)
	if err != nil {
		return jsonError(err)
	}
	switch inBody := k.ItemKey(item); {
	case inBody == "":
		item = k.WithKey(item, key)
	case inBody != k.CanonicalKey(key):
		return newError(http.StatusBadRequest, CodeNameMismatch, k.KeyField,
			fmt.Sprintf("%s %q in the body differs from %q in the URL", k.KeyField, inBody, key))
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
		created = k.Put(doc, item)
		return topology.Validate(doc)
	}
	newRev, err := s.retryUnconditional(ctx, rev, func() (int64, error) {
		return s.cfg.Store.Update(ctx, store.WriteOptions{IfRevision: rev, Who: who}, put)
	})
	if err != nil {
		return err // mutate's own errors, or the store's with their context
	}
	s.cfg.Logger.Info("item written", "item", k.Name+"/"+key, "created", created, "revision", newRev, "who", who)
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
func deleteItem(s *server, k *topology.ItemKind, w http.ResponseWriter, r *http.Request) error {
	key := mux.Vars(r)[k.KeyField]
	rev, err := ifMatch(r, 0)
	if err != nil {
		return err
	}
	ctx, cancel := s.storeContext(r)
	defer cancel()
	who := infoFrom(r.Context()).who
	del := func(doc *topology.Document) error {
		i := k.Index(doc, key)
		if i < 0 {
			return itemNotFound(k, key)
		}
		name := k.Key(doc, i)
		if refs := k.References(doc, name); len(refs) > 0 {
			e := newError(http.StatusConflict, CodeReferenced, refs[0],
				fmt.Sprintf("%s/%s is still referenced by %s", k.Name, name, strings.Join(refs, ", ")))
			for _, ref := range refs {
				e.Details = append(e.Details, FieldIssue{Field: ref, Message: "refers to " + k.Name + "/" + name})
			}
			return e
		}
		k.Delete(doc, i)
		return topology.Validate(doc)
	}
	newRev, err := s.retryUnconditional(ctx, rev, func() (int64, error) {
		return s.cfg.Store.Update(ctx, store.WriteOptions{IfRevision: rev, Who: who}, del)
	})
	if err != nil {
		return err
	}
	s.cfg.Logger.Info("item deleted", "item", k.Name+"/"+key, "revision", newRev, "who", who)
	writeJSON(w, http.StatusOK, writeResponse{Revision: newRev})
	return nil
}

// indexItems maps each item of one kind to its JSON encoding, by key.
func indexItems(k *topology.ItemKind, d *topology.Document) map[string]string {
	out := make(map[string]string, k.Len(d))
	for i, n := 0, k.Len(d); i < n; i++ {
		b, err := json.Marshal(k.Item(d, i))
		if err != nil {
			b = []byte(err.Error())
		}
		out[k.Key(d, i)] = string(b)
	}
	return out
}
