package api

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"

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
		{DPID: "0000000000000001", Connected: true, Role: "master", AppliedRevision: rev, DesiredRevision: rev + 1, Flows: len(compiled.Flows),
			DriftRepairs: 2, OpenFlowErrors: 1, ReconcileFailures: 4, MastershipChanges: 3,
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
	const one = `dpid="0000000000000001",name="tokyo-1-sub-a",pop="tokyo-1"`
	want := []string{
		`op25b_bridges_connected 1`,
		// Not in the document: pop and name are empty.
		`op25b_bridge_connected{dpid="0000000000000002",name="",pop=""} 0`,
		`op25b_bridge_connected{` + one + `} 1`,
		`op25b_bridge_master{` + one + `} 1`,
		`op25b_bridge_applied_revision{` + one + `} ` + itoa(rev),
		`op25b_bridge_desired_revision{` + one + `} ` + itoa(rev+1),
		`op25b_desired_revision ` + itoa(rev),
		`op25b_drift_repairs_total{` + one + `} 2`,
		`op25b_bridge_drift_detection{dpid="0000000000000001",mode="monitor",name="tokyo-1-sub-a",pop="tokyo-1"} 1`,
		`op25b_flow_dumps_total{` + one + `} 3`,
		`op25b_flow_monitor_resyncs_total{` + one + `} 1`,
		`op25b_openflow_errors_total{` + one + `} 1`,
		`op25b_bridge_reconcile_failures_total{` + one + `} 4`,
		`op25b_bridge_mastership_changes_total{` + one + `} 3`,
		`op25b_blocked_packets_total{` + one + `} ` + itoa(int64(3*len(counters))),
		`op25b_blocked_bytes_total{` + one + `} ` + itoa(int64(180*len(counters))),
		// testClock is after every ftth boundary: its last global phase is active, nothing is next.
		`op25b_phase_active{from="2006-12-15T00:00:00+09:00",mode="enforce",phase="2",pop="tokyo-1",service="ftth"} 1`,
		`op25b_phase_active{from="2006-11-01T00:00:00+09:00",mode="enforce",phase="0",pop="tokyo-1",service="ftth"} 0`,
		`op25b_phase_active{from="2006-12-01T00:00:00+09:00",mode="enforce",phase="1",pop="osaka-1",service="ftth"} 0`,
		`op25b_phase_active{from="",mode="enforce",phase="0",pop="osaka-1",service="v6plus"} 1`,
		`op25b_reconcile_duration_seconds_count 2`,
		`op25b_reconcile_flow_mods_total 12`,
		`op25b_switch_events_total{kind="reconcile_failed"} 1`,
		`op25b_api_requests_total{code="200",method="PUT",route="/v1/config"} 1`,
		`op25b_api_requests_total{code="404",method="GET",route="unmatched"} 1`,
		`go_goroutines`,
	}
	for pool := range pools {
		want = append(want, `op25b_pool_blocked_packets_total{dpid="0000000000000001",name="tokyo-1-sub-a",pool="`+pool+`",pop="tokyo-1"}`)
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
	if strings.Contains(text, "op25b_phase_next_change_timestamp_seconds{") {
		t.Errorf("a next phase change reported after the last boundary")
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

type fakeReplica struct{ h ReplicaHealth }

func (f fakeReplica) Health() ReplicaHealth { return f.h }

type fakeCerts []CertificateExpiry

func (f fakeCerts) Certificates() []CertificateExpiry { return f }

// rolloutDoc is testdata/rollout.json: at testClock (2007-01-10) both
// pops are in phase 0; osaka-1's own phase 1 starts 2007-01-15 (+09:00),
// the global phase 2 on 2007-02-01.
func rolloutDoc(t testing.TB) *topology.Document {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "rollout.json"))
	if err != nil {
		t.Fatal(err)
	}
	doc, err := topology.ParseJSON(data)
	if err != nil {
		t.Fatal(err)
	}
	if err := topology.Validate(doc); err != nil {
		t.Fatal(err)
	}
	return doc
}

// Phases per pop, the next boundary, a registered bridge this replica
// never saw, the replica's etcd and lease health and certificate expiry
// times; and the whole /metrics output is promlint-clean.
func TestMetricsRolloutReplicaAndLint(t *testing.T) {
	caExpiry := time.Date(2008, 3, 1, 0, 0, 0, 0, time.UTC)
	sw := &fakeSwitches{status: []controller.BridgeStatus{
		{DPID: "0000000000000001", Connected: true, Role: "master", AppliedRevision: 5, DesiredRevision: 5, Flows: 9},
		{DPID: "00000000000000ff", Connected: true, Role: "slave", AppliedRevision: 0, DesiredRevision: 5},
	}}
	e := newEnv(t, func(c *Config) {
		c.Switches = sw
		c.Cache = &fakeDocs{snap: store.Snapshot{Doc: rolloutDoc(t), Revision: 5, Loaded: true}}
		c.Replica = fakeReplica{ReplicaHealth{LeaseHeld: true, LeaseExpires: testClock.Add(7 * time.Second)}}
		c.Certificates = fakeCerts{
			{Channel: "openflow", File: "/etc/op25b/of-cert.pem", NotAfter: caExpiry.Add(-24 * time.Hour)},
			{Channel: "openflow", File: "/etc/op25b/of-ca.pem", NotAfter: caExpiry},
		}
	})
	rec := e.do(http.MethodGet, "/metrics", "")
	e.expect(rec, http.StatusOK, nil)
	text := rec.Body.String()
	for _, w := range []string{
		`op25b_phase_active{from="2006-12-01T00:00:00+09:00",mode="enforce",phase="0",pop="osaka-1",service="ftth"} 1`,
		`op25b_phase_active{from="2007-01-15T00:00:00+09:00",mode="enforce",phase="1",pop="osaka-1",service="ftth"} 0`,
		`op25b_phase_active{from="2007-02-01T00:00:00+09:00",mode="enforce",phase="2",pop="osaka-1",service="ftth"} 0`,
		`op25b_phase_active{from="2006-12-01T00:00:00+09:00",mode="enforce",phase="0",pop="tokyo-1",service="ftth"} 1`,
		`op25b_phase_next_change_timestamp_seconds{pop="osaka-1",service="ftth"} ` + unix(time.Date(2007, 1, 14, 15, 0, 0, 0, time.UTC)),
		`op25b_phase_next_change_timestamp_seconds{pop="tokyo-1",service="ftth"} ` + unix(time.Date(2007, 1, 31, 15, 0, 0, 0, time.UTC)),
		// Registered, never seen by this replica: not connected here.
		`op25b_bridge_connected{dpid="0000000000000002",name="osaka-1-sub-a",pop="osaka-1"} 0`,
		`op25b_bridge_master{dpid="0000000000000002",name="osaka-1-sub-a",pop="osaka-1"} 0`,
		// Connected but not registered.
		`op25b_bridge_desired_revision{dpid="00000000000000ff",name="",pop=""} 5`,
		`op25b_etcd_up 1`,
		`op25b_replica_lease_held 1`,
		`op25b_lease_remaining_seconds 7`,
		`op25b_certificate_expiry_timestamp_seconds{channel="openflow",file="/etc/op25b/of-ca.pem"} ` + unix(caExpiry),
		`op25b_certificate_expiry_timestamp_seconds{channel="openflow",file="/etc/op25b/of-cert.pem"} ` + unix(caExpiry.Add(-24*time.Hour)),
	} {
		if !strings.Contains(text, w) {
			t.Errorf("metrics lack %s", w)
		}
	}
	if strings.Contains(text, `pop="tokyo-1",service="ftth",phase="1"`) || strings.Contains(text, `phase="1",pop="tokyo-1"`) {
		t.Errorf("osaka-1's own phase reported at tokyo-1")
	}
	problems, err := promlint.New(strings.NewReader(text)).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
	if t.Failed() {
		t.Log(text)
	}
}

// unix is t as the text exposition writes a Unix time.
func unix(t time.Time) string { return strconv.FormatFloat(float64(t.Unix()), 'g', -1, 64) }

// TestMetricsObservedAndQuarantined: an observing pool's counter is
// reported as observed (and left out of the bridge's blocked totals), a
// quarantine's drop counter under the quarantine's name.
func TestMetricsObservedAndQuarantined(t *testing.T) {
	const dpid topology.DPID = "0000000000000001"
	sw := &fakeSwitches{counters: map[topology.DPID][]controller.FlowCounter{}}
	docs := &fakeDocs{}
	metrics := NewMetrics(nil)
	e := newEnv(t, func(c *Config) {
		c.Switches, c.Cache, c.Metrics = sw, docs, metrics
		c.Now = func() time.Time { return helpdeskClock }
	})
	rev := putHelpdesk(e)
	doc := e.load()
	docs.snap = store.Snapshot{Doc: doc, Revision: rev, Loaded: true}
	compiled, err := flows.Compile(doc, dpid, helpdeskClock, flows.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	var counters []controller.FlowCounter
	for key := range compiled.ObservePool {
		counters = append(counters, controller.FlowCounter{Key: key, Packets: 5, Bytes: 300, Observed: true})
	}
	for key := range compiled.DropQuarantine {
		counters = append(counters, controller.FlowCounter{Key: key, Packets: 2, Bytes: 120})
	}
	for key := range compiled.DropPool {
		counters = append(counters, controller.FlowCounter{Key: key, Packets: 1, Bytes: 60})
	}
	sw.status = []controller.BridgeStatus{{DPID: dpid, Connected: true, Role: "master", AppliedRevision: rev}}
	sw.counters[dpid] = counters
	text := e.do(http.MethodGet, "/metrics", "").Body.String()
	blocked := 2*len(compiled.DropQuarantine) + len(compiled.DropPool)
	want := []string{`op25b_blocked_packets_total{dpid="0000000000000001",name="tokyo-1-sub-a",pop="tokyo-1"} ` + strconv.Itoa(blocked)}
	// An observing pool has two counting flows (its connection attempts,
	// and the rest): the pool's series is their sum.
	observedFlows := map[string]int{}
	for _, pool := range compiled.ObservePool {
		observedFlows[pool]++
	}
	for pool, n := range observedFlows {
		want = append(want, `op25b_pool_observed_packets_total{dpid="0000000000000001",name="tokyo-1-sub-a",pool="`+pool+`",pop="tokyo-1"} `+strconv.Itoa(5*n),
			`op25b_pool_observed_bytes_total{dpid="0000000000000001",name="tokyo-1-sub-a",pool="`+pool+`",pop="tokyo-1"} `+strconv.Itoa(300*n))
	}
	for _, q := range compiled.DropQuarantine {
		want = append(want, `op25b_quarantine_blocked_packets_total{dpid="0000000000000001",name="tokyo-1-sub-a",pop="tokyo-1",quarantine="`+q+`"} 2`)
	}
	for _, w := range want {
		if !strings.Contains(text, w) {
			t.Errorf("metrics lack %q:\n%s", w, grepLines(text, "op25b_"))
		}
	}
	if len(observedFlows) != 1 || len(compiled.DropQuarantine) != 3 {
		t.Fatalf("%d observing pools, %d quarantines in force; the helpdesk document has 1 and 3", len(observedFlows), len(compiled.DropQuarantine))
	}
}
