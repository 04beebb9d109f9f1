package main

import (
	"crypto/x509"
	"errors"
	"time"

	"github.com/op25b/op25b/topology"
	"github.com/op25b/op25b/topology/store"
)

// registryWait is how long a TLS switch's claim waits for the first
// document when it connects right after op25bd starts.
const registryWait = 5 * time.Second

// datapathClaims is controller.Config.AuthorizeDatapath: the certificate
// bindings of the bridges registry ("cert" on a bridge) in the replica's
// current document. Until a document is loaded the bindings are unknown,
// so a claim waits a little and is then refused (the switch reconnects):
// failing open would let any certificate of the CA take a session for the
// seconds it takes etcd to answer.
func datapathClaims(cache *store.Cache) func(dpid topology.DPID, cert *x509.Certificate) error {
	return func(dpid topology.DPID, cert *x509.Certificate) error {
		snap := cache.Current()
		for end := time.Now().Add(registryWait); !snap.Loaded && time.Now().Before(end); snap = cache.Current() {
			time.Sleep(50 * time.Millisecond)
		}
		if !snap.Loaded {
			return errors.New("the bridges registry is not loaded yet (etcd unreachable?); the switch will reconnect")
		}
		return snap.Doc.CheckDatapathClaim(dpid, certIdentities(cert))
	}
}

// certIdentities are the names a switch certificate carries: its Subject
// CN and every DNS, IP, URI and e-mail SAN, as text.
func certIdentities(c *x509.Certificate) []string {
	if c == nil {
		return nil
	}
	var ids []string
	if c.Subject.CommonName != "" {
		ids = append(ids, c.Subject.CommonName)
	}
	ids = append(ids, c.DNSNames...)
	for _, ip := range c.IPAddresses {
		ids = append(ids, ip.String())
	}
	for _, u := range c.URIs {
		ids = append(ids, u.String())
	}
	return append(ids, c.EmailAddresses...)
}
