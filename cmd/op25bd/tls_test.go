package main

// Every test that changes OVS's global SSL settings (ovs-vsctl set-ssl)
// lives in this file or in lifecycle_test.go, and none runs in parallel
// with another: set-ssl is global to the OVS instance, and
// testenv.SetOVSSSL restores the previous setting.

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/op25b/op25b/internal/testenv"
	"github.com/op25b/op25b/topology"
)

func TestTLSFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		wantErr string
	}{
		{name: "openflow complete", args: []string{"--openflow-tls-cert", "c", "--openflow-tls-key", "k", "--openflow-tls-ca", "ca"}},
		{name: "openflow without CA", args: []string{"--openflow-tls-cert", "c", "--openflow-tls-key", "k"}, wantErr: "--openflow-tls-ca"},
		{name: "openflow CA only", args: []string{"--openflow-tls-ca", "ca"}, wantErr: "go together"},
		{name: "api server only", args: []string{"--api-tls-cert", "c", "--api-tls-key", "k"}},
		{name: "api client CA without cert", args: []string{"--api-tls-client-ca", "ca"}, wantErr: "--api-tls-cert"},
		{name: "api from env", env: map[string]string{"OP25B_API_TLS_CERT": "c", "OP25B_API_TLS_KEY": "k", "OP25B_API_TLS_CLIENT_CA": "ca"}},
		{name: "etcd CA only, external", args: []string{"--etcd-ca", "ca", "--etcd-endpoints", "https://e:2379"}},
		{name: "etcd http endpoint with TLS", args: []string{"--etcd-ca", "ca", "--etcd-endpoints", "http://e:2379"}, wantErr: "https://"},
		{name: "etcd cert without key", args: []string{"--etcd-cert", "c", "--etcd-endpoints", "https://e:2379"}, wantErr: "--etcd-key"},
		{name: "embedded etcd needs all three", args: []string{"--etcd-cert", "c", "--etcd-key", "k"}, wantErr: "embedded"},
		{name: "handshake timeout", args: []string{"--handshake-timeout", "0s"}, wantErr: "--handshake-timeout"},
		{name: "connection limit", env: map[string]string{"OP25B_OPENFLOW_MAX_CONNECTIONS": "0"}, wantErr: "--openflow-max-connections"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := parseFlags(tt.args, func(k string) string { return tt.env[k] }, io.Discard)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if tt.env["OP25B_API_TLS_CLIENT_CA"] != "" && o.APITLS.CA != "ca" {
					t.Errorf("OP25B_API_TLS_CLIENT_CA not read: %+v", o.APITLS)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("err = %v, want one line mentioning %q", err, tt.wantErr)
			}
		})
	}
	var out strings.Builder
	_, _ = parseFlags([]string{"--help"}, func(string) string { return "" }, &out)
	for _, f := range []string{"openflow-tls-cert", "openflow-tls-key", "openflow-tls-ca", "api-tls-cert", "api-tls-key",
		"api-tls-client-ca", "etcd-cert", "etcd-key", "etcd-ca", "handshake-timeout", "openflow-max-connections", "api-max-connections"} {
		if !strings.Contains(out.String(), "-"+f+" ") {
			t.Errorf("--help does not document --%s", f)
		}
	}
}

// A private key that group or others can read stops op25bd at start with
// an error naming the file and its mode.
func TestDaemonRefusesReadableKey(t *testing.T) {
	bin := buildDaemon(t)
	pki := testenv.NewPKI(t, "perm")
	ctl := pki.Issue(t, "controller")
	if err := os.Chmod(ctl.Key, 0o640); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--node-id", "perm", "--data-dir", t.TempDir(), "--openflow-listen", "127.0.0.1:0",
		"--api-listen", "127.0.0.1:0", "--openflow-tls-cert", ctl.Cert, "--openflow-tls-key", ctl.Key, "--openflow-tls-ca", pki.CA)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("exit = %v, want 1; output:\n%s", err, out)
	}
	for _, want := range []string{ctl.Key, "mode 0640", "readable by group or others", "chmod 600"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output does not say %q:\n%s", want, out)
		}
	}
	if strings.Contains(string(out), "embedded etcd started") {
		t.Errorf("etcd started before the key was checked")
	}
}

// httpsClient is an API client trusting pki, presenting cert when given.
func httpsClient(t *testing.T, pki *testenv.PKI, cert *testenv.CertFiles) *http.Client {
	cfg := &tls.Config{RootCAs: pki.Pool(), ServerName: "127.0.0.1"}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{cert.TLSCert(t)}
	}
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg, DisableKeepAlives: true}}
}

func apiCall(c *http.Client, method, url, token, body string) (int, string, error) {
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), nil
}

func (d *daemon) logCount(substr string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return strings.Count(d.log.String(), substr)
}

// ovsConnected reports OVS's own view of a controller target.
func ovsConnected(t *testing.T, target string) bool {
	out, err := testenv.RunErr("ovs-vsctl", "--timeout=10", "--columns=is_connected", "--bare", "find", "controller", "target=\""+target+"\"")
	return err == nil && strings.TrimSpace(out) == "true"
}

func leafSerial(t *testing.T, certFile string) string {
	b, err := os.ReadFile(certFile)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c.SerialNumber.String()
}

// leafExpiry is the Unix time of the NotAfter of the first certificate of
// certFile, as the text exposition writes it.
func leafExpiry(t *testing.T, certFile string) string {
	b, err := os.ReadFile(certFile)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return strconv.FormatFloat(float64(c.NotAfter.Unix()), 'g', -1, 64)
}

// waitServerClosed waits until the daemon closes conn.
func waitServerClosed(conn net.Conn) error {
	_ = conn.SetReadDeadline(time.Now().Add(90 * time.Second))
	buf := make([]byte, 4096)
	for {
		if _, err := conn.Read(buf); err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				return fmt.Errorf("%s still open after 90s", conn.LocalAddr())
			}
			return nil
		}
	}
}

// One op25bd with every channel over TLS: etcd (Debian's etcd with client
// certificate auth), OpenFlow (real OVS over ssl:), the API (client
// certificates and tokens). Then: plain TCP refused, SIGHUP rotation
// without dropping the switch, and an abuse run.
func TestTLSEveryChannel(t *testing.T) {
	testenv.RequireOVS(t)
	pki := testenv.NewPKI(t, "lab")
	ctl := pki.Issue(t, "controller")
	sw := pki.Issue(t, "switch")
	apiCert := pki.Issue(t, "api")
	noc := pki.Issue(t, "noc")
	etcdClient := pki.Issue(t, "op25bd")
	etcdEP := testenv.EtcdTLS(t, pki)

	tokens := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(tokens, []byte("noc w-secret write\nro r-secret read\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, "tls-a", "--etcd-endpoints", etcdEP,
		"--etcd-cert", etcdClient.Cert, "--etcd-key", etcdClient.Key, "--etcd-ca", pki.CA,
		"--openflow-tls-cert", ctl.Cert, "--openflow-tls-key", ctl.Key, "--openflow-tls-ca", pki.CA,
		"--api-tls-cert", apiCert.Cert, "--api-tls-key", apiCert.Key, "--api-tls-client-ca", pki.CA,
		"--api-token-file", tokens,
		"--handshake-timeout", "2s", "--openflow-max-connections", "64", "--api-max-connections", "32")
	if d.logCount("OpenFlow over plain TCP") != 0 {
		t.Errorf("plain-TCP warning with TLS configured")
	}
	api := "https://" + d.api
	nocClient := httpsClient(t, pki, &noc)

	testenv.SetOVSSSL(t, sw.Key, sw.Cert, pki.CA)
	br := testenv.NewBridge(t, "")
	br.AddPort(t, 1)
	br.AddPort(t, 2)
	plain := testenv.NewBridge(t, "")
	late := testenv.NewBridge(t, "")
	late.AddPort(t, 1)
	late.AddPort(t, 2)
	doc := fmt.Sprintf(`{"pools":[{"name":"tokyo-dyn","prefix":"10.1.0.0/16","kind":"dynamic","service":"ftth"}],
 "relays":[{"name":"msa","prefix":"192.0.2.25/32"}],"destinations":[],
 "services":[{"name":"ftth","phases":[{"block":"all","relays":true}]}],
 "bridges":[{"dpid":"%s","name":"tls-1","pop":"tokyo-1"},{"dpid":"%s","name":"plain-1","pop":"tokyo-1"},
            {"dpid":"%s","name":"late-1","pop":"tokyo-1"}]}`, br.DPID, plain.DPID, late.DPID)
	code, body, err := apiCall(nocClient, http.MethodPut, api+"/v1/config", "w-secret", doc)
	if err != nil || code != http.StatusOK {
		t.Fatalf("PUT /v1/config over TLS through etcd over TLS: %d %s %v", code, body, err)
	}
	var put struct {
		Revision int64 `json:"revision"`
	}
	_ = json.Unmarshal([]byte(body), &put)

	tlsTarget := "ssl:" + d.openflow
	br.SetController(t, tlsTarget)
	bridge := func(dpid topology.DPID) (connected bool, applied int64) {
		code, body, err := apiCall(nocClient, http.MethodGet, api+"/v1/status", "r-secret", "")
		if err != nil || code != http.StatusOK {
			return false, 0
		}
		var s statusView
		_ = json.Unmarshal([]byte(body), &s)
		for _, b := range s.Bridges {
			if b.DPID == dpid {
				return b.Connected, b.AppliedRevision
			}
		}
		return false, 0
	}
	testenv.Eventually(t, 90*time.Second, "bridge over ssl: applied", func() bool {
		c, rev := bridge(br.DPID)
		return c && rev >= put.Revision
	})
	if got := br.Trace(t, "tcp,in_port=1,nw_src=10.1.2.3,nw_dst=203.0.113.9,tp_dst=25"); got != "drop" {
		t.Errorf("SMTP from a dynamic pool not dropped on the TLS bridge: %s", got)
	}
	// OVS refreshes the controller's status column every few seconds.
	testenv.Eventually(t, 30*time.Second, "OVS reports its ssl: controller connected", func() bool { return ovsConnected(t, tlsTarget) })

	t.Run("api client certificates", func(t *testing.T) {
		if _, _, err := apiCall(httpsClient(t, pki, nil), http.MethodGet, api+"/v1/status", "r-secret", ""); err == nil {
			t.Errorf("client without certificate got an answer")
		}
		foreign := testenv.NewPKI(t, "foreign-noc")
		stranger := foreign.Issue(t, "stranger")
		if _, _, err := apiCall(httpsClient(t, pki, &stranger), http.MethodGet, api+"/v1/status", "r-secret", ""); err == nil {
			t.Errorf("client with a certificate from another CA got an answer")
		}
		if code, _, err := apiCall(nocClient, http.MethodGet, api+"/v1/status", "", ""); err != nil || code != http.StatusUnauthorized {
			t.Errorf("certificate without token: %d %v, want 401", code, err)
		}
		if code, _, err := apiCall(nocClient, http.MethodPut, api+"/v1/config", "r-secret", doc); err != nil || code != http.StatusForbidden {
			t.Errorf("certificate with a read token writing: %d %v, want 403", code, err)
		}
		if code, _, _ := apiCall(&http.Client{Timeout: 10 * time.Second}, http.MethodGet, "http://"+d.api+"/healthz", "", ""); code == http.StatusOK {
			t.Errorf("plain HTTP answered 200 on the TLS port")
		}
	})

	t.Run("plain TCP refused", func(t *testing.T) {
		before := d.logCount("openflow TLS handshake failed")
		plain.SetController(t, "tcp:"+d.openflow)
		testenv.Eventually(t, 60*time.Second, "two refused plain-TCP attempts", func() bool {
			return d.logCount("openflow TLS handshake failed") >= before+2
		})
		if c, _ := bridge(plain.DPID); c {
			t.Errorf("plain-TCP bridge connected")
		}
		if ovsConnected(t, "tcp:"+d.openflow) {
			t.Errorf("OVS reports the plain-TCP target connected")
		}
		plain.SetController(t) // stop its retries
	})

	metrics := func() string {
		code, body, err := apiCall(nocClient, http.MethodGet, api+"/metrics", "r-secret", "")
		if err != nil || code != http.StatusOK {
			t.Fatalf("GET /metrics: %d %v", code, err)
		}
		return body
	}
	expiry := func(channel, file, value string) string {
		return fmt.Sprintf("op25b_certificate_expiry_timestamp_seconds{channel=%q,file=%q} %s\n", channel, file, value)
	}
	t.Run("certificate expiry metrics", func(t *testing.T) {
		text := metrics()
		for _, f := range []struct{ channel, file string }{
			{"openflow", ctl.Cert}, {"openflow", pki.CA}, {"api", apiCert.Cert}, {"api", pki.CA}, {"etcd", etcdClient.Cert}, {"etcd", pki.CA},
		} {
			if w := expiry(f.channel, f.file, leafExpiry(t, f.file)); !strings.Contains(text, w) {
				t.Errorf("metrics lack %s", w)
			}
		}
	})

	t.Run("SIGHUP rotates certificates without dropping the switch", func(t *testing.T) {
		connects := d.logCount(`msg="switch connected" remote`)
		oldSerial := leafSerial(t, ctl.Cert)
		oldExpiry := leafExpiry(t, ctl.Cert)
		// X.509 times have whole seconds: wait so that the new one expires later.
		time.Sleep(1100 * time.Millisecond)
		pki.Issue(t, "controller") // new key and certificate, same files
		pki.Issue(t, "api")
		newSerial := leafSerial(t, ctl.Cert)
		if err := d.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		testenv.Eventually(t, 30*time.Second, "reload logged", func() bool {
			return d.logCount("openflow certificates reloaded") == 1 && d.logCount("api certificates reloaded") == 1 &&
				d.logCount("token file reloaded") == 1 && d.logCount("etcd certificates reloaded") == 1
		})
		conn, err := tls.Dial("tcp", d.openflow, &tls.Config{RootCAs: pki.Pool(), ServerName: "127.0.0.1",
			Certificates: []tls.Certificate{sw.TLSCert(t)}})
		if err != nil {
			t.Fatalf("new OpenFlow TLS connection after reload: %v", err)
		}
		got := conn.ConnectionState().PeerCertificates[0].SerialNumber.String()
		conn.Close()
		if got != newSerial || got == oldSerial {
			t.Errorf("OpenFlow serves serial %s after SIGHUP, want the new %s (old %s)", got, newSerial, oldSerial)
		}
		resp, err := nocClient.Get(api + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if s := resp.TLS.PeerCertificates[0].SerialNumber.String(); s != leafSerial(t, apiCert.Cert) {
			t.Errorf("API serves serial %s after SIGHUP, want the new one", s)
		}
		if c, _ := bridge(br.DPID); !c || !ovsConnected(t, tlsTarget) {
			t.Errorf("switch session dropped by the reload")
		}
		if n := d.logCount(`msg="switch disconnected"`); n != 0 {
			t.Errorf("%d switch disconnections across the reload", n)
		}
		if n := d.logCount(`msg="switch connected" remote`); n != connects {
			t.Errorf("switch reconnected across the reload (%d connects, was %d)", n, connects)
		}
		if newExpiry := leafExpiry(t, ctl.Cert); newExpiry == oldExpiry || !strings.Contains(metrics(), expiry("openflow", ctl.Cert, newExpiry)) {
			t.Errorf("after SIGHUP the metrics lack the new certificate's expiry %s (old %s)", newExpiry, oldExpiry)
		}
	})

	t.Run("half-open and slow-loris connections do not stop service", func(t *testing.T) {
		// Slow-loris: a TLS record header trickled one byte at a time on
		// each port, and a full TLS client trickling HTTP headers.
		stop := make(chan struct{})
		var wg sync.WaitGroup
		defer func() { close(stop); wg.Wait() }()
		trickle := func(c net.Conn, data []byte) {
			defer wg.Done()
			defer c.Close()
			for _, b := range data {
				select {
				case <-stop:
					return
				case <-time.After(500 * time.Millisecond):
				}
				if _, err := c.Write([]byte{b}); err != nil {
					return
				}
			}
		}
		for i := 0; i < 5; i++ {
			for _, addr := range []string{d.openflow, d.api} {
				c, err := net.Dial("tcp", addr)
				if err != nil {
					t.Fatal(err)
				}
				wg.Add(1)
				go trickle(c, bytes.Repeat([]byte{0x16, 0x03, 0x01, 0x02, 0x00}, 40))
			}
			c, err := tls.Dial("tcp", d.api, &tls.Config{RootCAs: pki.Pool(), ServerName: "127.0.0.1",
				Certificates: []tls.Certificate{noc.TLSCert(t)}})
			if err != nil {
				t.Fatalf("slow-loris TLS client: %v", err)
			}
			wg.Add(1)
			go trickle(c, []byte("GET /v1/status HTTP/1.1\r\nHost: x\r\nX-Slow: "+strings.Repeat("a", 200)))
		}

		var idle []net.Conn
		defer func() {
			for _, c := range idle {
				c.Close()
			}
		}()
		for _, addr := range []string{d.openflow, d.api} {
			for i := 0; i < 200; i++ {
				c, err := net.DialTimeout("tcp", addr, 10*time.Second)
				if err != nil {
					t.Fatalf("idle connection %d to %s: %v", i, addr, err)
				}
				idle = append(idle, c)
			}
		}
		start := time.Now()
		late.SetController(t, tlsTarget)
		testenv.Eventually(t, 120*time.Second, "the new switch reconciled (daemon log)", func() bool {
			return d.logCount("peer_cn=switch dpid="+string(late.DPID)+" revision=") > 0 // the "reconciled" line
		})
		reconciled := time.Since(start)
		testenv.Eventually(t, 120*time.Second, "a new switch connected and applied under abuse", func() bool {
			c, rev := bridge(late.DPID)
			return c && rev >= put.Revision
		})
		t.Logf("with 400 idle and 15 slow-loris connections open (limits 64/32, handshake timeout 2s): new switch reconciled %s after set-controller, seen applied through the API after %s",
			reconciled.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
		if got := late.Trace(t, "tcp,in_port=1,nw_src=10.1.2.3,nw_dst=203.0.113.9,tp_dst=25"); got != "drop" {
			t.Errorf("SMTP not dropped on the bridge that connected under abuse: %s", got)
		}
		if c, _ := bridge(br.DPID); !c {
			t.Errorf("the established switch lost its session under abuse")
		}
		if d.logCount("openflow connection limit reached") == 0 || d.logCount("api connection limit reached") == 0 {
			t.Errorf("the connection limits were never reached: the test did not exercise them")
		}
		// Every idle connection is closed by op25bd (bounded in time).
		for _, c := range idle {
			if err := waitServerClosed(c); err != nil {
				t.Fatal(err)
			}
		}
	})
}

// A switch whose certificate is signed by a CA the controller does not
// trust is refused by the controller (the controller's own certificate is
// fine for OVS, so the refusal is op25bd's).
func TestTLSSwitchFromAnotherCARefused(t *testing.T) {
	testenv.RequireOVS(t)
	switches := testenv.NewPKI(t, "switches")
	other := testenv.NewPKI(t, "other-switches")
	sw := other.Issue(t, "intruder")
	ctl := switches.Issue(t, "controller")
	// OVS trusts the CA of the controller's certificate; op25bd trusts
	// only "switches", which did not sign the intruder.
	ca := filepath.Join(t.TempDir(), "ovs-ca.pem")
	b, _ := os.ReadFile(switches.CA)
	if err := os.WriteFile(ca, b, 0o644); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, "tls-b", "--data-dir", t.TempDir(),
		"--openflow-tls-cert", ctl.Cert, "--openflow-tls-key", ctl.Key, "--openflow-tls-ca", switches.CA)
	testenv.SetOVSSSL(t, sw.Key, sw.Cert, ca)
	br := testenv.NewBridge(t, "")
	target := "ssl:" + d.openflow
	br.SetController(t, target)
	testenv.Eventually(t, 60*time.Second, "two refused handshakes", func() bool {
		return d.logCount("openflow TLS handshake failed") >= 2
	})
	if !strings.Contains(d.logTail(), "certificate signed by unknown authority") {
		t.Errorf("refusal does not say why:\n%s", d.logTail())
	}
	if d.logCount(`msg="switch connected"`) != 0 || ovsConnected(t, target) {
		t.Errorf("switch with a certificate from another CA connected")
	}
	br.SetController(t)
}

// Without TLS op25bd still serves plain TCP but says so at start.
func TestPlainOpenFlowWarns(t *testing.T) {
	d := startDaemon(t, "plain", "--data-dir", t.TempDir())
	if d.logCount("OpenFlow over plain TCP") != 1 {
		t.Errorf("no plain-TCP warning at start:\n%s", d.logTail())
	}
}

// The lab CA of docs/operations.md (scripts/lab-ca.sh, Debian's openssl) makes
// certificates op25bd accepts: keys 0600, the controller serves OpenFlow
// and the API with them, a switch and a NOC client certificate pass.
func TestLabCAScript(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("openssl is required under CI: %v", err)
		}
		t.Skip("openssl not installed")
	}
	dir := filepath.Join(t.TempDir(), "lab-ca")
	if out, err := exec.Command("../../scripts/lab-ca.sh", dir, "ctl.lab.example", "192.0.2.10").CombinedOutput(); err != nil {
		t.Fatalf("lab-ca.sh: %v\n%s", err, out)
	}
	f := func(name string) string { return filepath.Join(dir, name) }
	for _, k := range []string{"controller", "switch", "etcd", "op25bd", "noc"} {
		fi, err := os.Stat(f(k + "-key.pem"))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s-key.pem has mode %#o, want 0600", k, fi.Mode().Perm())
		}
	}
	tokens := f("tokens")
	if err := os.WriteFile(tokens, []byte("noc s3cret read\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, "lab-ca", "--data-dir", t.TempDir(),
		"--openflow-tls-cert", f("controller-cert.pem"), "--openflow-tls-key", f("controller-key.pem"), "--openflow-tls-ca", f("ca.pem"),
		"--api-tls-cert", f("controller-cert.pem"), "--api-tls-key", f("controller-key.pem"), "--api-tls-client-ca", f("ca.pem"),
		"--api-token-file", tokens)
	ca, err := os.ReadFile(f("ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	pair := func(name string) tls.Certificate {
		c, err := tls.LoadX509KeyPair(f(name+"-cert.pem"), f(name+"-key.pem"))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	conn, err := tls.Dial("tcp", d.openflow, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", Certificates: []tls.Certificate{pair("switch")}})
	if err != nil {
		t.Fatalf("switch certificate from lab-ca.sh: %v", err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	hello := make([]byte, 8)
	if _, err := io.ReadFull(conn, hello); err != nil || hello[0] != 0x04 || hello[1] != 0 {
		t.Errorf("no OpenFlow 1.3 HELLO over TLS: % x %v", hello, err)
	}
	conn.Close()
	c := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
		RootCAs: pool, ServerName: "ctl.lab.example", Certificates: []tls.Certificate{pair("noc")}}}}
	if code, body, err := apiCall(c, http.MethodGet, "https://"+d.api+"/v1/status", "s3cret", ""); err != nil || code != http.StatusOK {
		t.Errorf("NOC client from lab-ca.sh: %d %s %v", code, body, err)
	}

	// op25bctl speaks HTTPS with the same files.
	ctl := filepath.Join(t.TempDir(), "op25bctl")
	if out, err := exec.Command("go", "build", "-o", ctl, "../op25bctl").CombinedOutput(); err != nil {
		t.Fatalf("build op25bctl: %v\n%s", err, out)
	}
	args := []string{"--server", "https://" + d.api, "--token", "s3cret", "--ca", f("ca.pem")}
	if out, err := exec.Command(ctl, append(args, "--cert", f("noc-cert.pem"), "--key", f("noc-key.pem"), "status")...).CombinedOutput(); err != nil {
		t.Errorf("op25bctl status over HTTPS with a client certificate: %v\n%s", err, out)
	}
	if out, err := exec.Command(ctl, append(args, "status")...).CombinedOutput(); err == nil {
		t.Errorf("op25bctl without a client certificate succeeded:\n%s", out)
	}
}

// With --etcd-cert/--etcd-key/--etcd-ca and no --etcd-endpoints the
// embedded etcd serves https:// with client-certificate authentication and
// op25bd's store works through it.
func TestEmbeddedEtcdTLS(t *testing.T) {
	pki := testenv.NewPKI(t, "embedded")
	me := pki.Issue(t, "op25bd")
	d := startDaemon(t, "embedded-tls", "--data-dir", t.TempDir(),
		"--etcd-cert", me.Cert, "--etcd-key", me.Key, "--etcd-ca", pki.CA)
	testenv.Eventually(t, 60*time.Second, "/readyz 200 through the TLS etcd", func() bool {
		return httpCode("http://"+d.api+"/readyz") == http.StatusOK
	})
	if !strings.HasPrefix(d.etcd, "https://") {
		t.Fatalf("embedded etcd endpoint %q is not https://", d.etcd)
	}
	putConfig(t, d.api, `{"pools":[],"relays":[],"destinations":[],"services":[],"bridges":[]}`)
	anon := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pki.Pool()}}}
	if resp, err := anon.Get(d.etcd + "/version"); err == nil {
		resp.Body.Close()
		t.Errorf("embedded etcd answered a client without certificate: %s", resp.Status)
	}
	client := httpsClient(t, pki, &me)
	if code, body, err := apiCall(client, http.MethodGet, d.etcd+"/version", "", ""); err != nil || code != http.StatusOK {
		t.Errorf("embedded etcd with a client certificate: %d %s %v", code, body, err)
	}
}
