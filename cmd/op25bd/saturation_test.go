package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/op25b/op25b/internal/testenv"
)

const saturationToken = "s4turation-read-write"

// startSaturationDaemon runs op25bd with a token file (so /metrics needs
// a token) and its embedded etcd, ready.
func startSaturationDaemon(t *testing.T, args ...string) *daemon {
	t.Helper()
	dir := t.TempDir()
	tokens := filepath.Join(dir, "tokens")
	if err := os.WriteFile(tokens, []byte("noc "+saturationToken+" write\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, "sat", append([]string{"--api-token-file", tokens, "--data-dir", filepath.Join(dir, "etcd")}, args...)...)
	testenv.Eventually(t, 60*time.Second, "/readyz 200", func() bool { return httpCode("http://"+d.api+"/readyz") == http.StatusOK })
	return d
}

// clientFrom is an HTTP client whose connections come from a given
// loopback address and are never reused (every request a new connection,
// as a prober's would be).
func clientFrom(ip string, timeout time.Duration) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: timeout}
	return &http.Client{Timeout: timeout, Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}}
}

// idleConnections opens n TCP connections to addr spread over the given
// source addresses and sends nothing on them; they close with the test.
func idleConnections(t *testing.T, addr string, n int, from []string) []net.Conn {
	t.Helper()
	var conns []net.Conn
	for i := 0; i < n; i++ {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from[i%len(from)])}, Timeout: 5 * time.Second}
		c, err := d.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("idle connection %d: %v", i, err)
		}
		conns = append(conns, c)
	}
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	return conns
}

func loopbacks(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("127.0.3.%d", i+1)
	}
	return out
}

// probe GETs path with a fresh connection from 127.0.0.1 and returns the
// status and how long the answer took.
func probe(t *testing.T, api, path string) (int, time.Duration) {
	t.Helper()
	start := time.Now()
	code, _, err := apiCall(clientFrom("127.0.0.1", 15*time.Second), http.MethodGet, "http://"+api+path, saturationToken, "")
	if err != nil {
		return 0, time.Since(start)
	}
	return code, time.Since(start)
}

// Regression (issue 11, "Saturation"): 300 idle API connections (the limit
// is 256) blocked /healthz for 10 s. Now the probes are answered from the
// reserve whatever holds the other slots: 300 idle connections from the
// prober's own address (over the per-client cap), then 300 from twelve
// other addresses (over the total cap).
func TestRegressionIdleConnectionsBlockHealthz(t *testing.T) {
	d := startSaturationDaemon(t)
	for _, tc := range []struct {
		name string
		from []string
	}{
		{"one client", []string{"127.0.0.1"}},
		{"many clients", loopbacks(12)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			idleConnections(t, d.api, 300, tc.from)
			time.Sleep(200 * time.Millisecond) // let the listener take them in
			var worst time.Duration
			for round := 0; round < 3; round++ {
				for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
					code, took := probe(t, d.api, path)
					worst = max(worst, took)
					if code != http.StatusOK {
						t.Errorf("%s under 300 idle connections: status %d after %v", path, code, took)
					}
					if took > 5*time.Second { // behaviour, not timing: it was 10 s
						t.Errorf("%s took %v", path, took)
					}
				}
			}
			// Other requests are turned away at once rather than hanging,
			// unless a normal slot is free for this client.
			code, took := probe(t, d.api, "/v1/status")
			t.Logf("%s: slowest probe %v; /v1/status answered %d in %v", tc.name, worst.Round(time.Millisecond), code, took.Round(time.Millisecond))
			if code != http.StatusServiceUnavailable && code != http.StatusOK || took > 5*time.Second {
				t.Errorf("/v1/status under saturation: %d after %v, want 503 or 200 at once", code, took)
			}
		})
	}
	// The flood is gone: everything is served again.
	testenv.Eventually(t, 30*time.Second, "/v1/status 200 after the flood", func() bool {
		code, _ := probe(t, d.api, "/v1/status")
		return code == http.StatusOK
	})
}

// Regression (issue 11, "Saturation"): 260 slow PUT bodies blocked the
// whole API for 60 s (the request read timeout). Now a body has
// --api-body-timeout (here 2 s, plus 1 s per MiB announced) to arrive,
// independently of the handler, so the API is back within seconds, and
// the probes are answered throughout.
func TestRegressionSlowBodiesBlockAPI(t *testing.T) {
	d := startSaturationDaemon(t, "--api-body-timeout", "2s")
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	from := loopbacks(13) // 13 × 20 = 260, within the per-client cap of 32
	start := time.Now()
	for i := 0; i < 260; i++ {
		dialer := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from[i%len(from)])}, Timeout: 5 * time.Second}
		c, err := dialer.Dial("tcp", d.api)
		if err != nil {
			t.Fatal(err)
		}
		head := "PUT /v1/config HTTP/1.1\r\nHost: op25b\r\nAuthorization: Bearer " + saturationToken +
			"\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{"
		if _, err := c.Write([]byte(head)); err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() { // one byte a second, until the server gives up or the test ends
			defer wg.Done()
			defer c.Close()
			tick := time.NewTicker(time.Second)
			defer tick.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
					if _, err := c.Write([]byte(" ")); err != nil {
						return
					}
				}
			}
		}()
	}
	var probesOK, probes int
	var backAfter time.Duration
	for deadline := time.Now().Add(45 * time.Second); time.Now().Before(deadline); {
		if code, _ := probe(t, d.api, "/healthz"); code == http.StatusOK {
			probesOK++
		}
		probes++
		if code, _ := probe(t, d.api, "/v1/config"); code == http.StatusOK {
			backAfter = time.Since(start)
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("260 slow bodies: GET /v1/config answered 200 after %v; /healthz %d/%d probes ok", backAfter.Round(time.Millisecond), probesOK, probes)
	if backAfter == 0 {
		t.Fatal("the API did not answer GET /v1/config within 45 s of 260 slow bodies (it was 60 s)")
	}
	if probesOK != probes {
		t.Errorf("/healthz failed %d of %d times during the slow-body flood", probes-probesOK, probes)
	}
}

// vmHWM is the peak resident set size of process pid so far, in bytes.
func vmHWM(t *testing.T, pid int) int64 {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			var kb int64
			if _, err := fmt.Sscanf(strings.TrimSpace(rest), "%d kB", &kb); err == nil {
				return kb << 10
			}
		}
	}
	t.Fatal("no VmHWM in /proc status")
	return 0
}

// daemonNestedRSSBound is the stated bound on how much op25bd's peak RSS
// may grow while it refuses two 16 MB nested bodies at once: the bodies
// (2 × 16 MB) plus garbage-collector headroom. The probe measured 2.27 GB
// for one and 4.2 GB for two.
const daemonNestedRSSBound = 160 << 20

// Regression (issue 11, "Memory blow-up from one request"), measured on the
// daemon: two 16 MB bodies of nested '[' at once (dry run, a read token is
// enough) are refused with 400, and op25bd's peak RSS grows by far less
// than the 4.2 GB the probe saw.
func TestRegressionNestedBodyDaemonRSS(t *testing.T) {
	d := startSaturationDaemon(t)
	pid := d.cmd.Process.Pid
	time.Sleep(2 * time.Second) // let start-up allocations settle
	before := vmHWM(t, pid)
	body := `{"pools":` + strings.Repeat("[", 16<<20-len(`{"pools":`))
	var wg sync.WaitGroup
	codes := make([]int, 2)
	for i := range codes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes[i], _, _ = apiCall(clientFrom("127.0.0.1", 60*time.Second), http.MethodPut, "http://"+d.api+"/v1/config?dry_run=true", saturationToken, body)
		}()
	}
	wg.Wait()
	after := vmHWM(t, pid)
	t.Logf("op25bd peak RSS %.0f MB before, %.0f MB after two 16 MB nested bodies (+%.0f MB; bound +%d MB)",
		float64(before)/1e6, float64(after)/1e6, float64(after-before)/1e6, daemonNestedRSSBound>>20)
	for i, c := range codes {
		if c != http.StatusBadRequest {
			t.Errorf("body %d: status %d, want 400", i, c)
		}
	}
	if after-before > daemonNestedRSSBound {
		t.Errorf("peak RSS grew by %d bytes, bound %d", after-before, daemonNestedRSSBound)
	}
}
