package api

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

func TestItemsCRUD(t *testing.T) {
	e := newEnv(t, nil)
	rev := e.putExample()

	cases := []struct {
		kind, key, body string
		count           int
	}{
		{"pools", "osaka-dyn", `{"name": "osaka-dyn", "prefix": "10.9.0.0/16", "kind": "dynamic", "service": "ftth"}`, 3},
		{"relays", "msa2", `{"prefix": "192.0.2.26/32"}`, 1},
		{"destinations", "carrier-b", `{"name": "carrier-b", "prefixes": ["203.0.113.0/24"]}`, 1},
		{"services", "business", `{"name": "business", "phases": [{"block": "all"}]}`, 2},
		{"bridges", "00000000000000B2", `{"dpid": "00000000000000b2", "name": "osaka-1-sub-a", "pop": "osaka-1"}`, 1},
		{"exemptions", "ticket-4711", `{"prefix": "10.1.3.7/32", "until": "2026-12-01T00:00:00+09:00", "reason": "mail server until the fixed-IP move", "ticket": "4711"}`, 0},
		{"quarantines", "bot-10-1-9-9", `{"name": "bot-10-1-9-9", "prefix": "10.1.9.9/32", "until": "2026-11-30T12:00:00+09:00", "reason": "abuse report", "ticket": "AB-88"}`, 0},
	}
	for _, tc := range cases {
		t.Run(tc.kind, func(t *testing.T) {
			e.t = t
			var coll map[string]any
			e.expect(e.do(http.MethodGet, "/v1/"+tc.kind, ""), http.StatusOK, &coll)
			if n := len(coll[tc.kind].([]any)); n != tc.count {
				t.Fatalf("GET /v1/%s: %d items, want %d", tc.kind, n, tc.count)
			}
			one := "/v1/" + tc.kind + "/" + tc.key
			e.expectError(e.do(http.MethodGet, one, ""), http.StatusNotFound, CodeNotFound, "")

			var w writeResponse
			e.expect(e.do(http.MethodPut, one, tc.body), http.StatusCreated, &w)
			if w.Revision <= rev {
				t.Fatalf("create: revision %d, want > %d", w.Revision, rev)
			}
			rev = w.Revision
			var item map[string]any
			e.expect(e.do(http.MethodGet, one, ""), http.StatusOK, &item)
			if fmt.Sprint(item["name"]) == "" && item["dpid"] == nil {
				t.Fatalf("GET %s: %v", one, item)
			}
			// Replacing an existing item is 200 (and a no-op write keeps the revision).
			e.expect(e.do(http.MethodPut, one, tc.body, fmt.Sprintf("If-Match: %d", rev)), http.StatusOK, &w)
			e.expectError(e.do(http.MethodPut, one, tc.body, fmt.Sprintf("If-Match: %d", rev-1)), http.StatusConflict, CodeConflict, "")

			e.expect(e.do(http.MethodDelete, one, ""), http.StatusOK, &w)
			rev = w.Revision
			e.expectError(e.do(http.MethodGet, one, ""), http.StatusNotFound, CodeNotFound, "")
			e.expectError(e.do(http.MethodDelete, one, ""), http.StatusNotFound, CodeNotFound, "")
		})
	}
	e.t = t
	if got := e.revision(); got != rev {
		t.Fatalf("revision %d, want %d", got, rev)
	}
}

func TestItemErrors(t *testing.T) {
	e := newEnv(t, nil)
	rev := e.putExample()
	cases := []struct {
		name, method, path, body string
		status                   int
		code, field              string
	}{
		{"name differs from URL", "PUT", "/v1/pools/tokyo-dyn", `{"name": "other", "prefix": "10.1.0.0/16", "kind": "static"}`, 400, CodeNameMismatch, "name"},
		{"dpid differs from URL", "PUT", "/v1/bridges/0000000000000001", `{"dpid": "0000000000000002", "name": "x", "pop": "p"}`, 400, CodeNameMismatch, "dpid"},
		{"unknown field", "PUT", "/v1/relays/msa", `{"prefix": "192.0.2.25/32", "port": 25}`, 400, CodeInvalidJSON, "port"},
		{"case-variant field", "PUT", "/v1/relays/msa", `{"Prefix": "192.0.2.25/32"}`, 400, CodeInvalidJSON, "*"},
		{"duplicate key", "PUT", "/v1/relays/msa", `{"prefix": "192.0.2.25/32", "prefix": "192.0.2.26/32"}`, 400, CodeInvalidJSON, "*"},
		{"wrong type", "PUT", "/v1/pools/p", `{"prefix": 10, "kind": "static"}`, 400, CodeInvalidJSON, "prefix"},
		{"not json", "PUT", "/v1/relays/msa", `prefix=1`, 400, CodeInvalidJSON, ""},
		{"null", "PUT", "/v1/relays/msa", `null`, 400, CodeInvalidJSON, ""},
		{"trailing", "PUT", "/v1/relays/msa", `{"prefix": "192.0.2.25/32"} {}`, 400, CodeInvalidJSON, ""},
		{"invalid prefix", "PUT", "/v1/relays/msa", `{"prefix": "192.0.2.25/24"}`, 400, CodeInvalidDocument, "relays[0].prefix"},
		{"duplicate prefix", "PUT", "/v1/pools/copy", `{"prefix": "10.1.0.0/16", "kind": "static"}`, 400, CodeInvalidDocument, "*"},
		{"bad name", "PUT", "/v1/pools/Bad_Name", `{"prefix": "10.7.0.0/16", "kind": "static"}`, 400, CodeInvalidDocument, "*"},
		{"exemption without until", "PUT", "/v1/exemptions/e", `{"prefix": "10.1.3.7/32", "reason": "r", "ticket": "t"}`, 400, CodeInvalidDocument, "exemptions[0].until"},
		{"exemption until not RFC 3339", "PUT", "/v1/exemptions/e", `{"prefix": "10.1.3.7/32", "until": "2026-12-01T00:00:00+24:00", "reason": "r", "ticket": "t"}`, 400, CodeInvalidDocument, "exemptions[0].until"},
		{"quarantine without ticket", "PUT", "/v1/quarantines/q", `{"prefix": "10.1.9.9/32", "until": "2026-12-01T00:00:00Z", "reason": "r"}`, 400, CodeInvalidDocument, "quarantines[0].ticket"},
		{"quarantine host bits", "PUT", "/v1/quarantines/q", `{"prefix": "10.1.9.9/24", "until": "2026-12-01T00:00:00Z", "reason": "r", "ticket": "t"}`, 400, CodeInvalidDocument, "quarantines[0].prefix"},
		{"quarantine typo", "PUT", "/v1/quarantines/q", `{"prefix": "10.1.9.9/32", "untill": "2026-12-01T00:00:00Z"}`, 400, CodeInvalidJSON, "untill"},
		{"phase mode typo", "PUT", "/v1/services/trial", `{"phases": [{"block": "all", "mode": "watch"}]}`, 400, CodeInvalidDocument, "services[2].phases[0].mode"},
		{"service still used", "DELETE", "/v1/services/ftth", "", 409, CodeReferenced, "pools[0].service"},
		{"destination still used", "DELETE", "/v1/destinations/mobile-carriers", "", 409, CodeReferenced, "services[0].phases[0].block[0]"},
		{"delete missing", "DELETE", "/v1/pools/nope", "", 404, CodeNotFound, ""},
		{"bad If-Match", "DELETE", "/v1/pools/tokyo-dyn", "", 400, CodeBadRequest, "If-Match"},
		{"unknown route", "GET", "/v1/widgets", "", 404, CodeNotFound, ""},
		{"wrong method", "POST", "/v1/config", "{}", 405, CodeMethodNotAllowed, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e.t = t
			var headers []string
			if tc.name == "bad If-Match" {
				headers = append(headers, "If-Match: soon")
			}
			apiErr := e.expectError(e.do(tc.method, tc.path, tc.body, headers...), tc.status, tc.code, tc.field)
			if tc.code == CodeReferenced && !strings.Contains(apiErr.Message, "referenced by") {
				t.Fatalf("409 message does not name the references: %q", apiErr.Message)
			}
		})
	}
	e.t = t
	if got := e.revision(); got != rev {
		t.Fatalf("revision %d after rejected item writes, want %d", got, rev)
	}
	// Once nothing refers to it, the service can go.
	var w writeResponse
	e.expect(e.do(http.MethodDelete, "/v1/pools/tokyo-dyn", ""), http.StatusOK, &w)
	e.expect(e.do(http.MethodDelete, "/v1/services/ftth", ""), http.StatusOK, &w)
}
