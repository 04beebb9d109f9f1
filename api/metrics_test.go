package api

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/op25b/op25b/controller"
	"github.com/op25b/op25b/flows"
	"github.com/op25b/op25b/internal/buildinfo"
	"github.com/op25b/op25b/topology"
	"github.com/op25b/op25b/topology/store"
)

func TestMetrics(t *testing.T) {
	sw := &fakeSwitches{counters: map[topology.DPID][]controller.FlowCounter{}}
	docs := &fakeDocs{}
	metrics := NewMetrics(nil)
	e := newEnv(t, func(c *Config) { c.Switches = sw; c.Cache = docs; c.Metrics = metrics })
	rev := e.putExample()
	doc := e.load()
	docs.snap = store.Snapshot{Doc: doc, Revision: rev, Loaded: true}

	// The drop flows of the bridge, attributed to pools as Compile says.
	compiled, err := flows.Compile(doc, "0000000000000001", time.Now(), flows.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	var counters []controller.FlowCounter
	pools := map[string]bool{}
	for key, pool := range compiled.DropPool {
		counters = append(counters, controller.FlowCounter{Key: key, Packets: 3, Bytes: 180})
		pools[pool] = true
	}
	if len(counters) == 0 {
		t.Fatal("contract example compiles to no per-pool drop flows")
	}
	sw.status = []controller.BridgeStatus{
		{DPID: "0000000000000001", Connected: true, Role: "master", AppliedRevision: rev, Flows: len(compiled.Flows), DriftRepairs: 2, OpenFlowErrors: 1,
			DriftDetection: controller.DriftMonitor, FlowDumps: 3, MonitorResyncs: 1},
		{DPID: "0000000000000002", Connected: false, Role: "none"},
	}
	sw.counters["0000000000000001"] = counters

	metrics.ObserveEvent(controller.Event{Kind: controller.EventReconciled, DPID: "0000000000000001", Duration: 30 * time.Millisecond, Changes: 12})
	metrics.ObserveEvent(controller.Event{Kind: controller.EventReconcileFailed, DPID: "0000000000000001", Err: errors.New("x"), Duration: time.Second})
	metrics.ObserveEvent(controller.Event{Kind: controller.EventConnected, DPID: "0000000000000001"})
	e.do(http.MethodGet, "/v1/nope", "")

	rec := e.do(http.MethodGet, "/metrics", "")
	e.expect(rec, http.StatusOK, nil)
	text := rec.Body.String()
	want := []string{
		`op25b_bridges_connected 1`,
		`op25b_bridge_connected{dpid="0000000000000002"} 0`,
		`op25b_bridge_master{dpid="0000000000000001"} 1`,
		`op25b_bridge_applied_revision{dpid="0000000000000001"} ` + itoa(rev),
		`op25b_desired_revision ` + itoa(rev),
		`op25b_drift_repairs_total{dpid="0000000000000001"} 2`,
		`op25b_bridge_drift_detection{dpid="0000000000000001",mode="monitor"} 1`,
		`op25b_flow_dumps_total{dpid="0000000000000001"} 3`,
		`op25b_flow_monitor_resyncs_total{dpid="0000000000000001"} 1`,
		`op25b_openflow_errors_total{dpid="0000000000000001"} 1`,
		`op25b_blocked_packets_total{dpid="0000000000000001"} ` + itoa(int64(3*len(counters))),
		`op25b_blocked_bytes_total{dpid="0000000000000001"} ` + itoa(int64(180*len(counters))),
		`op25b_reconcile_duration_seconds_count 2`,
		`op25b_reconcile_flow_mods_total 12`,
		`op25b_switch_events_total{kind="reconcile_failed"} 1`,
		`op25b_api_requests_total{code="200",method="PUT",route="/v1/config"} 1`,
		`op25b_api_requests_total{code="404",method="GET",route="unmatched"} 1`,
		`go_goroutines`,
	}
	for pool := range pools {
		want = append(want, `op25b_pool_blocked_packets_total{dpid="0000000000000001",pool="`+pool+`"}`)
	}
	for _, w := range want {
		if !strings.Contains(text, w) {
			t.Errorf("metrics lack %q", w)
		}
	}
	bi := buildinfo.Read()
	if w := fmt.Sprintf(`op25b_build_info{commit=%q,goversion=%q,version=%q} 1`, bi.Commit, bi.GoVersion, bi.Version); !strings.Contains(text, w) {
		t.Errorf("metrics lack %s", w)
	}
	if t.Failed() {
		t.Log(text)
	}
}

// The --metrics-listen handler serves probes and metrics without a token
// and nothing else, whatever the token.
func TestMetricsOnly(t *testing.T) {
	tokens, err := LoadTokenFile(writeTokenFile(t, "noc secret write\n"))
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, func(c *Config) {
		c.Tokens = tokens
		c.Cache = &fakeDocs{snap: store.Snapshot{Loaded: true, Revision: 7}}
	})
	h, err := NewMetricsOnly(e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	get := func(path string, headers ...string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodGet, path, nil)
		for _, hd := range headers {
			name, value, _ := strings.Cut(hd, ":")
			req.Header.Set(name, strings.TrimSpace(value))
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	for _, path := range []string{"/metrics", "/healthz", "/readyz"} {
		if rec := get(path); rec.Code != http.StatusOK {
			t.Errorf("GET %s without token: %d %s", path, rec.Code, rec.Body)
		}
	}
	if rec := get("/metrics"); !strings.Contains(rec.Body.String(), "op25b_build_info{") {
		t.Errorf("/metrics lacks op25b_build_info")
	}
	for _, path := range []string{"/v1/status", "/v1/config", "/v1/audit", "/v1/openapi.yaml", "/"} {
		for _, auth := range []string{"", "Authorization: Bearer secret"} {
			if rec := get(path, auth); rec.Code != http.StatusNotFound {
				t.Errorf("GET %s (%q) on the metrics listener: %d, want 404", path, auth, rec.Code)
			}
		}
	}
	// The main API still wants its token.
	if rec := e.do(http.MethodGet, "/v1/status", ""); rec.Code != http.StatusUnauthorized {
		t.Errorf("API /v1/status without token: %d, want 401", rec.Code)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
