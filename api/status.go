package api

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"

	"github.com/gorilla/mux"

	"github.com/op25b/op25b/api/apitypes"
	"github.com/op25b/op25b/controller"
	"github.com/op25b/op25b/flows"
	"github.com/op25b/op25b/topology"
	"github.com/op25b/op25b/topology/store"
)

// The response types live in apitypes, shared with clients.
type (
	StatusResponse = apitypes.Status
	BridgeView     = apitypes.BridgeView
	FlowsResponse  = apitypes.Flows
	InstalledFlow  = apitypes.InstalledFlow
	EtcdView       = apitypes.EtcdView
)

// currentDocument prefers the watch cache (cheap, what the controllers
// converge to) and falls back to a consistent etcd read.
func (s *server) currentDocument(ctx context.Context) (*topology.Document, int64, error) {
	if s.cfg.Cache != nil {
		if snap := s.cfg.Cache.Current(); snap.Loaded && snap.Doc != nil {
			return snap.Doc, snap.Revision, nil
		}
	}
	doc, rev, err := s.cfg.Store.Load(ctx)
	if err != nil {
		return nil, 0, fmt.Errorf("load document: %w", err)
	}
	return doc, rev, nil
}

func (s *server) status(w http.ResponseWriter, r *http.Request) error {
	ctx, cancel := s.storeContext(r)
	defer cancel()
	doc, rev, err := s.currentDocument(ctx)
	if err != nil {
		return err
	}
	resp := StatusResponse{Revision: rev, Replicas: []apitypes.Replica{}, Etcd: etcdView(s.cfg.Etcd)}
	var records []store.BridgeStatus
	if s.cfg.Cluster != nil {
		replicas, err := s.cfg.Cluster.Replicas(ctx)
		if err != nil {
			return fmt.Errorf("read replicas: %w", err)
		}
		for _, r := range replicas {
			resp.Replicas = append(resp.Replicas, apitypes.Replica{ID: r.ID, APIAddr: r.APIAddr,
				OpenFlowAddr: r.OpenFlowAddr, Version: r.Version, Started: r.Started})
		}
		if records, err = s.cfg.Cluster.BridgeStatuses(ctx); err != nil {
			return fmt.Errorf("read bridge status: %w", err)
		}
	} else if s.cfg.Switches != nil {
		records = localRecords(s.cfg.Switches.Status(), s.cfg.NodeID)
	}
	resp.Bridges = mergeBridges(doc, records)
	if s.cfg.Cache != nil {
		if snap := s.cfg.Cache.Current(); snap.Err != nil {
			resp.DocumentError = snap.Err.Error()
		}
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}

// localRecords turns this replica's controller view into status records,
// for an API running without cluster status (single node, tests).
func localRecords(sts []controller.BridgeStatus, node string) []store.BridgeStatus {
	out := make([]store.BridgeStatus, 0, len(sts))
	for _, st := range sts {
		rec := store.BridgeStatus{DPID: st.DPID, Connected: st.Connected, AppliedRevision: st.AppliedRevision,
			Flows: st.Flows, LastError: st.LastError, LastReconcile: st.LastReconcile, DriftDetection: st.DriftDetection}
		if st.Role == "master" {
			rec.Master = node
		}
		out = append(out, rec)
	}
	return out
}

func mergeBridges(doc *topology.Document, records []store.BridgeStatus) []BridgeView {
	byDPID := map[topology.DPID]*BridgeView{}
	for _, b := range doc.Bridges {
		byDPID[b.DPID] = &BridgeView{DPID: b.DPID, Name: b.Name, Pop: b.Pop, Registered: true}
	}
	for _, rec := range records {
		dpid := rec.DPID
		v, ok := byDPID[dpid]
		if !ok {
			v = &BridgeView{DPID: dpid}
			byDPID[dpid] = v
		}
		v.Connected, v.Master, v.AppliedRevision = rec.Connected, rec.Master, rec.AppliedRevision
		v.Flows, v.LastError = rec.Flows, rec.LastError
		if rec.Connected && rec.Master != "" {
			v.DriftDetection = rec.DriftDetection
		}
		if !rec.LastReconcile.IsZero() {
			t := rec.LastReconcile
			v.LastReconcile = &t
		}
	}
	out := make([]BridgeView, 0, len(byDPID))
	for _, v := range byDPID {
		out = append(out, *v)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].DPID < out[j].DPID })
	return out
}

// localOnlyParam stops a forwarded request from being forwarded again.
const localOnlyParam = "local"

func (s *server) bridgeFlows(w http.ResponseWriter, r *http.Request) error {
	raw := mux.Vars(r)["dpid"]
	dpid, err := topology.ParseDPID(raw)
	if err != nil {
		return newError(http.StatusBadRequest, CodeBadRequest, "dpid", fmt.Sprintf("dpid %q must be 16 hex digits", raw))
	}
	ctx, cancel := s.storeContext(r)
	defer cancel()
	doc, rev, err := s.currentDocument(ctx)
	if err != nil {
		return err
	}
	_, registered := doc.BridgePop(dpid)
	at := s.cfg.Now()
	compiled, err := flows.Compile(doc, dpid, at, s.cfg.Pipeline)
	if err != nil {
		return fmt.Errorf("compile %s: %w", dpid, err)
	}
	resp := FlowsResponse{DPID: dpid, Registered: registered, Revision: rev, At: at,
		Desired: renderAll(compiled.Flows), Installed: []InstalledFlow{}, Missing: []string{}, Extra: []string{}}

	view, err := s.installedFlows(ctx, r, dpid, compiled.Flows)
	switch {
	case err != nil:
		resp.InstalledError = err.Error()
	case view == nil:
		if !registered {
			return newError(http.StatusNotFound, CodeNotFound, "dpid", fmt.Sprintf("bridge %s is neither in the document nor connected", dpid))
		}
		resp.InstalledError = "bridge is not connected to any replica"
	default:
		resp.InstalledSource, resp.Installed, resp.Missing, resp.Extra = view.source, view.installed, view.missing, view.extra
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}

func renderAll(fs []flows.Flow) []string {
	out := make([]string, 0, len(fs))
	for _, f := range fs {
		out = append(out, flows.Render(f))
	}
	return out
}

func installedView(fs []flows.Flow, counters []controller.FlowCounter) []InstalledFlow {
	byKey := make(map[flows.Key]controller.FlowCounter, len(counters))
	for _, c := range counters {
		byKey[c.Key] = c
	}
	out := make([]InstalledFlow, 0, len(fs))
	for _, f := range fs {
		c := byKey[f.Key()]
		out = append(out, InstalledFlow{Flow: flows.Render(f), Packets: c.Packets, Bytes: c.Bytes})
	}
	return out
}

// installedResult is the installed side of FlowsResponse.
type installedResult struct {
	source         string
	installed      []InstalledFlow
	missing, extra []string
}

// installedFlows dumps the bridge through this replica's controller when
// it is connected, otherwise asks the master replica's API. It returns nil
// (and no error) when no replica reports the bridge connected.
func (s *server) installedFlows(ctx context.Context, r *http.Request, dpid topology.DPID, desired []flows.Flow) (*installedResult, error) {
	local, master, err := s.sessionOf(ctx, r, dpid)
	switch {
	case err != nil:
		return nil, err
	case local:
		fs, counters, err := s.cfg.Switches.Installed(ctx, dpid)
		if err != nil {
			return nil, fmt.Errorf("dump flows of %s: %w", dpid, err)
		}
		return compareInstalled(desired, fs, counters), nil
	case master != nil:
		return s.forwardFlows(ctx, r, *master, dpid)
	}
	return nil, nil
}

// sessionOf says where the OpenFlow session of dpid is, the only place its
// installed flows can be read: this replica's controller (local), or the
// master replica, whose API a request is forwarded to. Neither (and no
// error) when no replica reports the bridge connected, or when r was
// already forwarded (?local=1: never forwarded twice).
func (s *server) sessionOf(ctx context.Context, r *http.Request, dpid topology.DPID) (local bool, master *store.ReplicaInfo, err error) {
	if s.cfg.Switches != nil {
		for _, st := range s.cfg.Switches.Status() {
			if st.DPID == dpid && st.Connected {
				return true, nil, nil
			}
		}
	}
	if s.cfg.Cluster == nil || r.URL.Query().Get(localOnlyParam) != "" {
		return false, nil, nil
	}
	records, err := s.cfg.Cluster.BridgeStatuses(ctx)
	if err != nil {
		return false, nil, fmt.Errorf("read bridge status: %w", err)
	}
	id := ""
	for _, rec := range records {
		if rec.DPID == dpid && rec.Connected {
			id = rec.Master
		}
	}
	if id == "" || id == s.cfg.NodeID {
		return false, nil, nil
	}
	replicas, err := s.cfg.Cluster.Replicas(ctx)
	if err != nil {
		return false, nil, fmt.Errorf("read replicas: %w", err)
	}
	for _, rep := range replicas {
		if rep.ID == id {
			return false, &rep, nil
		}
	}
	return false, nil, fmt.Errorf("master replica %q of %s is not registered", id, dpid)
}

func compareInstalled(desired, installed []flows.Flow, counters []controller.FlowCounter) *installedResult {
	res := &installedResult{source: "local", installed: installedView(installed, counters), missing: []string{}, extra: []string{}}
	for _, c := range flows.Diff(desired, installed) {
		switch c.Op {
		case flows.OpAdd, flows.OpModify:
			res.missing = append(res.missing, flows.Render(c.Flow))
		case flows.OpDelete:
			res.extra = append(res.extra, flows.Render(c.Flow))
		}
	}
	return res
}

// forwardFlows asks the master replica's API for its local view of the
// bridge (only the replica holding the OpenFlow session can dump it).
func (s *server) forwardFlows(ctx context.Context, r *http.Request, rep store.ReplicaInfo, dpid topology.DPID) (*installedResult, error) {
	var remote FlowsResponse
	if err := s.forwardGet(ctx, r, rep, "/v1/bridges/"+url.PathEscape(string(dpid))+"/flows", nil, &remote); err != nil {
		return nil, err
	}
	if remote.InstalledSource == "" {
		return nil, fmt.Errorf("replica %s: %s", rep.ID, remote.InstalledError)
	}
	return &installedResult{source: "replica:" + rep.ID, installed: remote.Installed, missing: remote.Missing, extra: remote.Extra}, nil
}

// forwardGet sends GET path?query&local=1 to a replica's API, passing the
// caller's credentials (all replicas share the token file), and decodes
// the JSON answer into into.
func (s *server) forwardGet(ctx context.Context, r *http.Request, rep store.ReplicaInfo, path string, query url.Values, into any) error {
	base := rep.APIAddr
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	q := url.Values{}
	for k, v := range query {
		q[k] = v
	}
	q.Set(localOnlyParam, "1")
	u := strings.TrimSuffix(base, "/") + path + "?" + q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("forward to replica %s: %w", rep.ID, err)
	}
	if auth := r.Header.Get("Authorization"); auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := s.cfg.HTTPClient.Do(req)
	if err != nil {
		return fmt.Errorf("forward to replica %s: %w", rep.ID, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("forward to replica %s: HTTP %d", rep.ID, resp.StatusCode)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<30)).Decode(into); err != nil {
		return fmt.Errorf("forward to replica %s: %w", rep.ID, err)
	}
	return nil
}
