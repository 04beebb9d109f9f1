package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/op25b/op25b/api"
	"github.com/op25b/op25b/controller"
	"github.com/op25b/op25b/flows"
	"github.com/op25b/op25b/internal/testenv"
	"github.com/op25b/op25b/topology"
	"github.com/op25b/op25b/topology/store"
)

var (
	buildOnce sync.Once
	builtDir  string
	buildErr  error
)

// buildBinaries compiles op25bctl and op25bd once per test run, into a
// temporary directory: the tests run the real binaries, as operators do.
func buildBinaries(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		builtDir, buildErr = os.MkdirTemp("", "op25bctl-test-")
		if buildErr != nil {
			return
		}
		for _, pkg := range []string{".", "../op25bd"} {
			out, err := exec.Command("go", "build", "-o", builtDir+"/", pkg).CombinedOutput()
			if err != nil {
				buildErr = fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
				return
			}
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return builtDir
}

func TestMain(m *testing.M) {
	code := m.Run()
	if builtDir != "" {
		os.RemoveAll(builtDir)
	}
	os.Exit(code)
}

// ctl runs the op25bctl binary.
type ctl struct {
	t   *testing.T
	bin string
	env []string
	dir string // working directory; "" = the test's
}

type result struct {
	code           int
	stdout, stderr string
}

func (c ctl) run(args ...string) result {
	c.t.Helper()
	cmd := exec.Command(c.bin, args...)
	cmd.Env = append(os.Environ(), c.env...)
	cmd.Dir = c.dir
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			c.t.Fatalf("op25bctl %v: %v", args, err)
		}
		code = ee.ExitCode()
	}
	return result{code, out.String(), errb.String()}
}

// ok runs a command that must succeed.
func (c ctl) ok(args ...string) string {
	c.t.Helper()
	r := c.run(args...)
	if r.code != 0 {
		c.t.Fatalf("op25bctl %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

// fails runs a command that must fail with exit code, one stderr line
// containing want.
func (c ctl) fails(code int, want string, args ...string) {
	c.t.Helper()
	r := c.run(args...)
	c.t.Logf("op25bctl %s → exit %d: %s", strings.Join(args, " "), r.code, strings.TrimSpace(r.stderr))
	if r.code != code || strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 || !strings.Contains(r.stderr, want) {
		c.t.Fatalf("op25bctl %s: exit %d (want %d), stderr %q (want one line with %q)", strings.Join(args, " "), r.code, code, r.stderr, want)
	}
}

// fakeSwitches pretends bridge 0000000000000001 is connected and has
// applied whatever revision the test sets.
type fakeSwitches struct {
	mu      sync.Mutex
	applied int64
	flows   []flows.Flow
}

func (f *fakeSwitches) Status() []controller.BridgeStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	return []controller.BridgeStatus{{DPID: "0000000000000001", Connected: true, Role: "master", AppliedRevision: f.applied, Flows: len(f.flows)}}
}

func (f *fakeSwitches) Installed(ctx context.Context, dpid topology.DPID) ([]flows.Flow, []controller.FlowCounter, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var counters []controller.FlowCounter
	for _, fl := range f.flows {
		counters = append(counters, controller.FlowCounter{Key: fl.Key(), Cookie: fl.Cookie, Packets: 5, Bytes: 300})
	}
	return f.flows, counters, nil
}

func (f *fakeSwitches) DropCounters(topology.DPID) []controller.FlowCounter { return nil }

const exampleYAML = `# the contract's example, as an operator would write it
ports: [25]
pools:
  - {name: tokyo-dyn, prefix: 10.1.0.0/16, kind: dynamic, service: ftth}
  - {name: tokyo-fixed, prefix: 10.1.200.0/29, kind: static}
  - {name: tokyo-v6, prefix: "2001:db8:1::/48", kind: dynamic, service: v6plus}
relays:
  - {name: msa, prefix: 192.0.2.25/32}
destinations:
  - {name: mobile-carriers, prefixes: [198.51.100.0/24, "2001:db8:ffff::/48"]}
services:
  - name: ftth
    phases:
      - {from: "2006-11-01T00:00:00+09:00", block: [mobile-carriers], relays: true}
      - {from: "2006-12-01T00:00:00+09:00", block: all, relays: true, pops: [osaka-1]}
      - {from: "2006-12-15T00:00:00+09:00", block: all, relays: true}
  - name: v6plus
    phases:
      - {block: all, relays: false}
bridges:
  - {dpid: "0000000000000001", name: tokyo-1-sub-a, pop: tokyo-1}
`

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestCLIAgainstAPI runs every command of the binary against the real API
// handler on a real (embedded) etcd, with bearer tokens.
func TestCLIAgainstAPI(t *testing.T) {
	bin := filepath.Join(buildBinaries(t), "op25bctl")
	etcd := testenv.EmbeddedEtcd(t)
	st := store.New(etcd.Client, "/op25bctl-test/", slog.New(slog.DiscardHandler))
	sw := &fakeSwitches{}
	tokens, err := api.LoadTokenFile(writeFile(t, "tokens", "noc r3ad-t0ken-0000000000 read\nops wr1te-t0ken-111111111 write\n"))
	if err != nil {
		t.Fatal(err)
	}
	h, err := api.New(api.Config{Store: st, Cluster: nil, Switches: sw, Tokens: tokens, NodeID: "node-a",
		Logger: slog.New(slog.DiscardHandler), Now: func() time.Time { return time.Date(2007, 1, 10, 0, 0, 0, 0, time.UTC) }})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	writer := ctl{t: t, bin: bin, env: []string{"OP25B_SERVER=" + srv.URL, "OP25B_TOKEN=wr1te-t0ken-111111111"}}
	reader := ctl{t: t, bin: bin, env: []string{"OP25B_TOKEN=r3ad-t0ken-0000000000"}}
	at := "--server=" + srv.URL

	policy := writeFile(t, "policy.yaml", exampleYAML)
	out := writer.ok("apply", "-f", policy)
	var rev1 int64
	if _, err := fmt.Sscanf(out, "applied: revision %d", &rev1); err != nil || rev1 <= 0 {
		t.Fatalf("apply output %q", out)
	}

	// get config prints YAML with the revision as data; it re-applies.
	got := reader.ok(at, "get", "config")
	if !strings.Contains(got, fmt.Sprintf("\nrevision: %d\n", rev1)) || !strings.Contains(got, "tokyo-dyn") {
		t.Fatalf("get config:\n%s", got)
	}
	// JSON form: the API's body, revision included; also re-applies
	// (its revision acts as If-Match).
	var doc map[string]any
	raw := reader.ok("get", "config", "-o", "json", at)
	if err := json.Unmarshal([]byte(raw), &doc); err != nil || doc["revision"].(float64) != float64(rev1) {
		t.Fatalf("get config -o json: %v %s", err, raw)
	}
	edited := strings.Replace(raw, "10.1.0.0/16", "10.2.0.0/16", 1)
	editedFile := writeFile(t, "edited.json", edited)

	// diff and apply --dry-run: readable per-bridge diff, nothing stored.
	diff := reader.ok(at, "diff", "-f", editedFile)
	for _, want := range []string{"~ pools/tokyo-dyn", "bridge 0000000000000001 (tokyo-1-sub-a) [connected]", "  + ", "10.2.0.0/16", "  - ", "10.1.0.0/16"} {
		if !strings.Contains(diff, want) {
			t.Fatalf("diff lacks %q:\n%s", want, diff)
		}
	}
	dry := writer.ok("apply", "--dry-run", "-f", editedFile)
	if dry != diff {
		t.Fatalf("apply --dry-run differs from diff:\n%s\n---\n%s", dry, diff)
	}
	if !strings.Contains(reader.ok(at, "get", "pools"), "10.1.0.0/16") {
		t.Fatal("dry run stored the document")
	}
	// A read token cannot write; the error is one line.
	reader.fails(1, "forbidden", at, "apply", "-f", editedFile)

	out = writer.ok("apply", "-f", editedFile)
	var rev2 int64
	if _, err := fmt.Sscanf(out, "applied: revision %d", &rev2); err != nil || rev2 <= rev1 {
		t.Fatalf("apply edited: %q", out)
	}
	// The same file again is stale now: its revision is rev1.
	writer.fails(1, "revision_conflict", "apply", "-f", editedFile)

	// status: the table, then --wait-revision.
	sw.mu.Lock()
	sw.applied = rev1
	sw.mu.Unlock()
	status := reader.ok(at, "status")
	if !strings.Contains(status, fmt.Sprintf("revision %d", rev2)) || !strings.Contains(status, "0000000000000001") || !strings.Contains(status, "tokyo-1-sub-a") {
		t.Fatalf("status:\n%s", status)
	}
	reader.fails(1, "timeout", at, "status", "--wait-revision", fmt.Sprint(rev2), "--timeout", "1s")
	go func() {
		time.Sleep(time.Second)
		sw.mu.Lock()
		sw.applied = rev2
		sw.mu.Unlock()
	}()
	reader.ok(at, "status", "--wait-revision", fmt.Sprint(rev2), "--timeout", "30s")
	var stJSON api.StatusResponse
	if err := json.Unmarshal([]byte(reader.ok(at, "-o", "json", "status")), &stJSON); err != nil || stJSON.Revision != rev2 {
		t.Fatalf("status -o json: %v %+v", err, stJSON)
	}

	// flows by name and by dpid, with counts.
	sw.mu.Lock()
	sw.flows = nil
	sw.mu.Unlock()
	fl := reader.ok(at, "flows", "tokyo-1-sub-a")
	if !strings.Contains(fl, "missing") || !strings.Contains(fl, "bridge 0000000000000001") {
		t.Fatalf("flows with nothing installed:\n%s", fl)
	}
	reader.fails(1, "no bridge named", at, "flows", "no-such-bridge")
	var fr api.FlowsResponse
	if err := json.Unmarshal([]byte(reader.ok(at, "flows", "0000000000000001", "-o", "json")), &fr); err != nil || len(fr.Desired) == 0 {
		t.Fatalf("flows -o json: %v %+v", err, fr)
	}

	// audit: newest first, who is the token name.
	aud := reader.ok(at, "audit")
	lines := strings.Split(strings.TrimSpace(aud), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[1], fmt.Sprint(rev2)) || !strings.Contains(lines[1], "ops") || !strings.Contains(lines[1], "~pools/tokyo-dyn") {
		t.Fatalf("audit:\n%s", aud)
	}

	// Errors: one line, non-zero.
	writer.fails(2, "-f FILE is required", "apply")
	writer.fails(1, "no such file", "apply", "-f", filepath.Join(t.TempDir(), "missing.yaml"))
	writer.fails(1, "pools[0].prefix", "apply", "-f", writeFile(t, "bad.yaml", strings.Replace(exampleYAML, "10.1.0.0/16", "10.1.0.1/16", 1)))
	writer.fails(1, "colour", "apply", "-f", writeFile(t, "unknown.yaml", exampleYAML+"colour: red\n"))
	ctl{t: t, bin: bin}.fails(1, "unauthorized", at, "status")
	ctl{t: t, bin: bin, env: []string{"OP25B_TOKEN=x"}}.fails(1, "unknown token", at, "--token", "wrong", "audit")
	ctl{t: t, bin: bin}.fails(1, "cannot reach", "--server", "http://127.0.0.1:1", "status")
	writer.fails(2, "unknown command", "frobnicate")
	writer.fails(2, "-o must be table or json", "status", "-o", "xml")
	writer.fails(1, "bridge not found", "ovs", "attach", "op25b-nosuch", "--controllers", "tcp:127.0.0.1:6653")
}
