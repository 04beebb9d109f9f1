package api

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/op25b/op25b/controller"
	"github.com/op25b/op25b/flows"
	"github.com/op25b/op25b/topology"
	"github.com/op25b/op25b/topology/store"
)

// helpdeskClock is inside the helpdesk document's rollout, with its
// quarantines and exemptions in force.
var helpdeskClock = time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)

func putHelpdesk(e *apiEnv) int64 {
	e.t.Helper()
	data, err := os.ReadFile("../flows/testdata/helpdesk.json")
	if err != nil {
		e.t.Fatal(err)
	}
	var w writeResponse
	e.expect(e.do(http.MethodPut, "/v1/config", string(data)), http.StatusOK, &w)
	return w.Revision
}

func TestExplainBadQueries(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Now = func() time.Time { return helpdeskClock } })
	putHelpdesk(e)
	for _, tc := range []struct {
		query, field string
		status       int
	}{
		{"dst=203.0.113.25&bridge=tokyo-1-sub-a", "src", 400},
		{"src=10.1.3.4&bridge=tokyo-1-sub-a", "dst", 400},
		{"src=10.1.3.4/32&dst=203.0.113.25&bridge=tokyo-1-sub-a", "src", 400},
		{"src=fe80::1%25eth0&dst=fe80::2&bridge=tokyo-1-sub-a", "src", 400},
		{"src=10.1.3.4&dst=2001:db8::1&bridge=tokyo-1-sub-a", "dst", 400},
		{"src=10.1.3.4&dst=203.0.113.25&port=0&bridge=tokyo-1-sub-a", "port", 400},
		{"src=10.1.3.4&dst=203.0.113.25&port=65536&bridge=tokyo-1-sub-a", "port", 400},
		{"src=10.1.3.4&dst=203.0.113.25&port=smtp&bridge=tokyo-1-sub-a", "port", 400},
		{"src=10.1.3.4&dst=203.0.113.25", "bridge", 400},
		{"src=10.1.3.4&dst=203.0.113.25&bridge=tokyo-1-sub-a&at=2026-11-20", "at", 400},
		{"src=10.1.3.4&dst=203.0.113.25&bridge=tokyo-1-sub-a&at=2026-11-20T00:00:00", "at", 400},
		{"src=10.1.3.4&dst=203.0.113.25&bridge=osaka-9", "bridge", 404},
	} {
		code := CodeBadRequest
		if tc.status == 404 {
			code = CodeNotFound
		}
		e.expectError(e.do(http.MethodGet, "/v1/explain?"+tc.query, ""), tc.status, code, tc.field)
	}
	e.expectError(e.do(http.MethodPost, "/v1/explain?src=10.1.3.4&dst=203.0.113.25&bridge=tokyo-1-sub-a", ""), http.StatusMethodNotAllowed, CodeMethodNotAllowed, "")
}

// TestExplainReasons: the answer for each kind of reason, the bridge given
// by name, by dpid (either case) and unregistered, and "at".
func TestExplainReasons(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Now = func() time.Time { return helpdeskClock } })
	rev := putHelpdesk(e)
	for _, tc := range []struct {
		name, query                                                      string
		verdict, rule, pool, kind, service, quarantine, exemption, relay string
		observe, phase                                                   bool
		reason                                                           string
	}{
		{"quarantined toward the relay", "src=10.1.9.9&dst=192.0.2.25&bridge=tokyo-1-sub-a",
			"drop", "quarantine", "tokyo-dyn", "dynamic", "ftth", "bot-10-1-9-9", "ticket-4800", "msa", false, true, "quarantined by bot-10-1-9-9"},
		{"quarantined static host", "src=10.1.200.3&dst=203.0.113.25&bridge=0000000000000001",
			"drop", "quarantine", "tokyo-fixed", "static", "", "bot-fixed", "", "", false, false, "relays included"},
		{"exempted", "src=10.1.3.7&dst=203.0.113.25&port=25&bridge=0000000000000001",
			"forward", "exemption", "tokyo-dyn", "dynamic", "ftth", "", "ticket-4711", "", false, true, "exempted by ticket-4711"},
		{"observed", "src=10.2.0.9&dst=203.0.113.25&bridge=tokyo-1-sub-a",
			"forward", "block-all", "osaka-dyn", "dynamic", "adsl", "", "", "", true, true, "only observes"},
		{"blocked", "src=10.1.3.8&dst=203.0.113.25&bridge=tokyo-1-sub-a",
			"drop", "block-all", "tokyo-dyn", "dynamic", "ftth", "", "", "", false, true, "blocks every destination"},
		{"exemption lapsed at", "src=10.1.3.7&dst=203.0.113.25&bridge=tokyo-1-sub-a&at=2026-12-01T00:00:00%2B09:00",
			"drop", "block-all", "tokyo-dyn", "dynamic", "ftth", "", "", "", false, true, "blocks every destination"},
		{"not smtp", "src=10.1.9.9&dst=203.0.113.25&port=587&bridge=tokyo-1-sub-a",
			"forward", "not-smtp", "", "", "", "", "", "", false, false, "not SMTP-bound"},
		{"unregistered bridge", "src=10.1.3.8&dst=192.0.2.25&bridge=00000000000000EE",
			"forward", "relay", "tokyo-dyn", "dynamic", "ftth", "", "", "msa", false, true, "relay msa"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var x ExplainResponse
			e.expect(e.do(http.MethodGet, "/v1/explain?"+tc.query, ""), http.StatusOK, &x)
			got := []string{x.Verdict, x.Rule, x.Pool, x.Kind, x.Service, x.Quarantine, x.Exemption, x.Relay}
			want := []string{tc.verdict, tc.rule, tc.pool, tc.kind, tc.service, tc.quarantine, tc.exemption, tc.relay}
			if strings.Join(got, "|") != strings.Join(want, "|") || x.Observe != tc.observe || (x.Phase != nil) != tc.phase {
				t.Errorf("got %q observe %v phase %v, want %q observe %v phase %v", got, x.Observe, x.Phase, want, tc.observe, tc.phase)
			}
			if !strings.Contains(x.Reason, tc.reason) || len(x.Reasons) == 0 || x.Revision != rev {
				t.Errorf("reason %q (want %q), reasons %q, revision %d", x.Reason, tc.reason, x.Reasons, x.Revision)
			}
			if x.Installed != nil || x.InstalledError == "" {
				t.Errorf("no switch is connected: installed %+v, error %q", x.Installed, x.InstalledError)
			}
		})
	}
	var x ExplainResponse
	e.expect(e.do(http.MethodGet, "/v1/explain?src=10.1.3.7&dst=203.0.113.25&bridge=tokyo-1-sub-a&at=2026-12-01T00:00:00%2B09:00", ""), http.StatusOK, &x)
	if len(x.Lapsed) != 1 || x.Lapsed[0] != "exemptions/ticket-4711" || !x.At.Equal(time.Date(2026, 11, 30, 15, 0, 0, 0, time.UTC)) {
		t.Errorf("lapsed %v at %s", x.Lapsed, x.At)
	}
	if x.Phase == nil || x.Phase.From != "2026-11-01T00:00:00+09:00" || x.Phase.Mode != topology.ModeEnforce || !x.Phase.Block.All {
		t.Errorf("phase %+v", x.Phase)
	}
	if x.Bridge.Name != "tokyo-1-sub-a" || x.Bridge.Pop != "tokyo-1" || !x.Bridge.Registered {
		t.Errorf("bridge %+v", x.Bridge)
	}
	e.expect(e.do(http.MethodGet, "/v1/explain?src=10.1.3.8&dst=192.0.2.25&bridge=00000000000000EE", ""), http.StatusOK, &x)
	if x.Bridge.DPID != "00000000000000ee" || x.Bridge.Registered || x.Bridge.Pop != "" {
		t.Errorf("unregistered bridge %+v", x.Bridge)
	}
}

// TestExplainInstalled: the installed verdict, from this replica's
// controller, agreeing and disagreeing (logged, counted); with "at" it is
// not compared.
func TestExplainInstalled(t *testing.T) {
	const dpid topology.DPID = "0000000000000001"
	var logs bytes.Buffer
	sw := &fakeSwitches{installed: map[topology.DPID][]flows.Flow{}, counters: map[topology.DPID][]controller.FlowCounter{}}
	metrics := NewMetrics(nil)
	e := newEnv(t, func(c *Config) {
		c.Now = func() time.Time { return helpdeskClock }
		c.Switches = sw
		c.Metrics = metrics
		c.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	})
	rev := putHelpdesk(e)
	compiled, err := flows.Compile(e.load(), dpid, helpdeskClock, flows.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	sw.status = []controller.BridgeStatus{statusOf(dpid, true, "master", rev)}
	sw.installed[dpid] = compiled.Flows

	var x ExplainResponse
	e.expect(e.do(http.MethodGet, "/v1/explain?src=10.1.9.9&dst=192.0.2.25&bridge=tokyo-1-sub-a", ""), http.StatusOK, &x)
	if x.Installed == nil || x.Installed.Verdict != "drop" || !x.Installed.Agrees || x.Installed.Source != "local" || !x.Bridge.Connected {
		t.Fatalf("installed %+v (error %q)", x.Installed, x.InstalledError)
	}

	// The switch still has the flows of a time before the quarantine
	// (none): the installed flows forward what the policy drops.
	before, err := flows.Compile(e.load(), dpid, time.Date(2026, 12, 31, 0, 0, 0, 0, time.UTC), flows.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	sw.installed[dpid] = before.Flows
	e.expect(e.do(http.MethodGet, "/v1/explain?src=10.1.200.3&dst=203.0.113.25&bridge=tokyo-1-sub-a", ""), http.StatusOK, &x)
	if x.Verdict != "drop" || x.Installed == nil || x.Installed.Verdict != "forward" || x.Installed.Agrees {
		t.Fatalf("disagreement not reported: verdict %s installed %+v", x.Verdict, x.Installed)
	}
	if !strings.Contains(logs.String(), "explain: the installed flows disagree with the policy") || !strings.Contains(logs.String(), "dpid=0000000000000001") {
		t.Errorf("disagreement not logged:\n%s", logs.String())
	}
	rec := e.do(http.MethodGet, "/metrics", "")
	if !strings.Contains(rec.Body.String(), `op25b_explain_disagreements_total{dpid="0000000000000001",name="tokyo-1-sub-a",pop="tokyo-1"} 1`) {
		t.Errorf("disagreement not counted:\n%s", grepLines(rec.Body.String(), "explain"))
	}

	// A question about another instant is not compared with the switch.
	x = ExplainResponse{}
	e.expect(e.do(http.MethodGet, "/v1/explain?src=10.1.200.3&dst=203.0.113.25&bridge=tokyo-1-sub-a&at=2026-11-20T00:00:00Z", ""), http.StatusOK, &x)
	if x.Installed != nil || !strings.Contains(x.InstalledError, "not compared") {
		t.Errorf("with at: installed %+v error %q", x.Installed, x.InstalledError)
	}
}

// Another replica holds the bridge's session: the installed verdict comes
// from the master's API (?local=1), the reference from this replica, and
// only this replica counts a disagreement.
func TestExplainForwardedToMaster(t *testing.T) {
	const dpid topology.DPID = "0000000000000001"
	sw := &fakeSwitches{installed: map[topology.DPID][]flows.Flow{}, counters: map[topology.DPID][]controller.FlowCounter{}}
	masterMetrics := NewMetrics(nil)
	master := newEnv(t, func(c *Config) {
		c.NodeID, c.Switches, c.Metrics = "node-b", sw, masterMetrics
		c.Now = func() time.Time { return helpdeskClock }
	})
	rev := putHelpdesk(master)
	later, err := flows.Compile(master.load(), dpid, time.Date(2026, 12, 31, 0, 0, 0, 0, time.UTC), flows.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	sw.status = []controller.BridgeStatus{statusOf(dpid, true, "master", rev)}
	sw.installed[dpid] = later.Flows
	srv := httptest.NewServer(master.handler)
	defer srv.Close()

	cluster := &fakeCluster{
		bridges:  []store.BridgeStatus{{DPID: dpid, Connected: true, Master: "node-b"}},
		replicas: []store.ReplicaInfo{{ID: "node-a"}, {ID: "node-b", APIAddr: strings.TrimPrefix(srv.URL, "http://")}},
	}
	metrics := NewMetrics(nil)
	other := newEnv(t, func(c *Config) {
		c.Store, c.Cluster, c.Metrics = master.store, cluster, metrics
		c.Now = func() time.Time { return helpdeskClock }
	})
	var x ExplainResponse
	other.expect(other.do(http.MethodGet, "/v1/explain?src=10.1.3.8&dst=192.0.2.25&bridge=tokyo-1-sub-a", ""), http.StatusOK, &x)
	if x.Installed == nil || x.Installed.Source != "replica:node-b" || x.Installed.Verdict != "forward" || !x.Installed.Agrees {
		t.Fatalf("forwarded: installed %+v error %q", x.Installed, x.InstalledError)
	}
	other.expect(other.do(http.MethodGet, "/v1/explain?src=10.1.9.9&dst=192.0.2.25&bridge=tokyo-1-sub-a", ""), http.StatusOK, &x)
	if x.Installed == nil || x.Installed.Agrees || x.Installed.Verdict != "forward" {
		t.Fatalf("forwarded disagreement: installed %+v error %q", x.Installed, x.InstalledError)
	}
	if got := other.do(http.MethodGet, "/metrics", "").Body.String(); !strings.Contains(got, `op25b_explain_disagreements_total{dpid="0000000000000001",name="tokyo-1-sub-a",pop="tokyo-1"} 1`) {
		t.Errorf("the answering replica did not count the disagreement:\n%s", grepLines(got, "explain"))
	}
	if got := master.do(http.MethodGet, "/metrics", "").Body.String(); strings.Contains(got, `op25b_explain_disagreements_total{`) {
		t.Errorf("the master counted a forwarded question too:\n%s", grepLines(got, "explain"))
	}
	// The master gone: 200 with the reference, installed says why not.
	srv.Close()
	x = ExplainResponse{}
	other.expect(other.do(http.MethodGet, "/v1/explain?src=10.1.9.9&dst=192.0.2.25&bridge=tokyo-1-sub-a", ""), http.StatusOK, &x)
	if x.Verdict != "drop" || x.Installed != nil || !strings.Contains(x.InstalledError, "node-b") {
		t.Fatalf("unreachable master: %+v", x)
	}
}

func grepLines(text, substr string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
