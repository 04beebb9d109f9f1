package api

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/op25b/op25b/controller"
	"github.com/op25b/op25b/flows"
	"github.com/op25b/op25b/offenders"
	"github.com/op25b/op25b/topology"
	"github.com/op25b/op25b/topology/store"
)

func loadOpenAPI(t *testing.T) *openapi3.T {
	t.Helper()
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(OpenAPISpec())
	if err != nil {
		t.Fatalf("openapi.yaml does not load: %v", err)
	}
	if err := doc.Validate(loader.Context); err != nil {
		t.Fatalf("openapi.yaml is not valid OpenAPI 3: %v", err)
	}
	return doc
}

// TestOpenAPIValid: the description loads and validates with kin-openapi,
// and every operation has a unique operationId (client generators need it).
func TestOpenAPIValid(t *testing.T) {
	doc := loadOpenAPI(t)
	seen := map[string]string{}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			where := method + " " + path
			if op.OperationID == "" {
				t.Errorf("%s has no operationId", where)
				continue
			}
			if other, dup := seen[op.OperationID]; dup {
				t.Errorf("operationId %q used by %s and %s", op.OperationID, other, where)
			}
			seen[op.OperationID] = where
		}
	}
}

// exchange is one request to the real handler whose answer must match the
// description.
type exchange struct {
	method, path, body string
	headers            []string
	status             int
}

// TestOpenAPIDescribesRealResponses sends requests covering every
// operation (successes and the usual errors) to the real handlers on a
// real embedded etcd, and validates each request that should succeed and
// every response against openapi.yaml: status documented, content type,
// body schema (required fields, no undocumented ones).
func TestOpenAPIDescribesRealResponses(t *testing.T) {
	spec := loadOpenAPI(t)
	router, err := gorillamux.NewRouter(spec)
	if err != nil {
		t.Fatal(err)
	}
	tokens, err := LoadTokenFile(writeTemp(t, "tokens", "ops wr1te-t0ken-111111111 write\nnoc r3ad-t0ken-000000000 read\n"))
	if err != nil {
		t.Fatal(err)
	}
	const dpid = "0000000000000001"
	sw := &fakeSwitches{}
	cluster := &fakeCluster{
		replicas: []store.ReplicaInfo{{ID: "node-a", APIAddr: "127.0.0.1:1", OpenFlowAddr: "127.0.0.1:2", Version: "test", Started: testClock}},
	}
	tracker := offenderTracker(t, offenders.Batch{Bridge: dpid, At: testClock.Add(-time.Minute), Attempts: []offenders.Attempt{
		offenderAttempt("10.1.3.7", "203.0.113.25", "tokyo-dyn", 9, false),
		offenderAttempt("10.1.3.8", "203.0.113.25", "tokyo-dyn", 2, true),
	}})
	e := newEnv(t, func(c *Config) {
		c.Tokens = tokens
		c.Switches = sw
		c.Cluster = cluster
		c.Offenders = tracker
	})
	write := "Authorization: Bearer wr1te-t0ken-111111111"
	read := "Authorization: Bearer r3ad-t0ken-000000000"
	covered := map[string]bool{}

	run := func(x exchange) []byte {
		t.Helper()
		var body io.Reader
		if x.body != "" {
			body = strings.NewReader(x.body)
		}
		req := httptest.NewRequest(x.method, x.path, body)
		if x.body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		for _, h := range x.headers {
			name, value, _ := strings.Cut(h, ":")
			req.Header.Set(strings.TrimSpace(name), strings.TrimSpace(value))
		}
		route, params, err := router.FindRoute(req)
		if err != nil {
			t.Fatalf("%s %s: not in openapi.yaml: %v", x.method, x.path, err)
		}
		covered[route.Operation.OperationID] = true
		in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route,
			Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}}
		if x.status < 400 {
			// A request the API accepts must be one the description accepts.
			if err := openapi3filter.ValidateRequest(context.Background(), in); err != nil {
				t.Errorf("%s %s: request does not match openapi.yaml: %v", x.method, x.path, err)
			}
			if x.body != "" {
				req.Body = io.NopCloser(strings.NewReader(x.body))
			}
		}
		rec := httptest.NewRecorder()
		e.handler.ServeHTTP(rec, req)
		if rec.Code != x.status {
			t.Fatalf("%s %s: status %d, want %d: %s", x.method, x.path, rec.Code, x.status, rec.Body.String())
		}
		out := rec.Body.Bytes()
		err = openapi3filter.ValidateResponse(context.Background(), &openapi3filter.ResponseValidationInput{
			RequestValidationInput: in, Status: rec.Code, Header: rec.Header(), Body: io.NopCloser(bytes.NewReader(out)),
			Options: &openapi3filter.Options{IncludeResponseStatus: true},
		})
		if err != nil {
			t.Errorf("%s %s → %d: response does not match openapi.yaml: %v\n%.600s", x.method, x.path, rec.Code, err, out)
		}
		return out
	}

	run(exchange{"GET", "/healthz", "", nil, 200})
	run(exchange{"GET", "/readyz", "", nil, 200})
	run(exchange{"GET", "/metrics", "", nil, 401}) // a token file is set: /metrics shows dpids, so it needs a token
	run(exchange{"GET", "/metrics", "", []string{read}, 200})
	run(exchange{"GET", "/v1/openapi.yaml", "", []string{read}, 200})
	run(exchange{"GET", "/v1/config", "", nil, 401})
	run(exchange{"GET", "/v1/config", "", []string{read}, 200}) // empty: nothing stored yet
	run(exchange{"PUT", "/v1/config", contractExample(t), []string{read}, 403})
	run(exchange{"PUT", "/v1/config?dry_run=true", contractExample(t), []string{read}, 200})
	run(exchange{"PUT", "/v1/config", contractExample(t), []string{write}, 200})
	rev1 := e.revision()
	sw.status = []controller.BridgeStatus{statusOf(dpid, true, "master", rev1)}
	compiled, err := flows.Compile(e.load(), dpid, testClock, flows.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	sw.installed = map[topology.DPID][]flows.Flow{dpid: compiled.Flows[1:]}
	sw.counters = map[topology.DPID][]controller.FlowCounter{dpid: {{Key: compiled.Flows[1].Key(), Cookie: compiled.Flows[1].Cookie, Packets: 3, Bytes: 180}}}
	cluster.bridges = []store.BridgeStatus{{DPID: dpid, Connected: true, Master: "node-a", AppliedRevision: rev1, Flows: 7,
		LastReconcile: testClock, DriftDetection: controller.DriftMonitor},
		{DPID: "00000000000000ff", Connected: true, Master: "node-a", LastError: "bundle failed", DriftDetection: controller.DriftPoll}}

	run(exchange{"PUT", "/v1/config", strings.Replace(contractExample(t), "10.1.0.0/16", "10.1.0.1/16", 1), []string{write}, 400})
	run(exchange{"PUT", "/v1/config", `{"pools": [{"prefx": "x"}]}`, []string{write}, 400})
	run(exchange{"PUT", "/v1/config?dry_run=true", strings.Replace(contractExample(t), "10.1.0.0/16", "10.2.0.0/16", 1), []string{read}, 200})
	run(exchange{"PUT", "/v1/config", contractExample(t), []string{write, fmt.Sprintf("If-Match: %d", rev1-1)}, 409})
	run(exchange{"GET", "/v1/config", "", []string{read}, 200})
	run(exchange{"GET", "/v1/config?revision=soon", "", []string{read}, 400})
	run(exchange{"GET", fmt.Sprintf("/v1/config?revision=%d", rev1+100000), "", []string{read}, 404})

	items := []struct{ kind, key, body, newKey, newBody string }{
		{"pools", "tokyo-dyn", `{"prefix": "10.2.0.0/16", "kind": "dynamic", "service": "ftth"}`, "extra", `{"prefix": "10.200.0.0/16", "kind": "static"}`},
		{"relays", "msa", `{"name": "msa", "prefix": "192.0.2.26/32"}`, "msa2", `{"prefix": "192.0.2.27/32"}`},
		{"destinations", "mobile-carriers", `{"prefixes": ["198.51.100.0/24"]}`, "other", `{"prefixes": ["203.0.113.0/24"]}`},
		{"services", "v6plus", `{"phases": [{"block": "all", "relays": false}]}`, "trial", `{"phases": [{"from": "2030-01-01T00:00:00Z", "block": ["mobile-carriers"], "pops": ["tokyo-1"]}]}`},
		{"bridges", dpid, `{"name": "tokyo-1-sub-a", "pop": "tokyo-1"}`, "00000000000000aa", `{"name": "osaka-1-sub-a", "pop": "osaka-1"}`},
		{"exemptions", "ticket-4711", `{"prefix": "10.1.3.7/32", "until": "2026-12-01T00:00:00+09:00", "reason": "mail server until the fixed-IP move", "ticket": "4711"}`,
			"ticket-4712", `{"prefix": "10.1.3.8/32", "until": "2000-01-01T00:00:00Z", "reason": "lapsed long ago", "ticket": "4712"}`},
		{"quarantines", "bot-10-1-9-9", `{"prefix": "10.1.9.9/32", "until": "2099-11-30T12:00:00+09:00", "reason": "abuse report", "ticket": "AB-88"}`,
			"bot-2", `{"prefix": "2001:db8:1::9/128", "until": "2099-01-01T00:00:00Z", "reason": "abuse report", "ticket": "AB-89"}`},
	}
	// The helpdesk's items do not exist in the contract's example: create them.
	run(exchange{"PUT", "/v1/exemptions/ticket-4711", items[5].body, []string{write}, 201})
	run(exchange{"PUT", "/v1/quarantines/bot-10-1-9-9", items[6].body, []string{write}, 201})
	run(exchange{"PUT", "/v1/quarantines/bot-3", `{"prefix": "10.1.9.10/32", "until": "tomorrow", "reason": "r", "ticket": "t"}`, []string{write}, 400})
	for _, it := range items {
		run(exchange{"GET", "/v1/" + it.kind, "", []string{read}, 200})
		run(exchange{"GET", "/v1/" + it.kind + "/" + it.key, "", []string{read}, 200})
		run(exchange{"GET", "/v1/" + it.kind + "/nosuch", "", []string{read}, 404})
		run(exchange{"PUT", "/v1/" + it.kind + "/" + it.key, it.body, []string{write}, 200})
		run(exchange{"PUT", "/v1/" + it.kind + "/" + it.newKey, it.newBody, []string{write}, 201})
		mismatch := `{"name": "not-it"}`
		if it.kind == "bridges" {
			mismatch = `{"dpid": "00000000000000bb"}`
		}
		run(exchange{"PUT", "/v1/" + it.kind + "/" + it.newKey, mismatch, []string{write}, 400})
		run(exchange{"DELETE", "/v1/" + it.kind + "/" + it.newKey, "", []string{write}, 200})
		run(exchange{"DELETE", "/v1/" + it.kind + "/" + it.newKey, "", []string{write}, 404})
	}
	run(exchange{"DELETE", "/v1/services/ftth", "", []string{write}, 409})

	run(exchange{"GET", "/v1/config", "", []string{read}, 200}) // with exemptions and quarantines

	explain := "/v1/explain?src=10.1.9.9&dst=192.0.2.25&bridge=" + dpid
	run(exchange{"GET", explain, "", nil, 401})
	run(exchange{"GET", explain, "", []string{read}, 200}) // quarantined, installed flows compared
	run(exchange{"GET", "/v1/explain?src=10.1.3.4&dst=203.0.113.25&port=25&bridge=tokyo-1-sub-a&at=2006-12-15T00:00:00%2B09:00", "", []string{read}, 200})
	run(exchange{"GET", "/v1/explain?src=2001:db8:1::5&dst=2001:db8:ffff::1&bridge=00000000000000ee", "", []string{read}, 200})
	run(exchange{"GET", "/v1/explain?src=10.1.3.4&dst=203.0.113.25&port=587&bridge=" + dpid, "", []string{read}, 200})
	run(exchange{"GET", "/v1/explain?src=10.1.3.4&dst=2001:db8::1&bridge=" + dpid, "", []string{read}, 400})
	run(exchange{"GET", "/v1/explain?src=10.1.3.4&dst=203.0.113.25", "", []string{read}, 400})
	run(exchange{"GET", "/v1/explain?src=10.1.3.4&dst=203.0.113.25&bridge=no-such-bridge", "", []string{read}, 404})

	run(exchange{"GET", "/v1/status", "", []string{read}, 200})
	run(exchange{"GET", "/v1/rollout", "", []string{read}, 200})
	run(exchange{"GET", "/v1/rollout?at=2006-11-15T00:00:00%2B09:00", "", []string{read}, 200})
	run(exchange{"GET", "/v1/rollout?at=tomorrow", "", []string{read}, 400})
	run(exchange{"GET", "/v1/rollout", "", nil, 401})
	run(exchange{"GET", "/v1/bridges/" + dpid + "/flows", "", []string{read}, 200})
	run(exchange{"GET", "/v1/bridges/nothex/flows", "", []string{read}, 400})
	run(exchange{"GET", "/v1/bridges/00000000000000ee/flows", "", []string{read}, 404})

	cur := e.revision()
	run(exchange{"POST", "/v1/config/rollback", fmt.Sprintf(`{"revision": %d}`, rev1), []string{write}, 400})
	run(exchange{"POST", "/v1/config/rollback", fmt.Sprintf(`{"revision": %d}`, rev1), []string{write, fmt.Sprintf("If-Match: %d", cur-1)}, 409})
	run(exchange{"POST", "/v1/config/rollback", fmt.Sprintf(`{"revision": %d}`, rev1), []string{write, fmt.Sprintf("If-Match: %d", cur)}, 200})
	run(exchange{"GET", fmt.Sprintf("/v1/config?revision=%d", rev1), "", []string{read}, 200})
	run(exchange{"GET", "/v1/audit?limit=5", "", []string{read}, 200})
	run(exchange{"GET", "/v1/audit?limit=0", "", []string{read}, 400})
	run(exchange{"GET", "/v1/offenders", "", nil, 401})
	run(exchange{"GET", "/v1/offenders", "", []string{read}, 200})
	run(exchange{"GET", "/v1/offenders?since=24h&limit=1&pop=tokyo-1", "", []string{read}, 200})
	run(exchange{"GET", "/v1/offenders?since=2d", "", []string{read}, 400})

	var missing []string
	for path, item := range spec.Paths.Map() {
		for method, op := range item.Operations() {
			if !covered[op.OperationID] {
				missing = append(missing, op.OperationID+" ("+method+" "+path+")")
			}
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("operations no exchange exercised: %v", missing)
	}
}

func writeTemp(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
