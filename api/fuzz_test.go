package api

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/op25b/op25b/topology"
	"github.com/op25b/op25b/topology/store"
)

// FuzzAPIRequest drives the request decoding and validation path with
// arbitrary methods, paths, bodies and If-Match headers against an
// in-memory store: no panic, never a 5xx, and a request that is not a
// successful write stores nothing.
func FuzzAPIRequest(f *testing.F) {
	example, err := os.ReadFile(filepath.Join("testdata", "contract-example.json"))
	if err != nil {
		f.Fatal(err)
	}
	ex := string(example)
	seeds := []struct{ method, path, body, ifMatch string }{
		{"PUT", "/v1/config", ex, ""},
		{"PUT", "/v1/config?dry_run=true", strings.Replace(ex, "10.1.0.0/16", "10.2.0.0/16", 1), ""},
		{"PUT", "/v1/config", strings.Replace(ex, "10.1.0.0/16", "10.1.0.1/16", 1), "1"},
		{"PUT", "/v1/config", `{"revision": 1, "ports": [25, 25]}`, ""},
		{"PUT", "/v1/config", `{"pools": [{"name": "a", "prefix": "::/0", "kind": "static"}]}`, `"1"`},
		{"PUT", "/v1/pools/tokyo-dyn", `{"prefix": "10.1.0.0/16", "kind": "static"}`, ""},
		{"PUT", "/v1/services/ftth", `{"phases": [{"from": "2006-11-01T00:00:00+09:00", "block": "all", "pops": ["a"]}]}`, ""},
		{"PUT", "/v1/bridges/00000000000000ff", `{"name": "b", "pop": "p"}`, "0"},
		{"PUT", "/v1/destinations/d", `{"prefixes": []}`, ""},
		{"DELETE", "/v1/services/ftth", "", ""},
		{"DELETE", "/v1/relays/msa", "", "W/\"1\""},
		{"GET", "/v1/audit?limit=1&before=2", "", ""},
		{"GET", "/v1/bridges/0000000000000001/flows", "", ""},
		{"PUT", "/v1/config", "null", ""},
		{"PUT", "/v1/config", `{"block": [}`, ""},
		// Nesting and duplicate keys (issue 11): the revision key must not
		// switch duplicate detection off, nor nesting blow memory up.
		{"PUT", "/v1/config", strings.TrimSuffix(strings.TrimSpace(ex), "}") + `,"pools":[],"revision":0}`, ""},
		{"PUT", "/v1/config", `{"revision":1,"revision":0,"pools":[]}`, ""},
		{"PUT", "/v1/config", `{"revision":0,"ports":[25],"ports":[26]}`, ""},
		{"PUT", "/v1/config?dry_run=true", `{"pools":` + strings.Repeat("[", 4096), ""},
		{"PUT", "/v1/config", strings.Repeat("[", 4096) + strings.Repeat("]", 4096), ""},
		{"PUT", "/v1/config", `{"services":[{"name":"s","phases":[{"block":[[[["x"]]]]}]}]}`, ""},
		{"PUT", "/v1/config", `{"ports":` + strings.Repeat(`{"a":`, 512), ""},
		{"PUT", "/v1/pools/p", `{"prefix":"10.9.0.0/16","kind":"static","kind":"dynamic"}`, ""},
		{"PUT", "/v1/services/s", `{"phases":[{"block":"all","from":"2026-12-01T00:00:00+09:60"}]}`, ""},
		{"PUT", "/v1/bridges/0000000000000009", `{"name":"b","pop":"p","pop":"q"}`, ""},
		// Issue 14: exemptions, quarantines, a phase's mode, explain.
		{"PUT", "/v1/exemptions/ticket-4711", `{"prefix":"10.1.3.7/32","until":"2026-12-01T00:00:00+09:00","reason":"mail server","ticket":"4711"}`, ""},
		{"PUT", "/v1/quarantines/bot", `{"prefix":"10.1.9.9/32","until":"2026-11-30T12:00:00.5-03:30","reason":"a\u0000b","ticket":"AB-88"}`, ""},
		{"DELETE", "/v1/quarantines/bot", "", ""},
		{"PUT", "/v1/services/s", `{"phases":[{"block":"all","mode":"observe"}]}`, ""},
		{"GET", "/v1/explain?src=10.1.9.9&dst=192.0.2.25&port=25&bridge=tokyo-1-sub-a&at=2006-12-15T00:00:00Z", "", ""},
		{"GET", "/v1/explain?src=::ffff:10.1.9.9&dst=::1&bridge=0000000000000001", "", ""},
	}
	for _, s := range seeds {
		f.Add(s.method, s.path, s.body, s.ifMatch)
	}
	f.Fuzz(func(t *testing.T, method, path, body, ifMatch string) {
		switch method {
		case "GET", "PUT", "DELETE":
		default:
			method = "PUT"
		}
		if !strings.HasPrefix(path, "/") || strings.ContainsAny(path, " \r\n\t#") {
			path = "/v1/config"
		}
		mem := newMemStore()
		if _, err := mem.Replace(context.Background(), mustParse(t, ex), storeOpts()); err != nil {
			t.Fatal(err)
		}
		before, beforeRev, _ := mem.Load(context.Background())
		writes := mem.writes
		h, err := New(Config{Store: mem, Metrics: fuzzMetrics, Logger: slog.New(slog.DiscardHandler), Now: func() time.Time { return testClock }, MaxBodyBytes: 1 << 20})
		if err != nil {
			t.Fatal(err)
		}
		req, err := http.NewRequest(method, "http://op25b"+path, strings.NewReader(body))
		if err != nil {
			return // not a request a client could send
		}
		if ifMatch != "" && !strings.ContainsAny(ifMatch, "\r\n\x00") {
			req.Header.Set("If-Match", ifMatch)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%s %s: status %d: %s", method, path, rec.Code, rec.Body.String())
		}
		wrote := method != "GET" && rec.Code/100 == 2 && !isDryRun(req)
		after, afterRev, _ := mem.Load(context.Background())
		if !wrote {
			if mem.writes != writes || afterRev != beforeRev || mustJSON(t, after) != mustJSON(t, before) {
				t.Fatalf("%s %s answered %d but changed the store", method, path, rec.Code)
			}
			return
		}
		if err := topology.Validate(after); err != nil {
			t.Fatalf("stored an invalid document: %v", err)
		}
	})
}

func mustParse(t testing.TB, s string) *topology.Document {
	t.Helper()
	doc, err := topology.ParseJSON([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

func storeOpts() store.WriteOptions { return store.WriteOptions{Who: "seed"} }

// fuzzMetrics is shared: a registry per input would dominate the run time.
var fuzzMetrics = NewMetrics(nil)
