package main

import (
	"fmt"

	"github.com/op25b/op25b/api"
	"github.com/op25b/op25b/internal/tlsconfig"
)

// certificates holds the TLS material of each channel; nil means plain TCP.
type certificates struct {
	openflow, api, etcd *tlsconfig.Holder
}

// loadCertificates reads every configured certificate, key and CA once,
// refusing keys readable by group or others.
func loadCertificates(o options) (certificates, error) {
	var c certificates
	var err error
	if o.OpenFlowTLS.Set() {
		if c.openflow, err = tlsconfig.Load(o.OpenFlowTLS, true); err != nil {
			return c, fmt.Errorf("openflow TLS: %w", err)
		}
	}
	if o.APITLS.Set() {
		if c.api, err = tlsconfig.Load(o.APITLS, true); err != nil {
			return c, fmt.Errorf("api TLS: %w", err)
		}
	}
	if o.EtcdTLS.Set() {
		if c.etcd, err = tlsconfig.Load(o.EtcdTLS, false); err != nil {
			return c, fmt.Errorf("etcd TLS: %w", err)
		}
	}
	return c, nil
}

// Certificates lists every certificate and CA file in use with its expiry
// (api.CertificateSource, for op25b_certificate_expiry_timestamp_seconds).
// It reads the holders' current material, so after a SIGHUP it reports
// the reloaded files.
func (c certificates) Certificates() []api.CertificateExpiry {
	var out []api.CertificateExpiry
	for _, ch := range []struct {
		name string
		h    *tlsconfig.Holder
	}{{"openflow", c.openflow}, {"api", c.api}, {"etcd", c.etcd}} {
		if ch.h == nil {
			continue
		}
		for _, e := range ch.h.Expiries() {
			out = append(out, api.CertificateExpiry{Channel: ch.name, File: e.File, NotAfter: e.NotAfter})
		}
	}
	return out
}

// reloaders lists what SIGHUP re-reads. New TLS connections use reloaded
// material; established ones (switch sessions, etcd streams) are kept.
func (c certificates) reloaders(tokens *api.TokenFile) []reloadable {
	var r []reloadable
	if tokens != nil {
		r = append(r, reloadable{"token file", tokens.Reload})
	}
	for _, h := range []struct {
		name string
		h    *tlsconfig.Holder
	}{{"openflow certificates", c.openflow}, {"api certificates", c.api}, {"etcd certificates", c.etcd}} {
		if h.h != nil {
			r = append(r, reloadable{h.name, h.h.Reload})
		}
	}
	return r
}
