package main

// These tests change OVS's global SSL settings (see tls_test.go): none runs
// in parallel with another top-level test.

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/op25b/op25b/internal/testenv"
)

// stopLimit is how long a stop may take: systemd's default TimeoutStopSec
// is 90 s, op25b's unit says 30 s; a clean stop takes milliseconds.
const stopLimit = 5 * time.Second

// A replica run the way production runs it — token file, OpenFlow, API
// and etcd over TLS, the metrics listener — stops cleanly within 5 s of
// SIGTERM or SIGINT, also after a SIGHUP reload, and hands its bridges
// over: with a second replica, that one masters the bridge at once (long
// before the 30 s lease would expire); alone, its log shows mastership
// released and the lease revoked. Flows stay on the switches throughout.
func TestStopWithEverythingOn(t *testing.T) {
	testenv.RequireOVS(t)
	pki := testenv.NewPKI(t, "stop")
	ctl := pki.Issue(t, "controller")
	sw := pki.Issue(t, "switch")
	me := pki.Issue(t, "op25bd") // the embedded etcd's server and op25bd's client certificate
	noc := pki.Issue(t, "noc")
	tokens := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(tokens, []byte("noc w-secret write\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	testenv.SetOVSSSL(t, sw.Key, sw.Cert, pki.CA)
	client := httpsClient(t, pki, &noc)
	version := strings.TrimSpace(runOutput(t, buildDaemon(t), "--version"))

	// everything is the production configuration; etcd is the embedded
	// one over TLS unless endpoints are given.
	everything := func(etcdEndpoints string) []string {
		args := []string{
			"--etcd-cert", me.Cert, "--etcd-key", me.Key, "--etcd-ca", pki.CA,
			"--openflow-tls-cert", ctl.Cert, "--openflow-tls-key", ctl.Key, "--openflow-tls-ca", pki.CA,
			"--api-tls-cert", ctl.Cert, "--api-tls-key", ctl.Key, "--api-tls-client-ca", pki.CA,
			"--api-token-file", tokens, "--metrics-listen", "127.0.0.1:0", "--lease-ttl", "30s",
		}
		if etcdEndpoints == "" {
			return append(args, "--data-dir", t.TempDir())
		}
		return append(args, "--etcd-endpoints", etcdEndpoints)
	}
	status := func(d *daemon) (statusView, error) {
		var s statusView
		code, body, err := apiCall(client, http.MethodGet, "https://"+d.api+"/v1/status", "w-secret", "")
		if err != nil || code != http.StatusOK {
			return s, fmt.Errorf("status: %d %s %v", code, body, err)
		}
		return s, json.Unmarshal([]byte(body), &s)
	}
	// enforce applies a one-pool policy for br through d and waits until
	// a replica applied it; it returns the master.
	enforce := func(t *testing.T, d *daemon, br testenv.Bridge) string {
		doc := fmt.Sprintf(`{"pools":[{"name":"dyn","prefix":"10.1.0.0/16","kind":"dynamic","service":"ftth"}],
 "relays":[],"destinations":[],"services":[{"name":"ftth","phases":[{"block":"all"}]}],
 "bridges":[{"dpid":"%s","name":"stop-1","pop":"tokyo-1"}]}`, br.DPID)
		code, body, err := apiCall(client, http.MethodPut, "https://"+d.api+"/v1/config", "w-secret", doc)
		if err != nil || code != http.StatusOK {
			t.Fatalf("PUT /v1/config: %d %s %v", code, body, err)
		}
		var put struct{ Revision int64 }
		_ = json.Unmarshal([]byte(body), &put)
		var master string
		testenv.Eventually(t, 90*time.Second, "bridge over ssl: applied", func() bool {
			s, err := status(d)
			if err != nil || len(s.Bridges) != 1 {
				return false
			}
			master = s.Bridges[0].Master
			return s.Bridges[0].Connected && s.Bridges[0].AppliedRevision >= put.Revision && master != ""
		})
		if got := br.Trace(t, "tcp,in_port=1,nw_src=10.1.2.3,nw_dst=203.0.113.9,tp_dst=25"); got != "drop" {
			t.Fatalf("SMTP from the dynamic pool not dropped: %s", got)
		}
		return master
	}
	newBridge := func(t *testing.T, replicas ...*daemon) testenv.Bridge {
		br := testenv.NewBridge(t, "")
		br.AddPort(t, 1)
		br.AddPort(t, 2)
		var targets []string
		for _, d := range replicas {
			targets = append(targets, "ssl:"+d.openflow)
		}
		br.SetController(t, targets...)
		return br
	}
	// stoppedCleanly checks what a stopping replica says and leaves behind.
	stoppedCleanly := func(t *testing.T, d *daemon, code int, took time.Duration, sig os.Signal) {
		t.Logf("%s: op25bd %s exited %d after %s", sig, d.id, code, took.Round(time.Millisecond))
		if code != 0 {
			t.Errorf("exit code %d after %s, want 0", code, sig)
		}
		for _, want := range []string{"shutting down: releasing mastership", "left cluster", `msg="op25bd stopped"`} {
			if d.logCount(want) != 1 {
				t.Errorf("log lacks %q", want)
			}
		}
		if d.logCount("revoke lease on shutdown") != 0 {
			t.Errorf("the lease was not revoked: others would wait for its TTL")
		}
	}

	t.Run("SIGTERM hands the bridge to the other replica", func(t *testing.T) {
		t.Parallel()
		etcd := testenv.EtcdTLS(t, pki)
		a := startDaemon(t, "stop-a", everything(etcd)...)
		b := startDaemon(t, "stop-b", everything(etcd)...)
		br := newBridge(t, a, b)
		master := enforce(t, a, br)
		before := br.OwnedFlows(t)

		s, err := status(b)
		if err != nil {
			t.Fatal(err)
		}
		var versions []string
		for _, r := range s.Replicas {
			versions = append(versions, r.ID+"="+r.Version)
		}
		if got := strings.Join(versions, " "); got != "stop-a="+versionOf(version)+" stop-b="+versionOf(version) {
			t.Errorf("/v1/status replicas %s, want both at %q (--version: %s)", got, versionOf(version), version)
		}
		// The metrics listener answers without token or client certificate
		// and serves nothing else.
		if code, body, err := apiCall(&http.Client{Timeout: 10 * time.Second}, http.MethodGet, "http://"+a.metrics+"/metrics", "", ""); err != nil || code != http.StatusOK ||
			!strings.Contains(body, `op25b_build_info{`) || !strings.Contains(body, `version="`+versionOf(version)+`"`) {
			t.Errorf("metrics listener /metrics: %d %v\n%.300s", code, err, body)
		}
		for path, want := range map[string]int{"/readyz": http.StatusOK, "/healthz": http.StatusOK, "/v1/status": http.StatusNotFound, "/v1/config": http.StatusNotFound} {
			if code := httpCode("http://" + a.metrics + path); code != want {
				t.Errorf("metrics listener %s = %d, want %d", path, code, want)
			}
		}

		leaving, staying := a, b
		if master == b.id {
			leaving, staying = b, a
		}
		code, took := leaving.stop(syscall.SIGTERM, stopLimit)
		stoppedCleanly(t, leaving, code, took, syscall.SIGTERM)
		if leaving.logCount(`msg="mastership released" replica=`+leaving.id+` dpid=`+string(br.DPID)) != 1 {
			t.Errorf("the master did not log releasing %s", br.DPID)
		}
		// The lease is 30 s: a takeover well before proves the handover.
		start := time.Now()
		testenv.Eventually(t, 20*time.Second, "the other replica masters the bridge", func() bool {
			s, err := status(staying)
			return err == nil && len(s.Bridges) == 1 && s.Bridges[0].Master == staying.id && s.Bridges[0].Connected
		})
		t.Logf("handover seen through the API %s after the exit", time.Since(start).Round(time.Millisecond))
		if after := br.OwnedFlows(t); after != before {
			t.Errorf("flows changed across the handover:\nbefore:\n%s\nafter:\n%s", before, after)
		}
	})

	// Alone on its embedded etcd (over TLS), the replica has no one to hand
	// over to: it releases mastership and revokes its lease, then stops
	// its etcd; the flows stay.
	for _, tc := range []struct {
		name, id string
		reload   bool
		sig      os.Signal
	}{
		{"SIGINT, embedded etcd", "stop-sigint", false, os.Interrupt},
		{"SIGHUP then SIGTERM, embedded etcd", "stop-sighup", true, syscall.SIGTERM},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d := startDaemon(t, tc.id, everything("")...)
			if !strings.HasPrefix(d.etcd, "https://") || d.metrics == "" {
				t.Fatalf("not the production configuration: etcd %q, metrics %q", d.etcd, d.metrics)
			}
			br := newBridge(t, d)
			enforce(t, d, br)
			before := br.OwnedFlows(t)
			if tc.reload {
				if err := d.cmd.Process.Signal(syscall.SIGHUP); err != nil {
					t.Fatal(err)
				}
				testenv.Eventually(t, 30*time.Second, "SIGHUP reload", func() bool {
					return d.logCount("token file reloaded") == 1 && d.logCount("etcd certificates reloaded") == 1
				})
			}
			code, took := d.stop(tc.sig, stopLimit)
			stoppedCleanly(t, d, code, took, tc.sig)
			if d.logCount(`msg="mastership released" replica=`+d.id+` dpid=`+string(br.DPID)) != 1 {
				t.Errorf("mastership of %s not released", br.DPID)
			}
			if after := br.OwnedFlows(t); after != before || after == "" {
				t.Errorf("flows changed by the stop:\nbefore:\n%s\nafter:\n%s", before, after)
			}
		})
	}
}

// versionOf is the version field of a --version line.
func versionOf(line string) string {
	f := strings.Fields(strings.TrimSuffix(line, ","))
	if len(f) < 3 || f[1] != "version" {
		return ""
	}
	return strings.TrimSuffix(f[2], ",")
}

func runOutput(t *testing.T, bin string, args ...string) string {
	t.Helper()
	out, err := exec.Command(bin, args...).Output()
	if err != nil {
		t.Fatalf("%s %s: %v", bin, strings.Join(args, " "), err)
	}
	return string(out)
}
