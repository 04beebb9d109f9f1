package api

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/op25b/op25b/topology/store"
)

// The rollout page's assets need no token (they hold no data), carry a
// strict Content-Security-Policy, and are not served on the metrics
// listener; its data still needs the token.
func TestRolloutPageAssets(t *testing.T) {
	tokens, err := LoadTokenFile(writeTokenFile(t, "noc secret read\n"))
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, func(c *Config) {
		c.Tokens = tokens
		c.Cache = &fakeDocs{snap: store.Snapshot{Loaded: true, Revision: 7}}
	})
	for path, want := range map[string]string{
		"/ui/":           "<title>op25b rollout</title>",
		"/ui/index.html": "", // net/http redirects index.html to the directory
		"/ui/app.js":     "sessionStorage",
		"/ui/style.css":  ".timeline",
	} {
		rec := e.do(http.MethodGet, path, "")
		if path == "/ui/index.html" {
			if rec.Code != http.StatusMovedPermanently {
				t.Errorf("GET %s: %d", path, rec.Code)
			}
			continue
		}
		if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), want) {
			t.Errorf("GET %s without a token: %d, body lacks %q", path, rec.Code, want)
		}
		if csp := rec.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || !strings.Contains(csp, "default-src 'none'") {
			t.Errorf("GET %s: Content-Security-Policy %q", path, csp)
		}
	}
	if ct := e.do(http.MethodGet, "/ui/app.js", "").Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/javascript") {
		t.Errorf("app.js served as %q: a module script needs a JavaScript type", ct)
	}
	if rec := e.do(http.MethodGet, "/ui", ""); rec.Code != http.StatusMovedPermanently || rec.Header().Get("Location") != "/ui/" {
		t.Errorf("GET /ui: %d to %q", rec.Code, rec.Header().Get("Location"))
	}
	if rec := e.do(http.MethodGet, "/ui/nope.js", ""); rec.Code != http.StatusNotFound {
		t.Errorf("GET /ui/nope.js: %d", rec.Code)
	}
	e.expectError(e.do(http.MethodPost, "/ui/", "x"), http.StatusMethodNotAllowed, CodeMethodNotAllowed, "")
	e.expectError(e.do(http.MethodGet, "/v1/rollout", ""), http.StatusUnauthorized, CodeUnauthorized, "")

	probes, err := NewMetricsOnly(e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	probes.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/ui/", nil))
	if rec.Code != http.StatusNotFound {
		t.Errorf("GET /ui/ on the metrics listener: %d, want 404", rec.Code)
	}
}
