package testenv

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// PKI is a certificate authority made in a test with crypto/x509: a CA
// certificate in CA (PEM file) and Issue for leaf certificates signed by
// it. Files live in the test's temporary directory; keys are mode 0600.
type PKI struct {
	Name string
	Dir  string
	CA   string // path of the CA certificate (PEM)

	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

// CertFiles are the PEM files of one issued certificate.
type CertFiles struct {
	Cert, Key string
}

var serial atomic.Int64

// NewPKI creates a CA named name (its subject CN) in a new temporary
// directory.
func NewPKI(t testing.TB, name string) *PKI {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano() + serial.Add(1)),
		Subject:               pkix.Name{CommonName: name, Organization: []string{"op25b test"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	p := &PKI{Name: name, Dir: t.TempDir(), cert: cert, key: key}
	p.CA = filepath.Join(p.Dir, name+"-ca.pem")
	writePEM(t, p.CA, "CERTIFICATE", der, 0o644)
	return p
}

// Issue signs a certificate with common name cn, usable both as a server
// (SANs 127.0.0.1, ::1 and localhost) and as a client, and writes it with
// its key under the PKI's directory.
func (p *PKI) Issue(t testing.TB, cn string) CertFiles {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano() + serial.Add(1)),
		Subject:      pkix.Name{CommonName: cn, Organization: []string{"op25b test"}},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		DNSNames:     []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.cert, &key.PublicKey, p.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	f := CertFiles{Cert: filepath.Join(p.Dir, cn+"-cert.pem"), Key: filepath.Join(p.Dir, cn+"-key.pem")}
	writePEM(t, f.Cert, "CERTIFICATE", der, 0o644)
	writePEM(t, f.Key, "PRIVATE KEY", kder, 0o600)
	return f
}

// TLSCert loads f as a tls.Certificate (for a Go client in a test).
func (f CertFiles) TLSCert(t testing.TB) tls.Certificate {
	t.Helper()
	c, err := tls.LoadX509KeyPair(f.Cert, f.Key)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Pool returns a pool holding only this CA.
func (p *PKI) Pool() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(p.cert)
	return pool
}

func writePEM(t testing.TB, path, typ string, der []byte, mode os.FileMode) {
	t.Helper()
	data := pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
	// Write to a temporary name and rename so a concurrent reader (a
	// reload) never sees half a file.
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(tmp, mode); err != nil { // umask may have narrowed it
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// SetOVSSSL points the running ovs-vswitchd at key, cert and CA for its
// ssl: controller targets (`ovs-vsctl set-ssl`) and restores the previous
// setting (or none) when the test ends. The setting is global to the OVS
// instance: keep every test that calls this in one package, run serially.
func SetOVSSSL(t testing.TB, key, cert, ca string) {
	t.Helper()
	RequireOVS(t)
	prev := Run(t, "ovs-vsctl", "--timeout=10", "get-ssl")
	var pk, pc, pca string
	for _, line := range strings.Split(prev, "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		switch strings.TrimSpace(k) {
		case "Private key":
			pk = strings.TrimSpace(v)
		case "Certificate":
			pc = strings.TrimSpace(v)
		case "CA Certificate":
			pca = strings.TrimSpace(v)
		}
	}
	t.Cleanup(func() {
		if pk == "" || pc == "" || pca == "" {
			_, _ = RunErr("ovs-vsctl", "--timeout=10", "del-ssl")
			return
		}
		_, _ = RunErr("ovs-vsctl", "--timeout=10", "set-ssl", pk, pc, pca)
	})
	Run(t, "ovs-vsctl", "--timeout=10", "set-ssl", key, cert, ca)
}

// EtcdTLS starts Debian's etcd (/usr/bin/etcd) as a one-member cluster
// serving clients only over TLS with client-certificate authentication:
// its server certificate and the clients' must be signed by pki. It
// returns the https:// client endpoint; the process is killed at cleanup.
func EtcdTLS(t testing.TB, pki *PKI) string {
	t.Helper()
	if _, err := os.Stat(debianEtcd); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("etcd is required under CI: %v", err)
		}
		t.Skipf("etcd not installed: %v", err)
	}
	srv := pki.Issue(t, "etcd-server")
	dir := t.TempDir()
	ports, err := freeLoopbackPorts(2)
	if err != nil {
		t.Fatal(err)
	}
	client := fmt.Sprintf("https://127.0.0.1:%d", ports[0])
	peer := fmt.Sprintf("http://127.0.0.1:%d", ports[1])
	logPath := filepath.Join(dir, "etcd.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(debianEtcd,
		"--name", "tls", "--data-dir", filepath.Join(dir, "data"),
		"--listen-client-urls", client, "--advertise-client-urls", client,
		"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
		"--initial-cluster", "tls="+peer, "--initial-cluster-state", "new",
		"--cert-file", srv.Cert, "--key-file", srv.Key,
		"--trusted-ca-file", pki.CA, "--client-cert-auth",
		"--logger", "zap", "--log-level", "warn")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("start etcd: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); logf.Close(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("etcd (TLS) log:\n%s", etcdLogTail(string(b), 4000))
		}
	})
	// Wait until the TLS port answers a handshake with a client certificate.
	me := pki.Issue(t, "etcd-probe")
	cfg := &tls.Config{RootCAs: pki.Pool(), Certificates: []tls.Certificate{me.TLSCert(t)}, ServerName: "127.0.0.1"}
	deadline := time.Now().Add(60 * time.Second)
	for {
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 2 * time.Second}, "tcp", strings.TrimPrefix(client, "https://"), cfg)
		if err == nil {
			c.Close()
			return client
		}
		select {
		case <-exited:
			b, _ := os.ReadFile(logPath)
			t.Fatalf("etcd (TLS) exited: %s", etcdLogTail(string(b), 4000))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("etcd (TLS) not serving after 60s: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
