package api

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// ReplicaSource is this replica's part in the cluster (the daemon adapts
// *cluster.Replica): whether it reaches etcd and holds its lease.
type ReplicaSource interface {
	Health() ReplicaHealth
}

// ReplicaHealth is ReplicaSource's answer.
type ReplicaHealth struct {
	// EtcdErr is the last cluster pass's etcd failure; nil when it
	// reached etcd.
	EtcdErr error
	// LeaseHeld: the replica holds its etcd lease, so it counts towards
	// the cluster and may master bridges.
	LeaseHeld bool
	// LeaseExpires is when etcd would expire the lease without another
	// keepalive; zero without a lease.
	LeaseExpires time.Time
}

// CertificateSource lists the certificate and CA files in use, as last
// loaded (the daemon re-reads them on SIGHUP).
type CertificateSource interface {
	Certificates() []CertificateExpiry
}

// CertificateExpiry is one file in use: Channel is "openflow", "api" or
// "etcd", File its path, NotAfter the earliest expiry of the
// certificates it holds.
type CertificateExpiry struct {
	Channel, File string
	NotAfter      time.Time
}

var (
	descEtcdUp = prometheus.NewDesc("op25b_etcd_up",
		"1 if this replica's last cluster pass (every 2 s at most) reached etcd.", nil, nil)
	descLeaseHeld = prometheus.NewDesc("op25b_replica_lease_held",
		"1 if this replica holds its etcd lease: it counts as a live replica and may master bridges.", nil, nil)
	descLeaseRemaining = prometheus.NewDesc("op25b_lease_remaining_seconds",
		"Seconds until etcd would expire this replica's lease without another keepalive (0 without a lease).", nil, nil)
	descCertExpiry = prometheus.NewDesc("op25b_certificate_expiry_timestamp_seconds",
		"When a certificate or CA file in use expires (Unix time; the earliest of the certificates it holds), as of the last (re)load.",
		[]string{"channel", "file"}, nil)
)

// replicaCollector reads the replica's health and certificates at scrape
// time.
type replicaCollector struct {
	mu      sync.Mutex
	replica ReplicaSource
	certs   CertificateSource
	now     func() time.Time
}

func (c *replicaCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descEtcdUp
	ch <- descLeaseHeld
	ch <- descLeaseRemaining
	ch <- descCertExpiry
}

func (c *replicaCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	replica, certs, now := c.replica, c.certs, c.now
	c.mu.Unlock()
	if replica != nil {
		h := replica.Health()
		ch <- prometheus.MustNewConstMetric(descEtcdUp, prometheus.GaugeValue, boolValue(h.EtcdErr == nil))
		ch <- prometheus.MustNewConstMetric(descLeaseHeld, prometheus.GaugeValue, boolValue(h.LeaseHeld))
		remaining := 0.0
		if h.LeaseHeld && !h.LeaseExpires.IsZero() {
			remaining = max(h.LeaseExpires.Sub(now()).Seconds(), 0)
		}
		ch <- prometheus.MustNewConstMetric(descLeaseRemaining, prometheus.GaugeValue, remaining)
	}
	if certs != nil {
		for _, e := range certs.Certificates() {
			ch <- prometheus.MustNewConstMetric(descCertExpiry, prometheus.GaugeValue, float64(e.NotAfter.Unix()), e.Channel, e.File)
		}
	}
}

// watchReplica registers the replica collector once; later calls swap its
// sources (nil sources report nothing).
func (m *Metrics) watchReplica(replica ReplicaSource, certs CertificateSource, now func() time.Time) {
	if replica == nil && certs == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.replica == nil {
		m.replica = &replicaCollector{}
		m.registry.MustRegister(m.replica)
	}
	m.replica.mu.Lock()
	m.replica.replica, m.replica.certs, m.replica.now = replica, certs, now
	m.replica.mu.Unlock()
}
