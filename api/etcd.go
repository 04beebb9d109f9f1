package api

import (
	"net/http"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/op25b/op25b/topology/store"
)

// EtcdSource is etcd's footprint as the replica's *store.Keeper last saw
// it: database size and alarms (a NOSPACE alarm refuses every write).
type EtcdSource interface {
	Current() store.Footprint
}

func etcdView(src EtcdSource) *EtcdView {
	if src == nil {
		return nil
	}
	f := src.Current()
	v := &EtcdView{DBSizeBytes: f.DBSize, DBSizeInUseBytes: f.DBSizeInUse, Alarms: nonNil(f.Alarms), NoSpace: f.NoSpace, CheckedAt: f.CheckedAt}
	if f.Err != nil {
		v.Error = f.Err.Error()
	}
	return v
}

// noSpaceError is what /readyz answers while etcd's NOSPACE alarm is on.
func noSpaceError(src EtcdSource) *Error {
	if src == nil || !src.Current().NoSpace {
		return nil
	}
	return newError(http.StatusServiceUnavailable, CodeNoSpace, "", "not ready: "+store.ErrNoSpace.Error())
}

var (
	descEtcdDBSize = prometheus.NewDesc("op25b_etcd_db_size_bytes",
		"Size of etcd's backend database file (largest member), as last checked.", nil, nil)
	descEtcdDBInUse = prometheus.NewDesc("op25b_etcd_db_size_in_use_bytes",
		"Part of etcd's backend database holding data; the rest is free pages a defragmentation returns.", nil, nil)
	descEtcdAlarm = prometheus.NewDesc("op25b_etcd_alarm",
		"1 while etcd has this alarm active (NOSPACE: every write is refused).", []string{"alarm"}, nil)
	descEtcdCompactions = prometheus.NewDesc("op25b_etcd_compactions_total",
		"Compactions of etcd's history made by this replica (embedded etcd only).", nil, nil)
	descEtcdDefrags = prometheus.NewDesc("op25b_etcd_defrags_total",
		"Defragmentations of etcd made by this replica (embedded etcd only).", nil, nil)
)

// etcdCollector reads the Keeper at scrape time.
type etcdCollector struct {
	mu  sync.Mutex
	src EtcdSource
}

func (c *etcdCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descEtcdDBSize
	ch <- descEtcdDBInUse
	ch <- descEtcdAlarm
	ch <- descEtcdCompactions
	ch <- descEtcdDefrags
}

func (c *etcdCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	src := c.src
	c.mu.Unlock()
	if src == nil {
		return
	}
	f := src.Current()
	ch <- prometheus.MustNewConstMetric(descEtcdDBSize, prometheus.GaugeValue, float64(f.DBSize))
	ch <- prometheus.MustNewConstMetric(descEtcdDBInUse, prometheus.GaugeValue, float64(f.DBSizeInUse))
	noSpace := 0.0
	if f.NoSpace {
		noSpace = 1
	}
	ch <- prometheus.MustNewConstMetric(descEtcdAlarm, prometheus.GaugeValue, noSpace, "NOSPACE")
	for _, a := range f.Alarms {
		if a != "NOSPACE" {
			ch <- prometheus.MustNewConstMetric(descEtcdAlarm, prometheus.GaugeValue, 1, a)
		}
	}
	ch <- prometheus.MustNewConstMetric(descEtcdCompactions, prometheus.CounterValue, float64(f.Compactions))
	ch <- prometheus.MustNewConstMetric(descEtcdDefrags, prometheus.CounterValue, float64(f.Defrags))
}

// watchEtcd registers the etcd collector once; later calls swap its source.
func (m *Metrics) watchEtcd(src EtcdSource) {
	if src == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.etcd == nil {
		m.etcd = &etcdCollector{}
		m.registry.MustRegister(m.etcd)
	}
	m.etcd.mu.Lock()
	m.etcd.src = src
	m.etcd.mu.Unlock()
}
