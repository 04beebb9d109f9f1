package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"time"

	"github.com/op25b/op25b/api/apitypes"
	"github.com/op25b/op25b/flows"
	"github.com/op25b/op25b/topology"
	"github.com/op25b/op25b/topology/store"
)

// documentResponse is GET /v1/config: the document with its revision.
type documentResponse = apitypes.Config

// writeResponse is what every successful write returns (docs/rest-api.md).
type writeResponse = apitypes.WriteResult

func (s *server) getConfig(w http.ResponseWriter, r *http.Request) error {
	at, err := queryInt(r.URL.Query().Get("revision"), "revision", 0, 1, 1<<62)
	if err != nil {
		return err
	}
	ctx, cancel := s.storeContext(r)
	defer cancel()
	var doc *topology.Document
	var rev int64
	if at > 0 {
		// A past document: no ETag, it is not something to PUT If-Match on.
		doc, rev, err = s.cfg.Store.LoadAt(ctx, at)
		if err != nil {
			return fmt.Errorf("load document at revision %d: %w", at, err)
		}
		writeJSON(w, http.StatusOK, documentResponse{Revision: rev, Document: withEmptyLists(doc)})
		return nil
	}
	doc, rev, err = s.cfg.Store.Load(ctx)
	if err != nil {
		return fmt.Errorf("load document: %w", err)
	}
	w.Header().Set("ETag", etag(rev))
	writeJSON(w, http.StatusOK, documentResponse{Revision: rev, Document: withEmptyLists(doc)})
	return nil
}

// withEmptyLists makes absent collections [] rather than null, so clients
// can iterate without a nil check. The input is not modified.
func withEmptyLists(doc *topology.Document) *topology.Document {
	if doc == nil {
		doc = &topology.Document{}
	}
	d := *doc
	if d.Pools == nil {
		d.Pools = []topology.Pool{}
	}
	if d.Relays == nil {
		d.Relays = []topology.Relay{}
	}
	if d.Destinations == nil {
		d.Destinations = []topology.DestinationSet{}
	}
	if d.Services == nil {
		d.Services = []topology.Service{}
	}
	if d.Bridges == nil {
		d.Bridges = []topology.Bridge{}
	}
	return &d
}

func (s *server) putConfig(w http.ResponseWriter, r *http.Request) error {
	dryRun, err := dryRunParam(r)
	if err != nil {
		return err
	}
	data, err := s.readBody(w, r)
	if err != nil {
		return err
	}
	doc, bodyRev, err := parseDocument(data)
	if err != nil {
		return err
	}
	rev, err := ifMatch(r, bodyRev)
	if err != nil {
		return err
	}
	ctx, cancel := s.storeContext(r)
	defer cancel()
	if dryRun {
		// The same validation as Replace, so a dry run rejects exactly
		// what a real PUT rejects.
		if err := topology.Validate(doc); err != nil {
			return err
		}
		return s.dryRun(ctx, w, doc, rev)
	}
	// Replace validates before any etcd request (ConfigStore contract), so
	// a 100k-pool document is not validated twice.
	who := infoFrom(r.Context()).who
	newRev, err := s.retryUnconditional(ctx, rev, func() (int64, error) {
		return s.cfg.Store.Replace(ctx, doc, store.WriteOptions{IfRevision: rev, Who: who})
	})
	if err != nil {
		return err // the store's errors carry their context ("replace: ...")
	}
	s.cfg.Logger.Info("document replaced", "revision", newRev, "who", who, "pools", len(doc.Pools))
	writeJSON(w, http.StatusOK, writeResponse{Revision: newRev})
	return nil
}

// rollback stores the document of an earlier revision again. If-Match is
// required: a rollback decided on what the operator saw must not undo a
// change made since, unseen.
func (s *server) rollback(w http.ResponseWriter, r *http.Request) error {
	data, err := s.readBody(w, r)
	if err != nil {
		return err
	}
	// The same strict decoder as every other body: a repeated "revision"
	// is refused, not resolved by last-wins.
	var body apitypes.Rollback
	if err := topology.ParseJSONItem(data, &body); err != nil {
		return jsonError(err)
	}
	if body.Revision <= 0 {
		return newError(http.StatusBadRequest, CodeBadRequest, "revision", "revision must be a positive integer: the revision whose document to restore")
	}
	rev, err := ifMatch(r, 0)
	if err != nil {
		return err
	}
	if rev == 0 {
		return newError(http.StatusBadRequest, CodeBadRequest, "If-Match",
			"If-Match is required: the current revision, as you saw it (GET /v1/config)")
	}
	ctx, cancel := s.storeContext(r)
	defer cancel()
	who := infoFrom(r.Context()).who
	newRev, err := s.cfg.Store.Rollback(ctx, body.Revision, store.WriteOptions{IfRevision: rev, Who: who})
	if err != nil {
		return err
	}
	s.cfg.Logger.Info("document rolled back", "to", body.Revision, "revision", newRev, "who", who)
	writeJSON(w, http.StatusOK, writeResponse{Revision: newRev})
	return nil
}

// The response types live in apitypes, shared with clients.
type (
	DryRunResponse = apitypes.DryRun
	ItemChanges    = apitypes.ItemChanges
	BridgeDiff     = apitypes.BridgeDiff
)

func (s *server) dryRun(ctx context.Context, w http.ResponseWriter, doc *topology.Document, ifRev int64) error {
	current, rev, err := s.cfg.Store.Load(ctx)
	if err != nil {
		return fmt.Errorf("load document: %w", err)
	}
	if ifRev != 0 && ifRev != rev {
		return conflictError(rev, ifRev)
	}
	connected := s.connectedBridges(ctx)
	at := s.cfg.Now()
	resp := DryRunResponse{DryRun: true, Revision: rev, ComparedWith: "desired", At: at, Items: diffItems(current, doc)}
	// A bridge's flows depend on the document only through its pop
	// (docs/semantics.md, phases: phases are scoped by pop; an unregistered bridge is
	// enforced with pop ""), so bridges sharing a pop before and after
	// share one diff: 100 bridges in a few pops cost a few compiles.
	type popPair struct{ before, after string }
	diffs := map[popPair]flowChanges{}
	for _, dpid := range bridgeUnion(current, doc, connected) {
		_, registered := doc.BridgePop(dpid)
		bd := BridgeDiff{DPID: dpid, Name: bridgeName(doc, dpid), Registered: registered, Connected: connected[dpid]}
		if bd.Name == "" {
			bd.Name = bridgeName(current, dpid)
		}
		oldPop, _ := current.BridgePop(dpid)
		newPop, _ := doc.BridgePop(dpid)
		key := popPair{oldPop, newPop}
		ch, ok := diffs[key]
		if !ok {
			var err error
			if ch, err = diffBridge(current, doc, dpid, at, s.cfg.Pipeline); err != nil {
				return err
			}
			diffs[key] = ch
		}
		bd.Add, bd.Modify, bd.Delete = ch.add, ch.modify, ch.delete
		resp.Bridges = append(resp.Bridges, bd)
	}
	if resp.Bridges == nil {
		resp.Bridges = []BridgeDiff{}
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}

type flowChanges struct{ add, modify, delete []string }

// diffBridge compiles both documents for one bridge and renders the
// changes in ovs-ofctl syntax.
func diffBridge(current, doc *topology.Document, dpid topology.DPID, at time.Time, pipeline flows.Options) (flowChanges, error) {
	ch := flowChanges{add: []string{}, modify: []string{}, delete: []string{}}
	before, err := flows.Compile(current, dpid, at, pipeline)
	if err != nil {
		return ch, fmt.Errorf("compile current document for %s: %w", dpid, err)
	}
	after, err := flows.Compile(doc, dpid, at, pipeline)
	if err != nil {
		return ch, fmt.Errorf("compile new document for %s: %w", dpid, err)
	}
	for _, c := range flows.Diff(after.Flows, before.Flows) {
		switch c.Op {
		case flows.OpAdd:
			ch.add = append(ch.add, flows.Render(c.Flow))
		case flows.OpModify:
			ch.modify = append(ch.modify, flows.Render(c.Flow))
		case flows.OpDelete:
			ch.delete = append(ch.delete, flows.Render(c.Flow))
		}
	}
	return ch, nil
}

// connectedBridges is every bridge connected to any replica (cluster status
// records) or to this one. It is best effort: a dry run still answers for
// the document's bridges when the status records cannot be read.
func (s *server) connectedBridges(ctx context.Context) map[topology.DPID]bool {
	out := map[topology.DPID]bool{}
	if s.cfg.Cluster != nil {
		if sts, err := s.cfg.Cluster.BridgeStatuses(ctx); err == nil {
			for _, st := range sts {
				if st.Connected {
					out[st.DPID] = true
				}
			}
		} else {
			s.cfg.Logger.Warn("dry run: bridge status records unavailable", "err", err)
		}
	}
	if s.cfg.Switches != nil {
		for _, st := range s.cfg.Switches.Status() {
			if st.Connected {
				out[st.DPID] = true
			}
		}
	}
	return out
}

func bridgeUnion(a, b *topology.Document, connected map[topology.DPID]bool) []topology.DPID {
	set := map[topology.DPID]bool{}
	for _, d := range []*topology.Document{a, b} {
		for _, br := range d.Bridges {
			set[br.DPID] = true
		}
	}
	for dpid := range connected {
		set[dpid] = true
	}
	out := make([]topology.DPID, 0, len(set))
	for dpid := range set {
		out = append(out, dpid)
	}
	slices.Sort(out)
	return out
}

func bridgeName(doc *topology.Document, dpid topology.DPID) string {
	for _, br := range doc.Bridges {
		if br.DPID == dpid {
			return br.Name
		}
	}
	return ""
}

// diffItems compares two documents item by item (by name, or dpid for
// bridges), using each item's JSON as its value.
func diffItems(before, after *topology.Document) ItemChanges {
	ch := ItemChanges{Added: []string{}, Changed: []string{}, Removed: []string{}}
	if !equalJSON(before.EffectivePorts(), after.EffectivePorts()) {
		ch.Changed = append(ch.Changed, "ports")
	}
	for _, k := range topology.ItemKinds {
		old, neu := indexItems(k, before), indexItems(k, after)
		for key, v := range neu {
			prev, ok := old[key]
			switch {
			case !ok:
				ch.Added = append(ch.Added, k.Name+"/"+key)
			case prev != v:
				ch.Changed = append(ch.Changed, k.Name+"/"+key)
			}
		}
		for key := range old {
			if _, ok := neu[key]; !ok {
				ch.Removed = append(ch.Removed, k.Name+"/"+key)
			}
		}
	}
	sort.Strings(ch.Added)
	sort.Strings(ch.Changed)
	sort.Strings(ch.Removed)
	return ch
}

func equalJSON(a, b any) bool {
	ja, errA := json.Marshal(a)
	jb, errB := json.Marshal(b)
	return errA == nil && errB == nil && string(ja) == string(jb)
}
