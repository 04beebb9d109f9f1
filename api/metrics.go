package api

import (
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/op25b/op25b/controller"
	"github.com/op25b/op25b/flows"
	"github.com/op25b/op25b/internal/buildinfo"
	"github.com/op25b/op25b/topology"
)

// Metrics is op25b's Prometheus instrumentation. Event-driven metrics
// (reconcile durations) are fed by ObserveEvent, which the daemon wires to
// controller.Config.Events; switch state (connections, roles, revisions,
// drop counters) is read from the controller at scrape time, so it can
// never drift from what the controller reports.
type Metrics struct {
	registry *prometheus.Registry

	reconcileDuration prometheus.Histogram
	reconcileChanges  prometheus.Counter
	switchEvents      *prometheus.CounterVec
	apiRequests       *prometheus.CounterVec

	mu    sync.Mutex
	state *stateCollector
	etcd  *etcdCollector // etcd.go
}

// NewMetrics registers op25b's metrics on reg (a new registry, with the Go
// and process collectors, when nil).
func NewMetrics(reg *prometheus.Registry) *Metrics {
	if reg == nil {
		reg = prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	m := &Metrics{
		registry: reg,
		reconcileDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "op25b_reconcile_duration_seconds",
			Help: "Wall time of one reconcile (dump, diff, bundle, barrier) on a bridge this replica masters.",
			// From a no-op reconcile of a few flows (~1 ms) to a full 100k-flow install (seconds).
			Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 12),
		}),
		reconcileChanges: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "op25b_reconcile_flow_mods_total",
			Help: "Flow-mods sent by reconciles on this replica.",
		}),
		switchEvents: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "op25b_switch_events_total",
			Help: "Controller events by kind (connected, disconnected, lost_mastership, reconciled, reconcile_failed).",
		}, []string{"kind"}),
		apiRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "op25b_api_requests_total",
			Help: "REST API requests by method, route template and HTTP status code.",
		}, []string{"method", "route", "code"}),
	}
	// The usual Prometheus idiom: a constant 1 whose labels say what runs,
	// so a dashboard can show which replica still runs the old version
	// during a rolling upgrade.
	bi := buildinfo.Read()
	buildInfo := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "op25b_build_info",
		Help:        "Always 1; the labels are the version (git describe), commit and Go version of this binary.",
		ConstLabels: prometheus.Labels{"version": bi.Version, "commit": bi.Commit, "goversion": bi.GoVersion},
	})
	buildInfo.Set(1)
	reg.MustRegister(m.reconcileDuration, m.reconcileChanges, m.switchEvents, m.apiRequests, buildInfo)
	return m
}

// Registry is where the metrics live (to add the daemon's own).
func (m *Metrics) Registry() *prometheus.Registry { return m.registry }

// ObserveEvent records one controller event. It is cheap and never blocks,
// as controller.Config.Events requires.
func (m *Metrics) ObserveEvent(ev controller.Event) {
	kind := "unknown"
	switch ev.Kind {
	case controller.EventConnected:
		kind = "connected"
	case controller.EventDisconnected:
		kind = "disconnected"
	case controller.EventLostMastership:
		kind = "lost_mastership"
	case controller.EventReconciled:
		kind = "reconciled"
		m.reconcileDuration.Observe(ev.Duration.Seconds())
		m.reconcileChanges.Add(float64(ev.Changes))
	case controller.EventReconcileFailed:
		kind = "reconcile_failed"
		m.reconcileDuration.Observe(ev.Duration.Seconds())
	}
	m.switchEvents.WithLabelValues(kind).Inc()
}

func (m *Metrics) observeRequest(method, route string, code int) {
	switch method {
	case http.MethodGet, http.MethodPut, http.MethodDelete, http.MethodHead, http.MethodPost:
	default:
		method = "other" // bounded label values whatever clients send
	}
	m.apiRequests.WithLabelValues(method, route, strconv.Itoa(code)).Inc()
}

func (m *Metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{})
}

// collectSwitchState points the scrape-time collector of switch state at
// sw and docs, registering it on the first call. It starts nothing: the
// state is read when Prometheus scrapes, in the scrape's goroutine.
func (m *Metrics) collectSwitchState(sw SwitchSource, docs DocSource, pipeline flows.Options, logger *slog.Logger) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.state != nil {
		m.state.set(sw, docs, pipeline)
		return
	}
	m.state = &stateCollector{logger: logger, pools: map[topology.DPID]dropPools{}}
	m.state.set(sw, docs, pipeline)
	m.registry.MustRegister(m.state)
}

var (
	descConnected = prometheus.NewDesc("op25b_bridges_connected",
		"Bridges connected to this replica's controller.", nil, nil)
	descBridgeConnected = prometheus.NewDesc("op25b_bridge_connected",
		"1 if the bridge is connected to this replica.", []string{"dpid"}, nil)
	descMaster = prometheus.NewDesc("op25b_bridge_master",
		"1 if this replica holds the OpenFlow MASTER role for the bridge.", []string{"dpid"}, nil)
	descApplied = prometheus.NewDesc("op25b_bridge_applied_revision",
		"Document revision last applied to the bridge (acknowledged by a barrier).", []string{"dpid"}, nil)
	descDesired = prometheus.NewDesc("op25b_desired_revision",
		"Document revision this replica converges to.", nil, nil)
	descFlows = prometheus.NewDesc("op25b_bridge_flows",
		"op25b flows installed on the bridge.", []string{"dpid"}, nil)
	descDrift = prometheus.NewDesc("op25b_drift_repairs_total",
		"Flow-mods that undid changes made on the switch behind op25b's back (reported by flow monitoring, or found by an audit).", []string{"dpid"}, nil)
	descDriftMode = prometheus.NewDesc("op25b_bridge_drift_detection",
		"1 for how this replica, as master, finds drift on the bridge: mode monitor (the switch reports changes) or poll (full audits every --audit-interval).", []string{"dpid", "mode"}, nil)
	descDumps = prometheus.NewDesc("op25b_flow_dumps_total",
		"Full dumps of the bridge's op25b flows (reconciles, audits, flow listings).", []string{"dpid"}, nil)
	descResyncs = prometheus.NewDesc("op25b_flow_monitor_resyncs_total",
		"Full audits owed to the switch pausing flow monitoring (the controller fell behind) or too many changes at once.", []string{"dpid"}, nil)
	descOFErrors = prometheus.NewDesc("op25b_openflow_errors_total",
		"OpenFlow error messages received from the bridge.", []string{"dpid"}, nil)
	descBlockedPackets = prometheus.NewDesc("op25b_blocked_packets_total",
		"SMTP packets dropped on the bridge (drop flow counters).", []string{"dpid"}, nil)
	descBlockedBytes = prometheus.NewDesc("op25b_blocked_bytes_total",
		"SMTP bytes dropped on the bridge (drop flow counters).", []string{"dpid"}, nil)
	descPoolPackets = prometheus.NewDesc("op25b_pool_blocked_packets_total",
		"SMTP packets dropped per source pool and bridge.", []string{"dpid", "pool"}, nil)
	descPoolBytes = prometheus.NewDesc("op25b_pool_blocked_bytes_total",
		"SMTP bytes dropped per source pool and bridge.", []string{"dpid", "pool"}, nil)
)

// stateCollector reads the controller at scrape time.
type stateCollector struct {
	logger *slog.Logger

	mu       sync.Mutex
	sw       SwitchSource
	docs     DocSource
	pipeline flows.Options
	pools    map[topology.DPID]dropPools
}

// dropPools attributes a bridge's drop flows to pools. Compiling 100k pools
// on every scrape would be wasteful, so it is kept until the document
// revision changes or a phase boundary passes.
type dropPools struct {
	revision int64
	until    time.Time // zero: no later phase boundary
	byKey    map[flows.Key]string
}

func (c *stateCollector) set(sw SwitchSource, docs DocSource, pipeline flows.Options) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sw, c.docs, c.pipeline = sw, docs, pipeline
	c.pools = map[topology.DPID]dropPools{} // attributions of another pipeline are void
}

// Describe sends nothing: the collector is unchecked because its label
// sets (bridges, pools) are only known at scrape time.
func (c *stateCollector) Describe(chan<- *prometheus.Desc) {}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.docs != nil {
		if snap := c.docs.Current(); snap.Loaded {
			ch <- prometheus.MustNewConstMetric(descDesired, prometheus.GaugeValue, float64(snap.Revision))
		}
	}
	if c.sw == nil {
		return
	}
	connected := 0
	seen := map[topology.DPID]bool{}
	for _, st := range c.sw.Status() {
		dpid, label := st.DPID, string(st.DPID)
		seen[dpid] = true
		ch <- prometheus.MustNewConstMetric(descBridgeConnected, prometheus.GaugeValue, boolValue(st.Connected), label)
		ch <- prometheus.MustNewConstMetric(descMaster, prometheus.GaugeValue, boolValue(st.Role == "master"), label)
		ch <- prometheus.MustNewConstMetric(descApplied, prometheus.GaugeValue, float64(st.AppliedRevision), label)
		ch <- prometheus.MustNewConstMetric(descFlows, prometheus.GaugeValue, float64(st.Flows), label)
		ch <- prometheus.MustNewConstMetric(descDrift, prometheus.CounterValue, float64(st.DriftRepairs), label)
		ch <- prometheus.MustNewConstMetric(descDumps, prometheus.CounterValue, float64(st.FlowDumps), label)
		ch <- prometheus.MustNewConstMetric(descResyncs, prometheus.CounterValue, float64(st.MonitorResyncs), label)
		if st.DriftDetection != "" {
			ch <- prometheus.MustNewConstMetric(descDriftMode, prometheus.GaugeValue, 1, label, st.DriftDetection)
		}
		ch <- prometheus.MustNewConstMetric(descOFErrors, prometheus.CounterValue, float64(st.OpenFlowErrors), label)
		if !st.Connected {
			continue
		}
		connected++
		c.collectDrops(ch, dpid)
	}
	ch <- prometheus.MustNewConstMetric(descConnected, prometheus.GaugeValue, float64(connected))
	for dpid := range c.pools {
		if !seen[dpid] {
			delete(c.pools, dpid) // a forgotten bridge must not pin a 100k-entry map
		}
	}
}

func (c *stateCollector) collectDrops(ch chan<- prometheus.Metric, dpid topology.DPID) {
	counters := c.sw.DropCounters(dpid)
	byPool := c.poolsOf(dpid)
	var packets, bytes uint64
	type sum struct{ packets, bytes uint64 }
	perPool := map[string]*sum{}
	for _, fc := range counters {
		packets += fc.Packets
		bytes += fc.Bytes
		if pool, ok := byPool[fc.Key]; ok {
			s := perPool[pool]
			if s == nil {
				s = &sum{}
				perPool[pool] = s
			}
			s.packets += fc.Packets
			s.bytes += fc.Bytes
		}
	}
	ch <- prometheus.MustNewConstMetric(descBlockedPackets, prometheus.CounterValue, float64(packets), string(dpid))
	ch <- prometheus.MustNewConstMetric(descBlockedBytes, prometheus.CounterValue, float64(bytes), string(dpid))
	for pool, s := range perPool {
		ch <- prometheus.MustNewConstMetric(descPoolPackets, prometheus.CounterValue, float64(s.packets), string(dpid), pool)
		ch <- prometheus.MustNewConstMetric(descPoolBytes, prometheus.CounterValue, float64(s.bytes), string(dpid), pool)
	}
}

// poolsOf returns the drop-flow → pool map of a bridge for the current
// document, recompiling only when it may have changed.
func (c *stateCollector) poolsOf(dpid topology.DPID) map[flows.Key]string {
	if c.docs == nil {
		return nil
	}
	snap := c.docs.Current()
	if !snap.Loaded || snap.Doc == nil {
		return nil
	}
	now := time.Now()
	if dp, ok := c.pools[dpid]; ok && dp.revision == snap.Revision && (dp.until.IsZero() || now.Before(dp.until)) {
		return dp.byKey
	}
	compiled, err := flows.Compile(snap.Doc, dpid, now, c.pipeline)
	if err != nil {
		c.logger.Warn("metrics: compile for pool attribution failed", "dpid", dpid, "revision", snap.Revision, "err", err)
		return nil
	}
	dp := dropPools{revision: snap.Revision, byKey: compiled.DropPool}
	if next, ok := snap.Doc.NextChange(now); ok {
		dp.until = next
	}
	c.pools[dpid] = dp
	return dp.byKey
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
