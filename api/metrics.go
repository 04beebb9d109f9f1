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
	explainDisagree   *disagreementCounter // explain_metrics.go

	mu        sync.Mutex
	state     *stateCollector
	etcd      *etcdCollector     // etcd.go
	replica   *replicaCollector  // replica.go
	offenders *offenderCollector // offender_metrics.go
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
		explainDisagree: newDisagreementCounter(),
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
	reg.MustRegister(m.reconcileDuration, m.reconcileChanges, m.switchEvents, m.apiRequests, m.explainDisagree, buildInfo)
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
func (m *Metrics) collectSwitchState(sw SwitchSource, docs DocSource, pipeline flows.Options, now func() time.Time, logger *slog.Logger) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.state != nil {
		m.state.set(sw, docs, pipeline, now)
		return
	}
	m.state = &stateCollector{logger: logger, pools: map[topology.DPID]dropPools{}}
	m.state.set(sw, docs, pipeline, now)
	m.registry.MustRegister(m.state)
}

// bridgeLabels are the labels of every per-bridge series: the dpid, and
// the bridge's pop and name from the document ("" for both when the bridge
// is not registered), so that dashboards and alerts can group by pop and
// say which bridge without a lookup table.
var bridgeLabels = []string{"dpid", "pop", "name"}

func withBridge(labels ...string) []string {
	return append(append([]string(nil), bridgeLabels...), labels...)
}

var (
	descConnected = prometheus.NewDesc("op25b_bridges_connected",
		"Bridges connected to this replica's controller.", nil, nil)
	descBridgeConnected = prometheus.NewDesc("op25b_bridge_connected",
		"1 if the bridge is connected to this replica (every registered bridge is listed, 0 when not connected here).", bridgeLabels, nil)
	descMaster = prometheus.NewDesc("op25b_bridge_master",
		"1 if this replica holds the OpenFlow MASTER role for the bridge.", bridgeLabels, nil)
	descApplied = prometheus.NewDesc("op25b_bridge_applied_revision",
		"Document revision last applied to the bridge (acknowledged by a barrier).", bridgeLabels, nil)
	descBridgeDesired = prometheus.NewDesc("op25b_bridge_desired_revision",
		"Document revision of the flows this replica last set as the bridge's desired state; applied catches up with it on the master.", bridgeLabels, nil)
	descDesired = prometheus.NewDesc("op25b_desired_revision",
		"Document revision this replica converges to.", nil, nil)
	descFlows = prometheus.NewDesc("op25b_bridge_flows",
		"op25b flows installed on the bridge.", bridgeLabels, nil)
	descDrift = prometheus.NewDesc("op25b_drift_repairs_total",
		"Flow-mods that undid changes made on the switch behind op25b's back (reported by flow monitoring, or found by an audit).", bridgeLabels, nil)
	descDriftMode = prometheus.NewDesc("op25b_bridge_drift_detection",
		"1 for how this replica, as master, finds drift on the bridge: mode monitor (the switch reports changes) or poll (full audits every --audit-interval).", withBridge("mode"), nil)
	descDumps = prometheus.NewDesc("op25b_flow_dumps_total",
		"Full dumps of the bridge's op25b flows (reconciles, audits, flow listings).", bridgeLabels, nil)
	descResyncs = prometheus.NewDesc("op25b_flow_monitor_resyncs_total",
		"Full audits owed to the switch pausing flow monitoring (the controller fell behind) or too many changes at once.", bridgeLabels, nil)
	descOFErrors = prometheus.NewDesc("op25b_openflow_errors_total",
		"OpenFlow error messages received from the bridge.", bridgeLabels, nil)
	descReconcileFailures = prometheus.NewDesc("op25b_bridge_reconcile_failures_total",
		"Reconciles of the bridge that did not complete (nothing half-applied: bundles).", bridgeLabels, nil)
	descMastershipChanges = prometheus.NewDesc("op25b_bridge_mastership_changes_total",
		"Times this replica's OpenFlow role on the bridge became MASTER or stopped being MASTER.", bridgeLabels, nil)
	descBlockedPackets = prometheus.NewDesc("op25b_blocked_packets_total",
		"SMTP packets dropped on the bridge (drop flow counters).", bridgeLabels, nil)
	descBlockedBytes = prometheus.NewDesc("op25b_blocked_bytes_total",
		"SMTP bytes dropped on the bridge (drop flow counters).", bridgeLabels, nil)
	descPoolPackets = prometheus.NewDesc("op25b_pool_blocked_packets_total",
		"SMTP packets dropped per source pool and bridge.", withBridge("pool"), nil)
	descPoolBytes = prometheus.NewDesc("op25b_pool_blocked_bytes_total",
		"SMTP bytes dropped per source pool and bridge.", withBridge("pool"), nil)
	descPhaseActive = prometheus.NewDesc("op25b_phase_active",
		"1 for the phase of the service active at the pop now, 0 for its other phases that apply there. "+
			"phase is the phase's index in the service's phases, from its start as written (\"\" = always), mode enforce or observe.",
		[]string{"service", "pop", "phase", "from", "mode"}, nil)
	descPhaseNext = prometheus.NewDesc("op25b_phase_next_change_timestamp_seconds",
		"When the next phase of the service takes effect at the pop (Unix time); absent when no later phase applies there.",
		[]string{"service", "pop"}, nil)
	descObservedPackets = prometheus.NewDesc("op25b_pool_observed_packets_total",
		"SMTP packets a phase in observe mode would have dropped (and forwarded), per source pool and bridge.", withBridge("pool"), nil)
	descObservedBytes = prometheus.NewDesc("op25b_pool_observed_bytes_total",
		"SMTP bytes a phase in observe mode would have dropped (and forwarded), per source pool and bridge.", withBridge("pool"), nil)
	descQuarantinePackets = prometheus.NewDesc("op25b_quarantine_blocked_packets_total",
		"SMTP packets dropped per quarantine and bridge.", withBridge("quarantine"), nil)
	descQuarantineBytes = prometheus.NewDesc("op25b_quarantine_blocked_bytes_total",
		"SMTP bytes dropped per quarantine and bridge.", withBridge("quarantine"), nil)
)

// stateCollector reads the controller at scrape time.
type stateCollector struct {
	logger *slog.Logger

	mu       sync.Mutex
	sw       SwitchSource
	docs     DocSource
	pipeline flows.Options
	now      func() time.Time // the API's clock: attributions follow what the replica compiles
	pools    map[topology.DPID]dropPools
}

// dropPools attributes a bridge's drop-count flows to pools and
// quarantines. Compiling 100k pools on every scrape would be wasteful, so
// it is kept until the document revision changes or a phase boundary or an
// until passes.
type dropPools struct {
	revision     int64
	until        time.Time // zero: no later boundary
	byKey        map[flows.Key]string
	observed     map[flows.Key]string
	byQuarantine map[flows.Key]string
}

func (c *stateCollector) set(sw SwitchSource, docs DocSource, pipeline flows.Options, now func() time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sw, c.docs, c.pipeline, c.now = sw, docs, pipeline, now
	c.pools = map[topology.DPID]dropPools{} // attributions of another pipeline are void
}

// Describe sends nothing: the collector is unchecked because its label
// sets (bridges, pools) are only known at scrape time.
func (c *stateCollector) Describe(chan<- *prometheus.Desc) {}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	var doc *topology.Document
	if c.docs != nil {
		if snap := c.docs.Current(); snap.Loaded {
			ch <- prometheus.MustNewConstMetric(descDesired, prometheus.GaugeValue, float64(snap.Revision))
			doc = snap.Doc
		}
	}
	collectPhases(ch, doc, now)
	if c.sw == nil {
		return
	}
	registered := map[topology.DPID]topology.Bridge{}
	if doc != nil {
		for _, b := range doc.Bridges {
			registered[b.DPID] = b
		}
	}
	connected := 0
	seen := map[topology.DPID]bool{}
	for _, st := range c.sw.Status() {
		dpid := st.DPID
		seen[dpid] = true
		b := registered[dpid]
		lv := []string{string(dpid), b.Pop, b.Name}
		gauge := func(d *prometheus.Desc, v float64) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, lv...)
		}
		counter := func(d *prometheus.Desc, v uint64) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), lv...)
		}
		gauge(descBridgeConnected, boolValue(st.Connected))
		gauge(descMaster, boolValue(st.Role == "master"))
		gauge(descApplied, float64(st.AppliedRevision))
		if st.DesiredRevision > 0 {
			gauge(descBridgeDesired, float64(st.DesiredRevision))
		}
		gauge(descFlows, float64(st.Flows))
		counter(descDrift, st.DriftRepairs)
		counter(descOFErrors, st.OpenFlowErrors)
		counter(descReconcileFailures, st.ReconcileFailures)
		counter(descMastershipChanges, st.MastershipChanges)
		counter(descDumps, st.FlowDumps)
		counter(descResyncs, st.MonitorResyncs)
		if st.DriftDetection != "" {
			ch <- prometheus.MustNewConstMetric(descDriftMode, prometheus.GaugeValue, 1, append(append([]string(nil), lv...), st.DriftDetection)...)
		}
		if !st.Connected {
			continue
		}
		connected++
		c.collectDrops(ch, dpid, lv)
	}
	// A registered bridge this replica never saw is not connected here:
	// listing it lets an alert find a bridge no replica is connected to
	// even when it never connected since the replicas started.
	for dpid, b := range registered {
		if !seen[dpid] {
			lv := []string{string(dpid), b.Pop, b.Name}
			ch <- prometheus.MustNewConstMetric(descBridgeConnected, prometheus.GaugeValue, 0, lv...)
			ch <- prometheus.MustNewConstMetric(descMaster, prometheus.GaugeValue, 0, lv...)
		}
	}
	ch <- prometheus.MustNewConstMetric(descConnected, prometheus.GaugeValue, float64(connected))
	for dpid := range c.pools {
		if !seen[dpid] {
			delete(c.pools, dpid) // a forgotten bridge must not pin a 100k-entry map
		}
	}
}

// collectPhases reports, for every service and every pop the document
// names, the phases that apply there (the active one 1, the others 0)
// and the next boundary. Every replica reports the same: the values come
// from the document and the clock alone. Cardinality is services × pops ×
// phases, a few hundred series for a national ISP.
func collectPhases(ch chan<- prometheus.Metric, doc *topology.Document, now time.Time) {
	if doc == nil {
		return
	}
	pops := doc.Pops()
	for _, s := range doc.Services {
		for _, pop := range pops {
			tl := doc.Timeline(s.Name, pop, now)
			for _, i := range tl.Phases {
				ph := s.Phases[i]
				ch <- prometheus.MustNewConstMetric(descPhaseActive, prometheus.GaugeValue, boolValue(i == tl.Active),
					s.Name, pop, strconv.Itoa(i), ph.From, phaseMode(ph))
			}
			if tl.Next >= 0 {
				ch <- prometheus.MustNewConstMetric(descPhaseNext, prometheus.GaugeValue, float64(tl.NextAt.Unix()), s.Name, pop)
			}
		}
	}
}

// phaseMode is the "mode" label of a phase.
func phaseMode(ph topology.Phase) string {
	if ph.Observes() {
		return topology.ModeObserve
	}
	return topology.ModeEnforce
}

func (c *stateCollector) collectDrops(ch chan<- prometheus.Metric, dpid topology.DPID, lv []string) {
	counters := c.sw.DropCounters(dpid)
	attribution := c.poolsOf(dpid)
	var packets, bytes uint64
	type sum struct{ packets, bytes uint64 }
	add := func(m map[string]*sum, name string, fc controller.FlowCounter) {
		s := m[name]
		if s == nil {
			s = &sum{}
			m[name] = s
		}
		s.packets += fc.Packets
		s.bytes += fc.Bytes
	}
	perPool, perObserved, perQuarantine := map[string]*sum{}, map[string]*sum{}, map[string]*sum{}
	for _, fc := range counters {
		if fc.Observed {
			// Forwarded: what an observing phase would drop, not a drop.
			if pool, ok := attribution.observed[fc.Key]; ok {
				add(perObserved, pool, fc)
			}
			continue
		}
		packets += fc.Packets
		bytes += fc.Bytes
		if pool, ok := attribution.byKey[fc.Key]; ok {
			add(perPool, pool, fc)
		} else if q, ok := attribution.byQuarantine[fc.Key]; ok {
			add(perQuarantine, q, fc)
		}
	}
	ch <- prometheus.MustNewConstMetric(descBlockedPackets, prometheus.CounterValue, float64(packets), lv...)
	ch <- prometheus.MustNewConstMetric(descBlockedBytes, prometheus.CounterValue, float64(bytes), lv...)
	for _, m := range []struct {
		sums           map[string]*sum
		packets, bytes *prometheus.Desc
	}{
		{perPool, descPoolPackets, descPoolBytes},
		{perObserved, descObservedPackets, descObservedBytes},
		{perQuarantine, descQuarantinePackets, descQuarantineBytes},
	} {
		for name, s := range m.sums {
			nlv := append(append([]string(nil), lv...), name)
			ch <- prometheus.MustNewConstMetric(m.packets, prometheus.CounterValue, float64(s.packets), nlv...)
			ch <- prometheus.MustNewConstMetric(m.bytes, prometheus.CounterValue, float64(s.bytes), nlv...)
		}
	}
}

// poolsOf returns the attribution of a bridge's drop-count flows for the
// current document, recompiling only when it may have changed.
func (c *stateCollector) poolsOf(dpid topology.DPID) dropPools {
	if c.docs == nil {
		return dropPools{}
	}
	snap := c.docs.Current()
	if !snap.Loaded || snap.Doc == nil {
		return dropPools{}
	}
	now := c.now()
	if dp, ok := c.pools[dpid]; ok && dp.revision == snap.Revision && (dp.until.IsZero() || now.Before(dp.until)) {
		return dp
	}
	compiled, err := flows.Compile(snap.Doc, dpid, now, c.pipeline)
	if err != nil {
		c.logger.Warn("metrics: compile for pool attribution failed", "dpid", dpid, "revision", snap.Revision, "err", err)
		return dropPools{}
	}
	dp := dropPools{revision: snap.Revision, byKey: compiled.DropPool, observed: compiled.ObservePool, byQuarantine: compiled.DropQuarantine}
	if next, ok := snap.Doc.NextChange(now); ok {
		dp.until = next
	}
	c.pools[dpid] = dp
	return dp
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
