package tlsconfig

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/op25b/op25b/internal/testenv"
)

func TestKeyPermissionsRefused(t *testing.T) {
	pki := testenv.NewPKI(t, "perm")
	f := pki.Issue(t, "server")
	for _, mode := range []os.FileMode{0o640, 0o604, 0o644, 0o660, 0o610} {
		if err := os.Chmod(f.Key, mode); err != nil {
			t.Fatal(err)
		}
		_, err := Load(Files{Cert: f.Cert, Key: f.Key}, true)
		if !errors.Is(err, ErrKeyPermissions) {
			t.Fatalf("mode %#o: err = %v, want ErrKeyPermissions", mode, err)
		}
		if msg := err.Error(); !strings.Contains(msg, f.Key) {
			t.Errorf("mode %#o: error %q does not name the file", mode, msg)
		}
	}
	if err := os.Chmod(f.Key, 0o640); err != nil {
		t.Fatal(err)
	}
	_, err := Load(Files{Cert: f.Cert, Key: f.Key}, true)
	if want := "has mode 0640"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("error %v does not say %q", err, want)
	}
	for _, mode := range []os.FileMode{0o600, 0o400} {
		if err := os.Chmod(f.Key, mode); err != nil {
			t.Fatal(err)
		}
		if _, err := Load(Files{Cert: f.Cert, Key: f.Key}, true); err != nil {
			t.Errorf("mode %#o refused: %v", mode, err)
		}
	}
}

func TestLoadErrors(t *testing.T) {
	pki := testenv.NewPKI(t, "errs")
	f := pki.Issue(t, "server")
	other := pki.Issue(t, "other")
	notPEM := pki.Dir + "/not.pem"
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name  string
		files Files
		need  bool
		want  string
	}{
		{"cert without key", Files{Cert: f.Cert}, false, "give both or neither"},
		{"required", Files{CA: pki.CA}, true, "required"},
		{"missing key", Files{Cert: f.Cert, Key: pki.Dir + "/nope.pem"}, true, "nope.pem"},
		{"mismatched key", Files{Cert: f.Cert, Key: other.Key}, true, "other-key.pem"},
		{"CA not PEM", Files{Cert: f.Cert, Key: f.Key, CA: notPEM}, true, "not.pem: no PEM CERTIFICATE"},
		{"missing CA", Files{Cert: f.Cert, Key: f.Key, CA: pki.Dir + "/ca-nope.pem"}, true, "ca-nope.pem"},
	}
	for _, c := range cases {
		_, err := Load(c.files, c.need)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want it to mention %q", c.name, err, c.want)
		}
	}
}

// handshake runs a TLS handshake over a pipe and returns the client's view.
func handshake(t *testing.T, server, client *tls.Config) (tls.ConnectionState, error, error) {
	t.Helper()
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	_ = a.SetDeadline(time.Now().Add(10 * time.Second))
	_ = b.SetDeadline(time.Now().Add(10 * time.Second))
	srvErr := make(chan error, 1)
	go func() {
		s := tls.Server(a, server)
		err := s.Handshake()
		if err == nil {
			// TLS 1.3 clients learn of a refused certificate on first read.
			_, err = s.Write([]byte("x"))
		}
		srvErr <- err
		if err != nil {
			s.Close()
		}
	}()
	c := tls.Client(b, client)
	cliErr := c.Handshake()
	if cliErr == nil {
		_, cliErr = io.ReadFull(c, make([]byte, 1))
	}
	return c.ConnectionState(), <-srvErr, cliErr
}

func TestMutualTLSAndReload(t *testing.T) {
	pki := testenv.NewPKI(t, "lab")
	foreign := testenv.NewPKI(t, "foreign")
	srv := pki.Issue(t, "controller")
	sw := pki.Issue(t, "switch")
	bad := foreign.Issue(t, "intruder")
	h, err := Load(Files{Cert: srv.Cert, Key: srv.Key, CA: pki.CA}, true)
	if err != nil {
		t.Fatal(err)
	}
	client := func(c testenv.CertFiles) *tls.Config {
		cfg := &tls.Config{RootCAs: pki.Pool(), ServerName: "127.0.0.1"}
		if c.Cert != "" {
			cfg.Certificates = []tls.Certificate{c.TLSCert(t)}
		}
		return cfg
	}
	if _, s, c := handshake(t, h.ServerConfig(), client(sw)); s != nil || c != nil {
		t.Fatalf("switch signed by the CA refused: server %v, client %v", s, c)
	}
	if _, s, _ := handshake(t, h.ServerConfig(), client(bad)); s == nil {
		t.Errorf("certificate from another CA accepted")
	}
	if _, s, _ := handshake(t, h.ServerConfig(), client(testenv.CertFiles{})); s == nil {
		t.Errorf("client without certificate accepted")
	}

	// Rotation: a new server certificate is served after Reload; a broken
	// file keeps the old one.
	before := h.Leaf().SerialNumber
	srv2 := pki.Issue(t, "controller")
	if err := h.Reload(); err != nil {
		t.Fatal(err)
	}
	st, s, c := handshake(t, h.ServerConfig(), client(sw))
	if s != nil || c != nil {
		t.Fatalf("after reload: %v %v", s, c)
	}
	if got := st.PeerCertificates[0].SerialNumber; got.Cmp(before) == 0 || got.Cmp(h.Leaf().SerialNumber) != 0 {
		t.Errorf("served serial %v after reload, want the new %v", got, h.Leaf().SerialNumber)
	}
	if err := os.WriteFile(srv.Cert, []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := h.Reload(); err == nil {
		t.Fatal("reload of a broken certificate succeeded")
	}
	if _, s, c := handshake(t, h.ServerConfig(), client(sw)); s != nil || c != nil {
		t.Errorf("failed reload broke handshakes: %v %v", s, c)
	}

	// The CA is reloaded too: trusting the foreign CA instead admits its
	// switches and refuses the old ones.
	srv2 = pki.Issue(t, "controller")
	h2, err := Load(Files{Cert: srv2.Cert, Key: srv2.Key, CA: pki.CA}, true)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := os.ReadFile(foreign.CA)
	if err := os.WriteFile(pki.CA, ca, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := h2.Reload(); err != nil {
		t.Fatal(err)
	}
	if _, s, _ := handshake(t, h2.ServerConfig(), client(bad)); s != nil {
		t.Errorf("switch of the newly trusted CA refused: %v", s)
	}
	if _, s, _ := handshake(t, h2.ServerConfig(), client(sw)); s == nil {
		t.Errorf("switch of the no longer trusted CA accepted")
	}
}

func TestClientConfigVerifiesServer(t *testing.T) {
	pki := testenv.NewPKI(t, "etcd")
	foreign := testenv.NewPKI(t, "other")
	srv := pki.Issue(t, "etcd-server")
	impostor := foreign.Issue(t, "impostor")
	me := pki.Issue(t, "op25bd")
	cli, err := Load(Files{Cert: me.Cert, Key: me.Key, CA: pki.CA}, false)
	if err != nil {
		t.Fatal(err)
	}
	serverCfg := func(f testenv.CertFiles) *tls.Config {
		return &tls.Config{Certificates: []tls.Certificate{f.TLSCert(t)}, ClientCAs: pki.Pool(), ClientAuth: tls.RequireAndVerifyClientCert}
	}
	cc := cli.ClientConfig()
	cc.ServerName = "127.0.0.1"
	if _, s, c := handshake(t, serverCfg(srv), cc); s != nil || c != nil {
		t.Fatalf("good server: server %v, client %v", s, c)
	}
	cc = cli.ClientConfig()
	cc.ServerName = "127.0.0.1"
	if _, _, c := handshake(t, serverCfg(impostor), cc); c == nil || !strings.Contains(c.Error(), "verify server certificate") {
		t.Errorf("server of another CA: client err = %v", c)
	}
	cc = cli.ClientConfig()
	cc.ServerName = "etcd.example"
	if _, _, c := handshake(t, serverCfg(srv), cc); c == nil {
		t.Errorf("wrong server name accepted")
	}
}

// selfSigned returns the PEM of a self-signed CA certificate valid until
// notAfter (truncated to seconds, as X.509 stores it).
func selfSigned(t *testing.T, cn string, notAfter time.Time) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: notAfter,
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// Expiries: one entry per file in use, the earliest NotAfter of the file's
// certificates; a reload changes them, a failed reload keeps them.
func TestExpiries(t *testing.T) {
	soon := time.Now().Add(10 * 24 * time.Hour).Truncate(time.Second).UTC()
	late := time.Now().Add(100 * 24 * time.Hour).Truncate(time.Second).UTC()
	ca := filepath.Join(t.TempDir(), "bundle.pem")
	if err := os.WriteFile(ca, append(selfSigned(t, "late", late), selfSigned(t, "soon", soon)...), 0o644); err != nil {
		t.Fatal(err)
	}
	pki := testenv.NewPKI(t, "lab")
	srv := pki.Issue(t, "controller")
	h, err := Load(Files{Cert: srv.Cert, Key: srv.Key, CA: ca}, true)
	if err != nil {
		t.Fatal(err)
	}
	got := h.Expiries()
	if len(got) != 2 || got[0].File != srv.Cert || !got[0].NotAfter.Equal(h.Leaf().NotAfter) ||
		got[1].File != ca || !got[1].NotAfter.Equal(soon) {
		t.Fatalf("expiries = %+v, want %s at the leaf's NotAfter %s and %s at the bundle's earliest %s", got, srv.Cert, h.Leaf().NotAfter, ca, soon)
	}
	if err := os.WriteFile(ca, selfSigned(t, "late", late), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := h.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := h.Expiries(); !got[1].NotAfter.Equal(late) {
		t.Errorf("after reload the CA expires %s, want %s", got[1].NotAfter, late)
	}
	if err := os.WriteFile(ca, []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := h.Reload(); err == nil {
		t.Fatal("reload of a broken CA succeeded")
	}
	if got := h.Expiries(); len(got) != 2 || !got[1].NotAfter.Equal(late) {
		t.Errorf("a failed reload changed the expiries: %+v", got)
	}
}
