// Package tlsconfig loads the TLS material of op25b's three channels
// (OpenFlow to the switches, the REST API, the etcd client) and keeps it
// reloadable.
//
// It sits at the edge of the pipeline: cmd/op25bd loads a Holder per
// channel at start, hands its ServerConfig or ClientConfig to the listener
// or client, and calls Reload on SIGHUP. The configs read the current
// certificate and CA at every handshake (tls.Config.GetConfigForClient,
// GetClientCertificate, VerifyConnection), so a reload changes what new
// connections see and never touches established ones: a switch session
// survives a certificate rotation.
//
// Private keys readable by group or others are refused, as ssh does for
// its keys: a key that any local user can read is not a secret.
package tlsconfig

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"time"
)

// Files names the PEM files of one channel. Cert and Key are this side's
// certificate (chain) and private key; CA holds the certificates that sign
// the peers (for a server: the clients that must present one; for a client:
// the servers). CA may be empty where the channel allows it.
type Files struct {
	Cert, Key, CA string
}

// Set reports whether any file is named.
func (f Files) Set() bool { return f.Cert != "" || f.Key != "" || f.CA != "" }

// ErrKeyPermissions is wrapped by the error for a private key file that
// group or others may read.
var ErrKeyPermissions = errors.New("private key readable by group or others")

// CheckKeyFile refuses a private key file whose mode lets group or others
// read, write or execute it (mode & 0o077 != 0). The error names the file
// and the mode and says how to fix it.
func CheckKeyFile(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("private key: %w", err)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return fmt.Errorf("%s has mode %#o: %w (run chmod 600 %s)", path, perm, ErrKeyPermissions, path)
	}
	return nil
}

// material is one consistent load of a channel's files.
type material struct {
	cert    *tls.Certificate // nil when no Cert/Key
	pool    *x509.CertPool   // nil when no CA
	expires []Expiry         // of cert (its chain) and of the CA file
}

// Expiry is when a certificate file in use stops being valid: the
// earliest NotAfter of the certificates it holds (a chain, or a CA
// bundle), so that an intermediate or one CA of a bundle expiring first
// is not hidden behind a longer-lived leaf.
type Expiry struct {
	File     string
	NotAfter time.Time
}

// Holder owns a channel's current material. Its methods are safe for
// concurrent use; handshakes read the material with one atomic load.
type Holder struct {
	files Files
	cur   atomic.Pointer[material]
}

// Load reads files once. Cert and Key go together; with needCert they are
// required. It fails, naming the file, on a missing or unreadable file,
// bad PEM, a key that does not match the certificate, or a key file with
// loose permissions.
func Load(files Files, needCert bool) (*Holder, error) {
	if (files.Cert == "") != (files.Key == "") {
		return nil, fmt.Errorf("certificate %q and key %q: give both or neither", files.Cert, files.Key)
	}
	if needCert && files.Cert == "" {
		return nil, errors.New("a certificate and its key are required")
	}
	h := &Holder{files: files}
	if err := h.Reload(); err != nil {
		return nil, err
	}
	return h, nil
}

// Reload reads the files again. On any error the previous material stays
// in use (a half-written certificate must not break new handshakes).
func (h *Holder) Reload() error {
	var m material
	if h.files.Cert != "" {
		if err := CheckKeyFile(h.files.Key); err != nil {
			return err
		}
		c, err := tls.LoadX509KeyPair(h.files.Cert, h.files.Key)
		if err != nil {
			return fmt.Errorf("load certificate %s with key %s: %w", h.files.Cert, h.files.Key, err)
		}
		m.cert = &c
		var first time.Time
		for i, der := range c.Certificate {
			x, err := x509.ParseCertificate(der)
			if err != nil {
				return fmt.Errorf("certificate %s: certificate %d: %w", h.files.Cert, i+1, err)
			}
			if first.IsZero() || x.NotAfter.Before(first) {
				first = x.NotAfter
			}
		}
		m.expires = append(m.expires, Expiry{File: h.files.Cert, NotAfter: first})
	}
	if h.files.CA != "" {
		pool, notAfter, err := loadPool(h.files.CA)
		if err != nil {
			return err
		}
		m.pool = pool
		m.expires = append(m.expires, Expiry{File: h.files.CA, NotAfter: notAfter})
	}
	h.cur.Store(&m)
	return nil
}

// Expiries returns the expiry of each file in use (certificate, then CA),
// as of the last successful load: after a failed reload, the files still
// in use are the previous ones.
func (h *Holder) Expiries() []Expiry {
	return append([]Expiry(nil), h.cur.Load().expires...)
}

// Leaf returns the current certificate's leaf (nil without one), for logs
// and tests.
func (h *Holder) Leaf() *x509.Certificate {
	m := h.cur.Load()
	if m.cert == nil || len(m.cert.Certificate) == 0 {
		return nil
	}
	leaf, err := x509.ParseCertificate(m.cert.Certificate[0])
	if err != nil {
		return nil
	}
	return leaf
}

// loadPool reads a CA file and returns its pool and the earliest expiry of
// its certificates.
func loadPool(path string) (*x509.CertPool, time.Time, error) {
	var first time.Time
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, first, fmt.Errorf("CA: %w", err)
	}
	pool := x509.NewCertPool()
	n := 0
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, first, fmt.Errorf("CA %s: certificate %d: %w", path, n+1, err)
		}
		pool.AddCert(c)
		if first.IsZero() || c.NotAfter.Before(first) {
			first = c.NotAfter
		}
		n++
	}
	if n == 0 {
		return nil, first, fmt.Errorf("CA %s: no PEM CERTIFICATE block", path)
	}
	return pool, first, nil
}

// ServerConfig is the config of a listener. With a CA, clients must
// present a certificate signed by it (mutual TLS, as OVS does for its
// ssl: targets with set-ssl); without one, no client certificate is asked.
// Each handshake uses the material current at that moment.
func (h *Holder) ServerConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			m := h.cur.Load()
			c := &tls.Config{MinVersion: tls.VersionTLS12}
			if m.cert != nil {
				c.Certificates = []tls.Certificate{*m.cert}
			}
			if m.pool != nil {
				c.ClientCAs = m.pool
				c.ClientAuth = tls.RequireAndVerifyClientCert
			}
			return c, nil
		},
	}
}

// ClientConfig is the config of a client (op25bd's etcd client). Without a
// CA the system roots verify the server. The certificate (when given) and
// the CA are read at each handshake, so a reload applies to the next
// connection. Verification is the standard chain and host name check,
// done in VerifyConnection because tls.Config.RootCAs cannot change.
func (h *Holder) ClientConfig() *tls.Config {
	c := &tls.Config{MinVersion: tls.VersionTLS12}
	if h.cur.Load().cert != nil {
		c.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return h.cur.Load().cert, nil
		}
	}
	if h.cur.Load().pool == nil {
		return c
	}
	// Safe only because VerifyConnection below does the full check
	// (chain to the current CA + server name) that it replaces.
	c.InsecureSkipVerify = true
	c.VerifyConnection = func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return errors.New("server presented no certificate")
		}
		opts := x509.VerifyOptions{
			Roots:         h.cur.Load().pool,
			DNSName:       cs.ServerName,
			Intermediates: x509.NewCertPool(),
			KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		}
		for _, ic := range cs.PeerCertificates[1:] {
			opts.Intermediates.AddCert(ic)
		}
		if _, err := cs.PeerCertificates[0].Verify(opts); err != nil {
			return fmt.Errorf("verify server certificate against %s: %w", h.files.CA, err)
		}
		return nil
	}
	return c
}
