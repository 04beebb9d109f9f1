package api

import (
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/op25b/op25b/controller"
)

func writeTokenFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

const testTokens = `# NOC tokens
noc-reader  r3ad-0nly-t0ken-abcdef  read

automation  wr1te-t0ken-0123456789  write
`

func TestAuthRoles(t *testing.T) {
	tokens, err := LoadTokenFile(writeTokenFile(t, testTokens))
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, func(c *Config) { c.Tokens = tokens })
	const (
		reader = "Authorization: Bearer r3ad-0nly-t0ken-abcdef"
		writer = "Authorization: Bearer wr1te-t0ken-0123456789"
	)
	doc := contractExample(t)

	// No token, malformed header, unknown token: 401, even for reads and
	// unknown /v1 routes.
	for _, h := range []string{"", "Authorization: r3ad-0nly-t0ken-abcdef", "Authorization: Bearer", "Authorization: Bearer nope", "Authorization: Basic dXNlcjpwYXNz"} {
		var hdrs []string
		if h != "" {
			hdrs = []string{h}
		}
		rec := e.do(http.MethodGet, "/v1/config", "", hdrs...)
		e.expectError(rec, http.StatusUnauthorized, CodeUnauthorized, "")
		if rec.Header().Get("WWW-Authenticate") == "" {
			t.Fatal("401 without WWW-Authenticate")
		}
		e.expectError(e.do(http.MethodPut, "/v1/config", doc, hdrs...), http.StatusUnauthorized, CodeUnauthorized, "")
		e.expectError(e.do(http.MethodGet, "/v1/nothing-here", "", hdrs...), http.StatusUnauthorized, CodeUnauthorized, "")
	}
	// Read token: reads and dry runs yes, writes 403.
	e.expect(e.do(http.MethodGet, "/v1/config", "", reader), http.StatusOK, nil)
	e.expect(e.do(http.MethodGet, "/v1/openapi.yaml", "", reader), http.StatusOK, nil)
	e.expect(e.do(http.MethodPut, "/v1/config?dry_run=true", doc, reader), http.StatusOK, nil)
	e.expectError(e.do(http.MethodPut, "/v1/config", doc, reader), http.StatusForbidden, CodeForbidden, "")
	e.expectError(e.do(http.MethodPut, "/v1/relays/x", `{"prefix": "192.0.2.9/32"}`, reader), http.StatusForbidden, CodeForbidden, "")
	e.expectError(e.do(http.MethodDelete, "/v1/pools/tokyo-dyn", "", reader), http.StatusForbidden, CodeForbidden, "")
	if e.revision() != 0 {
		t.Fatal("a refused write stored something")
	}
	// Write token writes, and the audit log names it.
	var w writeResponse
	e.expect(e.do(http.MethodPut, "/v1/config", doc, writer), http.StatusOK, &w)
	var audit AuditResponse
	e.expect(e.do(http.MethodGet, "/v1/audit", "", reader), http.StatusOK, &audit)
	if len(audit.Records) != 1 || audit.Records[0].Who != "automation" || audit.Records[0].Revision != w.Revision {
		t.Fatalf("audit %+v, want one record by automation at %d", audit.Records, w.Revision)
	}
	// Health is outside /v1: no token needed (probes).
	for _, p := range []string{"/healthz", "/readyz"} {
		e.expect(e.do(http.MethodGet, p, ""), http.StatusOK, nil)
	}
}

// Regression (issue 11, "Unauthenticated data"): /metrics without a token
// showed dpids, mastership and flow counts on the API port. The policy:
// with a token file, /metrics on the API port needs a token (read is
// enough); /healthz and /readyz never do; without a token file (loopback
// only) nothing does.
func TestRegressionUnauthenticatedMetricsOnAPIPort(t *testing.T) {
	tokens, err := LoadTokenFile(writeTokenFile(t, testTokens))
	if err != nil {
		t.Fatal(err)
	}
	sw := &fakeSwitches{status: []controller.BridgeStatus{statusOf("00000000000000aa", true, "master", 3)}}
	e := newEnv(t, func(c *Config) { c.Tokens = tokens; c.Switches = sw; c.Metrics = NewMetrics(nil) })
	e.expectError(e.do(http.MethodGet, "/metrics", ""), http.StatusUnauthorized, CodeUnauthorized, "")
	e.expectError(e.do(http.MethodGet, "/metrics", "", "Authorization: Bearer wrong"), http.StatusUnauthorized, CodeUnauthorized, "")
	rec := e.do(http.MethodGet, "/metrics", "", "Authorization: Bearer r3ad-0nly-t0ken-abcdef")
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "00000000000000aa") {
		t.Fatalf("/metrics with a read token: %d %.200s", rec.Code, rec.Body.String())
	}
	for _, p := range []string{"/healthz", "/readyz"} {
		e.expect(e.do(http.MethodGet, p, ""), http.StatusOK, nil)
	}
	open := newEnv(t, func(c *Config) { c.Switches = sw; c.Metrics = NewMetrics(nil) })
	open.expect(open.do(http.MethodGet, "/metrics", ""), http.StatusOK, nil)
}

func TestTokenFileErrors(t *testing.T) {
	cases := []struct{ content, want string }{
		{"a b\n", "line 1: want \"NAME TOKEN ROLE\""},
		{"# c\n\na tok admin\n", "line 3: role \"admin\""},
		{"a t1 read\na t2 write\n", "line 2: name \"a\" already used on line 1"},
		{"a t1 read\nb t1 write\n", "line 2: same token as line 1"},
		{"bad/name t1 read\n", "line 1: name \"bad/name\""},
		{"a t1 read extra\n", "line 1: want"},
	}
	for _, tc := range cases {
		_, err := LoadTokenFile(writeTokenFile(t, tc.content))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want it to contain %q", tc.content, err, tc.want)
		}
	}
	if _, err := LoadTokenFile(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("missing file accepted")
	}
}

func TestTokenFileReload(t *testing.T) {
	path := writeTokenFile(t, "a token-one read\n")
	tokens, err := LoadTokenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("a token-two write\nb token-three read\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := tokens.Reload(); err != nil {
		t.Fatal(err)
	}
	if _, ok := tokens.lookup("token-one"); ok {
		t.Fatal("old token still valid after reload")
	}
	if e, ok := tokens.lookup("token-two"); !ok || e.role != RoleWrite {
		t.Fatalf("new token: %+v %v", e, ok)
	}
	// A broken file keeps the previous tokens (a typo must not lock the NOC out).
	if err := os.WriteFile(path, []byte("garbage\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := tokens.Reload(); err == nil {
		t.Fatal("broken file accepted")
	}
	if tokens.Len() != 2 {
		t.Fatalf("%d tokens after failed reload, want 2", tokens.Len())
	}
}

// Regression (issue 11, "Token file permissions"): a token file with mode
// 0644 was accepted while keys must be 0600. Any group or world bit is now
// refused at start and on reload (SIGHUP), and a refused reload keeps the
// tokens already loaded.
func TestRegressionTokenFileWorldReadable(t *testing.T) {
	for _, mode := range []os.FileMode{0o644, 0o640, 0o604, 0o660, 0o602, 0o610, 0o601, 0o666} {
		path := writeTokenFile(t, testTokens)
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		_, err := LoadTokenFile(path)
		if !errors.Is(err, ErrTokenFilePermissions) || !strings.Contains(err.Error(), "chmod 600") {
			t.Errorf("mode %#o: LoadTokenFile: %v, want ErrTokenFilePermissions", mode, err)
		}
	}
	for _, mode := range []os.FileMode{0o600, 0o400} {
		path := writeTokenFile(t, testTokens)
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadTokenFile(path); err != nil {
			t.Errorf("mode %#o refused: %v", mode, err)
		}
	}
	// Reload: loosened permissions are refused and the old tokens stay.
	path := writeTokenFile(t, testTokens)
	tokens, err := LoadTokenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("intruder 0pen-t0ken-xyz write\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := tokens.Reload(); !errors.Is(err, ErrTokenFilePermissions) {
		t.Fatalf("reload of a 0644 file: %v", err)
	}
	if _, ok := tokens.lookup("0pen-t0ken-xyz"); ok {
		t.Fatal("a token from a world-readable file was loaded")
	}
	if _, ok := tokens.lookup("wr1te-t0ken-0123456789"); !ok {
		t.Fatal("a refused reload dropped the previous tokens")
	}
}
