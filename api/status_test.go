package api

import (
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/op25b/op25b/controller"
	"github.com/op25b/op25b/flows"
	"github.com/op25b/op25b/topology"
	"github.com/op25b/op25b/topology/store"
)

func TestStatusMergesDocumentAndRecords(t *testing.T) {
	cluster := &fakeCluster{
		replicas: []store.ReplicaInfo{{ID: "node-a", APIAddr: "127.0.0.1:8080"}},
	}
	e := newEnv(t, func(c *Config) { c.Cluster = cluster })
	rev := e.putExample()
	cluster.bridges = []store.BridgeStatus{
		{DPID: "0000000000000001", Connected: true, Master: "node-a", AppliedRevision: rev, Flows: 40, Registered: true, LastReconcile: testClock,
			DriftDetection: controller.DriftMonitor},
		{DPID: "00000000000000AA", Connected: true, Master: "node-b", AppliedRevision: rev - 1, LastError: "bundle refused"},
		// An orphan's stale mode is not reported: nobody masters it.
		{DPID: "00000000000000BB", Connected: false, DriftDetection: controller.DriftPoll},
	}
	var st StatusResponse
	e.expect(e.do(http.MethodGet, "/v1/status", ""), http.StatusOK, &st)
	if st.Revision != rev || len(st.Replicas) != 1 || len(st.Bridges) != 3 {
		t.Fatalf("status %+v", st)
	}
	b0, b1 := st.Bridges[0], st.Bridges[1]
	if b0.DPID != "0000000000000001" || b0.Name != "tokyo-1-sub-a" || b0.Pop != "tokyo-1" || !b0.Registered ||
		!b0.Connected || b0.Master != "node-a" || b0.AppliedRevision != rev || b0.Flows != 40 || b0.LastReconcile == nil ||
		b0.DriftDetection != controller.DriftMonitor {
		t.Fatalf("registered bridge: %+v", b0)
	}
	if b1.DPID != "00000000000000aa" || b1.Registered || b1.Name != "" || b1.LastError != "bundle refused" || b1.AppliedRevision != rev-1 ||
		b1.DriftDetection != "" {
		t.Fatalf("unregistered bridge: %+v", b1)
	}
	if b2 := st.Bridges[2]; b2.DriftDetection != "" {
		t.Fatalf("orphan reports drift detection %q", b2.DriftDetection)
	}
	// The wire names are the contract's.
	rec := e.do(http.MethodGet, "/v1/status", "")
	for _, field := range []string{`"dpid"`, `"name"`, `"pop"`, `"connected"`, `"master"`, `"applied_revision"`, `"flows"`, `"last_error"`, `"replicas"`, `"revision"`} {
		if !strings.Contains(rec.Body.String(), field) {
			t.Fatalf("status lacks %s: %s", field, rec.Body.String())
		}
	}
}

// A replica without cluster status (single node) reports its controller.
func TestStatusFromLocalController(t *testing.T) {
	sw := &fakeSwitches{}
	e := newEnv(t, func(c *Config) { c.Cluster = nil; c.Switches = sw })
	rev := e.putExample()
	sw.status = []controller.BridgeStatus{statusOf("0000000000000001", true, "master", rev)}
	var st StatusResponse
	e.expect(e.do(http.MethodGet, "/v1/status", ""), http.StatusOK, &st)
	if len(st.Bridges) != 1 || !st.Bridges[0].Connected || st.Bridges[0].Master != "node-a" || st.Bridges[0].AppliedRevision != rev {
		t.Fatalf("status %+v", st)
	}
}

func TestBridgeFlowsLocal(t *testing.T) {
	sw := &fakeSwitches{installed: map[topology.DPID][]flows.Flow{}, counters: map[topology.DPID][]controller.FlowCounter{}}
	e := newEnv(t, func(c *Config) { c.Switches = sw })
	rev := e.putExample()
	doc := e.load()
	desired, err := flows.Compile(doc, "0000000000000001", testClock, flows.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	// Installed = desired minus its first flow, plus a stale one; one drop
	// flow has counters.
	stale := desired.Flows[0]
	stale.Priority++
	installed := append([]flows.Flow{stale}, desired.Flows[1:]...)
	var drop flows.Flow
	for k := range desired.DropPool {
		for _, f := range desired.Flows {
			if f.Key() == k {
				drop = f
			}
		}
	}
	sw.status = []controller.BridgeStatus{statusOf("0000000000000001", true, "master", rev)}
	sw.installed["0000000000000001"] = installed
	sw.counters["0000000000000001"] = []controller.FlowCounter{{Key: drop.Key(), Cookie: drop.Cookie, Packets: 7, Bytes: 420}}

	var fr FlowsResponse
	e.expect(e.do(http.MethodGet, "/v1/bridges/0000000000000001/flows", ""), http.StatusOK, &fr)
	if fr.InstalledSource != "local" || fr.Revision != rev || !fr.Registered || len(fr.Desired) != len(desired.Flows) || len(fr.Installed) != len(installed) {
		t.Fatalf("flows response: source %q rev %d desired %d installed %d", fr.InstalledSource, fr.Revision, len(fr.Desired), len(fr.Installed))
	}
	if len(fr.Missing) != 1 || fr.Missing[0] != flows.Render(desired.Flows[0]) || len(fr.Extra) != 1 || fr.Extra[0] != flows.Render(stale) {
		t.Fatalf("missing %v extra %v", fr.Missing, fr.Extra)
	}
	counted := false
	for _, f := range fr.Installed {
		if f.Flow == flows.Render(drop) && f.Packets == 7 && f.Bytes == 420 {
			counted = true
		}
	}
	if !counted {
		t.Fatalf("drop flow counters not reported: %+v", fr.Installed)
	}
	// Upper-case dpid is the same bridge.
	e.expect(e.do(http.MethodGet, "/v1/bridges/000000000000000A/flows", ""), http.StatusNotFound, nil)
	e.expectError(e.do(http.MethodGet, "/v1/bridges/0x01/flows", ""), http.StatusBadRequest, CodeBadRequest, "dpid")

	// A registered bridge connected nowhere: desired flows, installed unavailable.
	sw.status = nil
	e.expect(e.do(http.MethodGet, "/v1/bridges/0000000000000001/flows", ""), http.StatusOK, &fr)
	if fr.InstalledSource != "" || fr.InstalledError == "" || len(fr.Desired) == 0 {
		t.Fatalf("unconnected bridge: %+v", fr)
	}
}

// Another replica is master of the bridge: this replica forwards to the
// master's API, which dumps through its own controller.
func TestBridgeFlowsForwardedToMaster(t *testing.T) {
	sw := &fakeSwitches{installed: map[topology.DPID][]flows.Flow{}, counters: map[topology.DPID][]controller.FlowCounter{}}
	master := newEnv(t, func(c *Config) { c.NodeID = "node-b"; c.Switches = sw })
	rev := master.putExample()
	desired, err := flows.Compile(master.load(), "0000000000000001", testClock, flows.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	sw.status = []controller.BridgeStatus{statusOf("0000000000000001", true, "master", rev)}
	sw.installed["0000000000000001"] = desired.Flows
	srv := httptest.NewServer(master.handler)
	defer srv.Close()

	cluster := &fakeCluster{
		bridges:  []store.BridgeStatus{{DPID: "0000000000000001", Connected: true, Master: "node-b"}},
		replicas: []store.ReplicaInfo{{ID: "node-a"}, {ID: "node-b", APIAddr: strings.TrimPrefix(srv.URL, "http://")}},
	}
	other := newEnv(t, func(c *Config) { c.Store = master.store; c.Cluster = cluster })
	var fr FlowsResponse
	other.expect(other.do(http.MethodGet, "/v1/bridges/0000000000000001/flows", ""), http.StatusOK, &fr)
	if fr.InstalledSource != "replica:node-b" || len(fr.Installed) != len(desired.Flows) || len(fr.Missing)+len(fr.Extra) != 0 {
		t.Fatalf("forwarded flows: source %q installed %d missing %v extra %v err %q", fr.InstalledSource, len(fr.Installed), fr.Missing, fr.Extra, fr.InstalledError)
	}
	// The master gone: the answer says installed flows are unavailable, not 5xx.
	srv.Close()
	other.expect(other.do(http.MethodGet, "/v1/bridges/0000000000000001/flows", ""), http.StatusOK, &fr)
	if fr.InstalledSource != "" || !strings.Contains(fr.InstalledError, "node-b") {
		t.Fatalf("unreachable master: %+v", fr)
	}
}

// With etcd unreachable, reads and writes are 503 and nothing changes.
func TestEtcdUnavailable(t *testing.T) {
	cli := deadEtcdClient(t)
	st := store.New(cli, "/dead/", slog.New(slog.DiscardHandler))
	e := newEnv(t, func(c *Config) {
		c.Store, c.Cluster = st, st
		c.StoreTimeout = 500 * time.Millisecond
		c.Cache = &fakeDocs{healthy: store.ErrUnavailable}
	})
	doc := contractExample(t)
	for _, req := range []struct{ method, path, body string }{
		{"GET", "/v1/config", ""},
		{"PUT", "/v1/config", doc},
		{"PUT", "/v1/config?dry_run=true", doc},
		{"GET", "/v1/pools", ""},
		{"PUT", "/v1/relays/x", `{"prefix": "192.0.2.1/32"}`},
		{"DELETE", "/v1/pools/tokyo-dyn", ""},
		{"GET", "/v1/status", ""},
		{"GET", "/v1/audit", ""},
		{"GET", "/readyz", ""},
	} {
		e.expectError(e.do(req.method, req.path, req.body), http.StatusServiceUnavailable, CodeUnavailable, "")
	}
	// Bad input is still a 400, before any etcd call.
	e.expectError(e.do(http.MethodPut, "/v1/config", "{"), http.StatusBadRequest, CodeInvalidJSON, "*")
	e.expect(e.do(http.MethodGet, "/healthz", ""), http.StatusOK, nil)
}

func TestReadyz(t *testing.T) {
	docs := &fakeDocs{healthy: store.ErrUnavailable}
	e := newEnv(t, func(c *Config) { c.Cache = docs })
	e.expectError(e.do(http.MethodGet, "/readyz", ""), http.StatusServiceUnavailable, CodeUnavailable, "")
	docs.healthy = nil
	docs.snap = store.Snapshot{Doc: &topology.Document{}, Revision: 9, Loaded: true}
	var body map[string]any
	e.expect(e.do(http.MethodGet, "/readyz", ""), http.StatusOK, &body)
	if body["revision"].(float64) != 9 {
		t.Fatalf("readyz %v", body)
	}
}

// deadEtcdClient points at a loopback port nobody listens on.
func deadEtcdClient(t *testing.T) *clientv3.Client {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{addr}, DialTimeout: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// A value in etcd that does not decode or validate shows in status, next to
// the revision of the last good document that stays enforced.
func TestStatusReportsInvalidStoredDocument(t *testing.T) {
	docs := &fakeDocs{snap: store.Snapshot{Doc: &topology.Document{}, Revision: 7, Loaded: true,
		Err: errors.New("pools/x: invalid stored value")}}
	e := newEnv(t, func(c *Config) { c.Cache = docs })
	var st StatusResponse
	e.expect(e.do(http.MethodGet, "/v1/status", ""), http.StatusOK, &st)
	if st.Revision != 7 || !strings.Contains(st.DocumentError, "invalid stored value") {
		t.Fatalf("status %+v, want revision 7 and the document error", st)
	}
	docs.snap.Err = nil
	e.expect(e.do(http.MethodGet, "/v1/status", ""), http.StatusOK, &st)
	if rec := e.do(http.MethodGet, "/v1/status", ""); strings.Contains(rec.Body.String(), "document_error") {
		t.Fatalf("document_error shown without an error: %s", rec.Body.String())
	}
}
