package main

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/op25b/op25b/api"
	"github.com/op25b/op25b/internal/testenv"
	"github.com/op25b/op25b/topology/store"
)

// apiServer runs the real API handler on an embedded etcd with the fake
// switch of cli_test.go, without tokens.
func apiServer(t *testing.T, sw *fakeSwitches) *httptest.Server {
	t.Helper()
	etcd := testenv.EmbeddedEtcd(t)
	st := store.New(etcd.Client, "/op25bctl-change/", slog.New(slog.DiscardHandler))
	h, err := api.New(api.Config{Store: st, Switches: sw, NodeID: "node-a", Logger: slog.New(slog.DiscardHandler),
		Now: func() time.Time { return time.Date(2007, 1, 10, 0, 0, 0, 0, time.UTC) }})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

func appliedRevision(t *testing.T, out string) int64 {
	t.Helper()
	var rev int64
	if _, err := fmt.Sscanf(out, "applied: revision %d", &rev); err != nil {
		t.Fatalf("apply output %q", out)
	}
	return rev
}

// TestDiffExitCodeStatusDisconnectedTimeoutAndServer covers the scripting
// side of op25bctl: diff --exit-code, status --wait-revision with a
// registered bridge that is not connected, --timeout, friendly --server.
func TestDiffExitCodeStatusDisconnectedTimeoutAndServer(t *testing.T) {
	bin := filepath.Join(buildBinaries(t), "op25bctl")
	sw := &fakeSwitches{}
	srv := apiServer(t, sw)
	c := ctl{t: t, bin: bin, env: []string{"OP25B_SERVER=" + srv.URL}}
	policy := writeFile(t, "policy.yaml", exampleYAML)
	rev := appliedRevision(t, c.ok("apply", "-f", policy))

	// diff --exit-code: 0 without changes, 1 with, 2 on errors (diff(1)).
	if r := c.run("diff", "-f", policy, "--exit-code"); r.code != 0 || !strings.Contains(r.stdout, "items: no change") {
		t.Fatalf("diff of the stored document: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	moved := writeFile(t, "moved.yaml", strings.Replace(exampleYAML, "10.1.0.0/16", "10.9.0.0/16", 1))
	if r := c.run("diff", "-f", moved, "--exit-code"); r.code != 1 || r.stderr != "" || !strings.Contains(r.stdout, "~ pools/tokyo-dyn") {
		t.Fatalf("diff with changes: exit %d, stderr %q\n%s", r.code, r.stderr, r.stdout)
	}
	if r := c.run("diff", "-f", moved); r.code != 0 {
		t.Fatalf("diff without --exit-code: exit %d", r.code)
	}
	c.fails(2, "no such file", "diff", "-f", filepath.Join(t.TempDir(), "nope.yaml"), "--exit-code")

	// A registered bridge that no replica is connected to: the rollout is
	// not confirmed, so --wait-revision fails naming it...
	sw.mu.Lock()
	sw.applied = rev
	sw.mu.Unlock()
	two := strings.Replace(exampleYAML, "bridges:\n", "bridges:\n  - {dpid: \"0000000000000002\", name: osaka-1-sub-a, pop: osaka-1}\n", 1)
	rev2 := appliedRevision(t, c.ok("apply", "-f", writeFile(t, "two.yaml", two)))
	sw.mu.Lock()
	sw.applied = rev2
	sw.mu.Unlock()
	c.fails(1, "0000000000000002 osaka-1-sub-a", "status", "--wait-revision", fmt.Sprint(rev2), "--timeout", "1500ms")
	c.fails(1, "--allow-disconnected", "status", "--wait-revision", fmt.Sprint(rev2), "--timeout", "1500ms")
	// ... unless the operator accepts it; then it says which were not confirmed.
	if r := c.run("status", "--wait-revision", fmt.Sprint(rev2), "--allow-disconnected", "--timeout", "10s"); r.code != 0 ||
		!strings.Contains(r.stderr, "0000000000000002") {
		t.Fatalf("--allow-disconnected: exit %d, stderr %q", r.code, r.stderr)
	}

	// --timeout bounds every command, here one whose server never answers.
	hang := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-hang }))
	defer slow.Close()
	defer close(hang)
	start := time.Now()
	ctl{t: t, bin: bin}.fails(1, "no answer", "--server", slow.URL, "get", "pools", "--timeout", "500ms")
	if d := time.Since(start); d > 20*time.Second {
		t.Fatalf("--timeout 500ms took %s", d)
	}

	// --server without a scheme means http://; a bad one says what it wants.
	hostPort := strings.TrimPrefix(srv.URL, "http://")
	bare := ctl{t: t, bin: bin}
	if out := bare.ok("--server", hostPort, "get", "pools"); !strings.Contains(out, "tokyo-dyn") {
		t.Fatalf("--server %s: %s", hostPort, out)
	}
	ctl{t: t, bin: bin}.fails(2, "want http://HOST:PORT", "--server", "ftp://"+hostPort, "status")
	ctl{t: t, bin: bin}.fails(2, "port", "--server", "127.0.0.1:99999", "status")
}

// TestJSONErrorsAndTokenHints: with -o json a failure is one JSON object on
// stderr; a 401 says how to pass a token, a 403 that the token is read-only.
func TestJSONErrorsAndTokenHints(t *testing.T) {
	bin := filepath.Join(buildBinaries(t), "op25bctl")
	etcd := testenv.EmbeddedEtcd(t)
	st := store.New(etcd.Client, "/op25bctl-hints/", slog.New(slog.DiscardHandler))
	tokens, err := api.LoadTokenFile(writeFile(t, "tokens", "noc r3ad-t0ken-0000000000 read\nops wr1te-t0ken-111111111 write\n"))
	if err != nil {
		t.Fatal(err)
	}
	h, err := api.New(api.Config{Store: st, Tokens: tokens, NodeID: "node-a", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	at := "--server=" + srv.URL
	c := ctl{t: t, bin: bin}

	c.fails(1, "pass --token TOKEN or set OP25B_TOKEN", at, "status")
	c.fails(1, "is not in op25bd's --api-token-file", at, "--token", "nope", "status")
	policy := writeFile(t, "policy.yaml", exampleYAML)
	c.fails(1, "needs a token with role write", at, "--token", "r3ad-t0ken-0000000000", "apply", "-f", policy)

	for _, tc := range []struct {
		args           []string
		status         int
		code, contains string
	}{
		{[]string{at, "-o", "json", "status"}, 401, "unauthorized", "OP25B_TOKEN"},
		{[]string{at, "-o", "json", "--token", "r3ad-t0ken-0000000000", "apply", "-f", policy}, 403, "forbidden", "role write"},
		{[]string{at, "-o", "json", "--token", "wr1te-t0ken-111111111", "apply", "-f",
			writeFile(t, "bad.yaml", strings.Replace(exampleYAML, "10.1.0.0/16", "10.1.0.1/16", 1))}, 400, "invalid_document", "host bits"},
		{[]string{"--server", "http://127.0.0.1:1", "-o", "json", "status"}, 0, "error", "cannot reach"},
		{[]string{at, "-o", "json", "frobnicate"}, 0, "usage", "unknown command"},
	} {
		r := c.run(tc.args...)
		var body struct {
			Error struct {
				Command, Code, Message string
				Status                 int
			}
		}
		if r.code == 0 || strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 || json.Unmarshal([]byte(r.stderr), &body) != nil {
			t.Fatalf("%v: exit %d, stderr %q: want one JSON line", tc.args, r.code, r.stderr)
		}
		if body.Error.Status != tc.status || body.Error.Code != tc.code || !strings.Contains(body.Error.Message, tc.contains) || body.Error.Command == "" {
			t.Fatalf("%v: %+v", tc.args, body.Error)
		}
	}
}

// TestLint: offline (no server at all), every problem with its path and
// the line of the file, for YAML and JSON; exit 1 on any, 0 when valid.
func TestLint(t *testing.T) {
	bin := filepath.Join(buildBinaries(t), "op25bctl")
	// A server address nothing listens on: lint must not need it.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := l.Addr().String()
	l.Close()
	c := ctl{t: t, bin: bin, env: []string{"OP25B_SERVER=" + dead}}

	if out := c.ok("lint", "-f", writeFile(t, "ok.yaml", exampleYAML)); !strings.Contains(out, "ok.yaml: valid") {
		t.Fatalf("lint of a valid file: %s", out)
	}
	badYAML := `revision: 12
ports: [25, 70000]
pools:
  - {name: tokyo-dyn, prefix: 10.1.0.1/16, kind: dynamic, service: ftth}
  - name: tokyo-fixed
    prefix: 10.1.200.0/29
    kind: static
    service: ftth
services:
  - name: ftth
    phases:
      - {block: [no-such-set]}
`
	r := c.run("lint", "-f", writeFile(t, "bad.yaml", badYAML))
	want := []string{
		"bad.yaml:2: ports[1]: ",
		"bad.yaml:4: pools[0].prefix: ",
		"bad.yaml:8: pools[1].service: ",
		"bad.yaml:12: services[0].phases[0].block[0]: ",
	}
	for _, w := range want {
		if !strings.Contains(r.stdout, w) {
			t.Errorf("lint bad.yaml lacks %q:\n%s", w, r.stdout)
		}
	}
	if r.code != 1 || !strings.Contains(r.stderr, "4 problems") {
		t.Fatalf("lint bad.yaml: exit %d, stderr %q\n%s", r.code, r.stderr, r.stdout)
	}

	badJSON := `{
  "ports": [25],
  "pools": [
    {"name": "a", "prefix": "10.0.0.0/8", "kind": "static"},
    {"name": "a",
     "prefix": "2001:DB8::/32",
     "kind": "static"}
  ],
  "bridges": [{"dpid": "xyz", "name": "b", "pop": "p"}]
}`
	r = c.run("lint", "-f", writeFile(t, "bad.json", badJSON), "-o", "json")
	var res struct {
		Valid    bool
		Problems []struct {
			Line           int
			Field, Message string
		}
	}
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil || r.code != 1 || res.Valid {
		t.Fatalf("lint -o json: exit %d, %v\n%s", r.code, err, r.stdout)
	}
	lines := map[string]int{}
	for _, p := range res.Problems {
		lines[p.Field] = p.Line
	}
	for field, line := range map[string]int{"pools[1].name": 5, "pools[1].prefix": 6, "bridges[0].dpid": 9} {
		if lines[field] != line {
			t.Errorf("%s: line %d, want %d (all: %v)", field, lines[field], line, lines)
		}
	}
	// Parse errors get their line too.
	r = c.run("lint", "-f", writeFile(t, "typo.yaml", "ports: [25]\npools:\n  - {name: a, prefx: 10.0.0.0/8, kind: static}\n"))
	if r.code != 1 || !strings.Contains(r.stdout, "typo.yaml:3: ") || !strings.Contains(r.stdout, "prefx") {
		t.Fatalf("lint typo.yaml: exit %d\n%s", r.code, r.stdout)
	}
	r = c.run("lint", "-f", writeFile(t, "typo.json", "{\n\"ports\": [25],\n\"pools\": [{\"name\": \"a\", \"prefx\": \"10.0.0.0/8\"}]\n}"))
	if r.code != 1 || !strings.Contains(r.stdout, "typo.json:3: pools[0].prefx") {
		t.Fatalf("lint typo.json: exit %d\n%s", r.code, r.stdout)
	}
}
