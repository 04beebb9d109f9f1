package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/op25b/op25b/internal/testenv"
	"github.com/op25b/op25b/topology"
)

// daemon is one op25bd process started by a test.
type daemon struct {
	t        testing.TB
	id       string
	cmd      *exec.Cmd
	exited   chan struct{}
	mu       sync.Mutex
	log      bytes.Buffer
	openflow string
	api      string
	metrics  string
	etcd     string
}

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
	runningRE = regexp.MustCompile(`msg="op25bd running".* openflow=(\S+) api=(\S+)`)
	embedRE   = regexp.MustCompile(`msg="embedded etcd started".* endpoints=\[(\S+)\]`)
	metricsRE = regexp.MustCompile(`msg="op25bd running".* metrics=(\S+)`)
)

func buildDaemon(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "op25bd-test")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "op25bd")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

func startDaemon(t testing.TB, id string, args ...string) *daemon {
	t.Helper()
	bin := buildDaemon(t)
	d := &daemon{t: t, id: id, exited: make(chan struct{})}
	all := append([]string{"--node-id", id, "--openflow-listen", "127.0.0.1:0", "--api-listen", "127.0.0.1:0",
		"--lease-ttl", "3s", "--log-level", "debug"}, args...)
	d.cmd = exec.Command(bin, all...)
	d.cmd.Env = append(os.Environ(), "OP25B_AUDIT_INTERVAL=1h")
	stderr, err := d.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			d.mu.Lock()
			d.log.WriteString(line + "\n")
			if m := runningRE.FindStringSubmatch(line); m != nil {
				d.openflow, d.api = m[1], m[2]
			}
			if m := embedRE.FindStringSubmatch(line); m != nil {
				d.etcd = m[1]
			}
			if m := metricsRE.FindStringSubmatch(line); m != nil {
				d.metrics = m[1]
			}
			d.mu.Unlock()
		}
		_ = d.cmd.Wait()
		close(d.exited)
	}()
	t.Cleanup(func() {
		_ = d.cmd.Process.Kill()
		<-d.exited
		if t.Failed() {
			t.Logf("op25bd %s log:\n%s", id, d.logTail())
		}
	})
	testenv.Eventually(t, 60*time.Second, id+" running", func() bool {
		d.mu.Lock()
		defer d.mu.Unlock()
		return d.api != ""
	})
	return d
}

func (d *daemon) logTail() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := d.log.String()
	if len(s) > 6000 {
		s = s[len(s)-6000:]
	}
	return s
}

// terminate sends SIGTERM and returns the exit code.
func (d *daemon) terminate() int {
	code, _ := d.stop(syscall.SIGTERM, 30*time.Second)
	return code
}

// stop sends sig and returns the exit code and how long the process took
// to exit; it fails the test if that is longer than limit.
func (d *daemon) stop(sig os.Signal, limit time.Duration) (int, time.Duration) {
	d.t.Helper()
	start := time.Now()
	if err := d.cmd.Process.Signal(sig); err != nil {
		d.t.Fatalf("signal %s to op25bd %s: %v", sig, d.id, err)
	}
	select {
	case <-d.exited:
	case <-time.After(limit):
		d.t.Fatalf("op25bd %s did not stop within %s of %s", d.id, limit, sig)
	}
	return d.cmd.ProcessState.ExitCode(), time.Since(start)
}

type statusView struct {
	Revision int64 `json:"revision"`
	Replicas []struct {
		ID      string `json:"id"`
		Version string `json:"version"`
	} `json:"replicas"`
	Bridges []struct {
		DPID            topology.DPID `json:"dpid"`
		Connected       bool          `json:"connected"`
		Master          string        `json:"master"`
		AppliedRevision int64         `json:"applied_revision"`
		Flows           int           `json:"flows"`
		DriftDetection  string        `json:"drift_detection"`
	} `json:"bridges"`
}

func getStatus(api string) (statusView, error) {
	var s statusView
	resp, err := http.Get("http://" + api + "/v1/status")
	if err != nil {
		return s, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return s, fmt.Errorf("status %d: %s", resp.StatusCode, b)
	}
	return s, json.NewDecoder(resp.Body).Decode(&s)
}

func putConfig(t testing.TB, api, doc string) int64 {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPut, "http://"+api+"/v1/config", strings.NewReader(doc))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("PUT /v1/config: %d %s", resp.StatusCode, body)
	}
	var r struct {
		Revision int64 `json:"revision"`
	}
	if err := json.Unmarshal(body, &r); err != nil || r.Revision == 0 {
		t.Fatalf("PUT /v1/config answer %s: %v", body, err)
	}
	return r.Revision
}

func httpCode(url string) int {
	resp, err := http.Get(url)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// Two op25bd processes on one etcd enforce a bridge through the REST API;
// SIGTERM to the master exits 0, hands the bridge to the other replica at
// once (no TTL wait) and leaves every flow in place.
func TestDaemonsShareBridgeAndHandOverOnSIGTERM(t *testing.T) {
	testenv.RequireOVS(t)
	etcd := testenv.EmbeddedEtcd(t)
	a := startDaemon(t, "op25b-a", "--etcd-endpoints", strings.Join(etcd.Endpoints, ","))
	b := startDaemon(t, "op25b-b", "--etcd-endpoints", strings.Join(etcd.Endpoints, ","))
	br := testenv.NewBridge(t, "")
	br.AddPort(t, 1)
	br.AddPort(t, 2)
	br.SetController(t, "tcp:"+a.openflow, "tcp:"+b.openflow)

	doc := fmt.Sprintf(`{"pools":[{"name":"tokyo-dyn","prefix":"10.1.0.0/16","kind":"dynamic","service":"ftth"}],
 "relays":[{"name":"msa","prefix":"192.0.2.25/32"}],"destinations":[],
 "services":[{"name":"ftth","phases":[{"block":"all","relays":true}]}],
 "bridges":[{"dpid":"%s","name":"tokyo-1-sub-a","pop":"tokyo-1"}]}`, br.DPID)
	rev := putConfig(t, a.api, doc)

	var master string
	testenv.Eventually(t, 60*time.Second, "bridge applied at the written revision", func() bool {
		s, err := getStatus(b.api)
		if err != nil || len(s.Bridges) != 1 || len(s.Replicas) != 2 {
			return false
		}
		master = s.Bridges[0].Master
		return s.Bridges[0].Connected && s.Bridges[0].AppliedRevision >= rev && master != ""
	})
	// The master watches the bridge through flow monitoring (OVS 3.1), and
	// the other replica's API says so from the status record in etcd.
	testenv.Eventually(t, 30*time.Second, "drift_detection monitor in the other replica's status", func() bool {
		s, err := getStatus(b.api)
		return err == nil && len(s.Bridges) == 1 && s.Bridges[0].DriftDetection == "monitor"
	})
	if got := br.Trace(t, "tcp,in_port=1,nw_src=10.1.2.3,nw_dst=203.0.113.9,tp_dst=25"); got != "drop" {
		t.Errorf("SMTP from a dynamic pool not dropped: %s", got)
	}
	if code := httpCode("http://" + a.api + "/readyz"); code != http.StatusOK {
		t.Errorf("/readyz = %d", code)
	}
	before := br.OwnedFlows(t)

	leaving, staying := a, b
	if master == b.id {
		leaving, staying = b, a
	}
	stopped := time.Now()
	if code := leaving.terminate(); code != 0 {
		t.Errorf("op25bd exit code %d after SIGTERM, want 0", code)
	}
	testenv.Eventually(t, 20*time.Second, "the other replica masters the bridge", func() bool {
		s, err := getStatus(staying.api)
		return err == nil && len(s.Bridges) == 1 && s.Bridges[0].Master == staying.id && s.Bridges[0].AppliedRevision >= rev
	})
	t.Logf("graceful handover in %s (lease TTL 3s)", time.Since(stopped).Round(time.Millisecond))
	if after := br.OwnedFlows(t); after != before {
		t.Errorf("flows changed across the handover:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

// Without --etcd-endpoints op25bd runs its own etcd in --data-dir.
func TestDaemonEmbeddedEtcd(t *testing.T) {
	d := startDaemon(t, "solo", "--data-dir", t.TempDir())
	testenv.Eventually(t, 60*time.Second, "/readyz 200", func() bool { return httpCode("http://"+d.api+"/readyz") == http.StatusOK })
	if code := httpCode("http://" + d.api + "/healthz"); code != http.StatusOK {
		t.Errorf("/healthz = %d", code)
	}
	if d.etcd == "" {
		t.Errorf("no embedded etcd in the log")
	}
	if code := d.terminate(); code != 0 {
		t.Errorf("exit code %d after SIGTERM", code)
	}
}

func TestDaemonBadFlagExits2(t *testing.T) {
	bin := buildDaemon(t)
	cmd := exec.Command(bin, "--audit-interval", "sometimes")
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 2 {
		t.Fatalf("exit = %v, want 2; output %s", err, out)
	}
	if lines := strings.Count(strings.TrimSpace(string(out)), "\n"); lines != 0 || !strings.Contains(string(out), "audit-interval") {
		t.Errorf("want a one-line error naming the flag, got %q", out)
	}
}

// --version and --help answer on stdout with exit 0, nothing on stderr.
func TestDaemonVersionAndHelp(t *testing.T) {
	bin := buildDaemon(t)
	for _, tc := range []struct {
		arg, want string
	}{{"--version", "op25bd version "}, {"--help", "Usage: op25bd [flags]"}, {"-h", "Usage: op25bd [flags]"}} {
		var stdout, stderr bytes.Buffer
		cmd := exec.Command(bin, tc.arg)
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Errorf("op25bd %s: %v", tc.arg, err)
		}
		if !strings.HasPrefix(stdout.String(), tc.want) || stderr.Len() != 0 {
			t.Errorf("op25bd %s: stdout %.80q, stderr %q; want stdout starting %q", tc.arg, stdout.String(), stderr.String(), tc.want)
		}
	}
	out := runOutput(t, bin, "--version")
	if !regexp.MustCompile(`^op25bd version \S+, commit \S+, built with go[0-9.]+\n$`).MatchString(out) {
		t.Errorf("--version = %q", out)
	}
}

// With --log-format json every line is a JSON object; an OP25B_* variable
// that sets no flag is warned about with the closest flag; the error that
// stops the daemon is under the key "err".
func TestDaemonJSONLogAndStrayVariable(t *testing.T) {
	bin := buildDaemon(t)
	missing := filepath.Join(t.TempDir(), "missing.pem")
	cmd := exec.Command(bin, "--log-format", "json", "--data-dir", t.TempDir(),
		"--openflow-tls-cert", missing, "--openflow-tls-key", missing, "--openflow-tls-ca", missing)
	cmd.Env = append(os.Environ(), "OP25B_AUDIT_INTERVALL=1m")
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("exit = %v, want 1; output:\n%s", err, out)
	}
	var warned, failed bool
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("not a JSON log line: %q", line)
		}
		if rec["msg"] == "environment variable matches no op25bd flag; ignored" &&
			rec["variable"] == "OP25B_AUDIT_INTERVALL" && rec["closest"] == "OP25B_AUDIT_INTERVAL" && rec["level"] == "WARN" {
			warned = true
		}
		if rec["level"] == "ERROR" && strings.Contains(fmt.Sprint(rec["err"]), missing) {
			failed = true
		}
	}
	if !warned || !failed {
		t.Errorf("want the stray variable warned (%v) and the error under \"err\" (%v):\n%s", warned, failed, out)
	}
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" {
		_ = os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}
