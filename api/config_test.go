package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

func TestConfigRoundTrip(t *testing.T) {
	e := newEnv(t, nil)

	// Empty store: an empty document at revision 0, collections as [].
	var empty map[string]any
	e.expect(e.do(http.MethodGet, "/v1/config", ""), http.StatusOK, &empty)
	if empty["revision"].(float64) != 0 || fmt.Sprint(empty["pools"]) != "[]" {
		t.Fatalf("empty document: %v", empty)
	}

	rev := e.putExample()
	rec := e.do(http.MethodGet, "/v1/config", "")
	var got struct {
		Revision int64 `json:"revision"`
		Pools    []struct{ Name string }
	}
	e.expect(rec, http.StatusOK, &got)
	if got.Revision != rev || len(got.Pools) != 3 {
		t.Fatalf("GET /v1/config = rev %d, %d pools; want rev %d, 3 pools", got.Revision, len(got.Pools), rev)
	}
	if etag := rec.Header().Get("ETag"); etag != fmt.Sprintf(`"%d"`, rev) {
		t.Fatalf("ETag %q, want revision %d", etag, rev)
	}

	// GET → edit → PUT works: the body's revision acts as If-Match.
	body := strings.Replace(rec.Body.String(), "tokyo-1-sub-a", "tokyo-1-sub-b", 1)
	var w writeResponse
	e.expect(e.do(http.MethodPut, "/v1/config", body), http.StatusOK, &w)
	if w.Revision <= rev {
		t.Fatalf("second write revision %d, want > %d", w.Revision, rev)
	}
	// ... and the same stale body again is a conflict.
	e.expectError(e.do(http.MethodPut, "/v1/config", body), http.StatusConflict, CodeConflict, "")
	if e.revision() != w.Revision {
		t.Fatal("conflicting write changed the document")
	}
}

func TestPutConfigIfMatch(t *testing.T) {
	e := newEnv(t, nil)
	rev := e.putExample()
	doc := contractExample(t)

	e.expectError(e.do(http.MethodPut, "/v1/config", doc, fmt.Sprintf("If-Match: %d", rev-1)), http.StatusConflict, CodeConflict, "")
	e.expectError(e.do(http.MethodPut, "/v1/config", doc, "If-Match: yesterday"), http.StatusBadRequest, CodeBadRequest, "If-Match")
	if e.revision() != rev {
		t.Fatal("rejected writes changed the document")
	}
	var w writeResponse
	doc = strings.Replace(doc, "tokyo-1-sub-a", "tokyo-1-sub-b", 1)
	e.expect(e.do(http.MethodPut, "/v1/config", doc, fmt.Sprintf(`If-Match: "%d"`, rev)), http.StatusOK, &w)
	if w.Revision <= rev {
		t.Fatalf("revision %d after If-Match write, want > %d", w.Revision, rev)
	}
	// Body revision contradicting the header is refused rather than guessed.
	withRev := strings.Replace(doc, `"ports"`, fmt.Sprintf(`"revision": %d, "ports"`, rev), 1)
	e.expectError(e.do(http.MethodPut, "/v1/config", withRev, fmt.Sprintf("If-Match: %d", w.Revision)), http.StatusBadRequest, CodeBadRequest, "revision")
}

// Every bad input is a 4xx with a clear code and field, and stores nothing.
func TestPutConfigRejectsBadInput(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.MaxBodyBytes = 64 << 10 })
	rev := e.putExample()
	example := contractExample(t)
	cases := []struct {
		name, body  string
		status      int
		code, field string
	}{
		{"not json", "ports: [25]", 400, CodeInvalidJSON, "*"},
		{"truncated", example[:len(example)/2], 400, CodeInvalidJSON, "*"},
		{"null", "null", 400, CodeInvalidJSON, ""},
		{"array", "[]", 400, CodeInvalidJSON, ""},
		{"empty", "", 400, CodeInvalidJSON, ""},
		{"trailing data", example + "{}", 400, CodeInvalidJSON, "*"},
		{"unknown field", strings.Replace(example, `"kind": "static"`, `"kind": "static", "colour": "red"`, 1), 400, CodeInvalidJSON, "pools[1].colour"},
		{"wrong type", `{"ports": ["25"]}`, 400, CodeInvalidJSON, "*"},
		{"bad revision", `{"revision": "x"}`, 400, CodeInvalidJSON, "revision"},
		{"host bits", strings.Replace(example, "10.1.0.0/16", "10.1.0.1/16", 1), 400, CodeInvalidDocument, "pools[0].prefix"},
		{"unknown service", strings.Replace(example, `"service": "ftth"`, `"service": "fttx"`, 1), 400, CodeInvalidDocument, "pools[0].service"},
		{"bad port", strings.Replace(example, `"ports": [25]`, `"ports": [70000]`, 1), 400, CodeInvalidDocument, "ports[0]"},
		{"bad dpid", strings.Replace(example, "0000000000000001", "xyz", 1), 400, CodeInvalidDocument, "bridges[0].dpid"},
		{"too large", `{"pools": [` + strings.Repeat(`{"name": "p", "prefix": "10.0.0.0/8", "kind": "static"},`, 2000) + `{}]}`, 413, CodeTooLarge, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e.t = t
			for _, path := range []string{"/v1/config", "/v1/config?dry_run=true"} {
				e.expectError(e.do(http.MethodPut, path, tc.body), tc.status, tc.code, tc.field)
			}
		})
	}
	e.t = t
	if got := e.revision(); got != rev {
		t.Fatalf("revision %d after rejected writes, want %d", got, rev)
	}
}

func TestValidationErrorListsEveryProblem(t *testing.T) {
	e := newEnv(t, nil)
	body := `{"pools": [{"name": "a", "prefix": "10.0.0.1/8", "kind": "static"}, {"name": "b", "prefix": "10.1.0.0/16", "kind": "dynamic", "service": "nope"}]}`
	apiErr := e.expectError(e.do(http.MethodPut, "/v1/config", body), 400, CodeInvalidDocument, "pools[0].prefix")
	fields := map[string]bool{}
	for _, d := range apiErr.Details {
		fields[d.Field] = true
	}
	if !fields["pools[0].prefix"] || !fields["pools[1].service"] {
		t.Fatalf("details %+v, want both pools[0].prefix and pools[1].service", apiErr.Details)
	}
}

func TestDryRunStoresNothing(t *testing.T) {
	sw := &fakeSwitches{}
	e := newEnv(t, func(c *Config) { c.Switches = sw })
	rev := e.putExample()
	// A bridge connected here but not in the document is enforced with pop
	// "" (docs/semantics.md, phases), so the dry run shows its diff too.
	sw.status = append(sw.status, statusOf("00000000000000aa", true, "master", rev))

	changed := strings.Replace(contractExample(t), "10.1.0.0/16", "10.2.0.0/16", 1)
	var dr DryRunResponse
	e.expect(e.do(http.MethodPut, "/v1/config?dry_run=true", changed), http.StatusOK, &dr)
	if !dr.DryRun || dr.Revision != rev || dr.ComparedWith != "desired" {
		t.Fatalf("dry run header: %+v", dr)
	}
	if strings.Join(dr.Items.Changed, ",") != "pools/tokyo-dyn" || len(dr.Items.Added)+len(dr.Items.Removed) != 0 {
		t.Fatalf("item changes %+v, want pools/tokyo-dyn changed", dr.Items)
	}
	if len(dr.Bridges) != 2 || dr.Bridges[0].DPID != "0000000000000001" || dr.Bridges[1].DPID != "00000000000000aa" {
		t.Fatalf("bridges %+v, want the document's and the connected one", dr.Bridges)
	}
	for _, b := range dr.Bridges {
		if len(b.Add) == 0 || len(b.Delete) == 0 {
			t.Fatalf("bridge %s: a moved pool must add and delete flows: %+v", b.DPID, b)
		}
		if !strings.Contains(strings.Join(b.Add, "\n"), "10.2.0.0/16") || !strings.Contains(strings.Join(b.Delete, "\n"), "10.1.0.0/16") {
			t.Fatalf("bridge %s diff does not mention the moved prefix: %+v", b.DPID, b)
		}
	}
	if !dr.Bridges[0].Registered || dr.Bridges[1].Registered || !dr.Bridges[1].Connected {
		t.Fatalf("registered/connected flags wrong: %+v", dr.Bridges)
	}
	if e.revision() != rev || !strings.Contains(mustJSON(t, e.load()), "10.1.0.0/16") {
		t.Fatal("dry run stored the document")
	}

	// Same document: no changes anywhere.
	e.expect(e.do(http.MethodPut, "/v1/config?dry_run=true", contractExample(t)), http.StatusOK, &dr)
	for _, b := range dr.Bridges {
		if len(b.Add)+len(b.Modify)+len(b.Delete) != 0 {
			t.Fatalf("identical document yields changes on %s: %+v", b.DPID, b)
		}
	}
	// A misspelt dry_run is refused, never taken as a real write.
	e.expectError(e.do(http.MethodPut, "/v1/config?dry_run=yes", changed), 400, CodeBadRequest, "dry_run")
	if e.revision() != rev {
		t.Fatal("dry_run=yes stored the document")
	}
	// A stale If-Match is a conflict for a dry run too.
	e.expectError(e.do(http.MethodPut, "/v1/config?dry_run=true", changed, fmt.Sprintf("If-Match: %d", rev-1)), 409, CodeConflict, "")
}

func mustJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
