package api

import (
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/op25b/op25b/topology"
)

var (
	descOffenderAttempts = prometheus.NewDesc("op25b_offender_attempts_total",
		"SMTP connection attempts attributed to a source, per bridge this replica masters, pool, and whether they were only observed (forwarded in observe mode) rather than dropped.",
		withBridge("pool", "observed"), nil)
	descOffenderUntracked = prometheus.NewDesc("op25b_offender_untracked_attempts_total",
		"SMTP connection attempts counted by a bridge's offender table that no source could be attributed to: the switch was at its learn limit (--offenders-max-flows).",
		bridgeLabels, nil)
	descOffenderLearned = prometheus.NewDesc("op25b_offender_learned_flows",
		"Flows the switch learned in the offender table (one per source and destination) at the last read.",
		bridgeLabels, nil)
	descOffenderSaturated = prometheus.NewDesc("op25b_offender_table_full",
		"1 when the bridge's offender table was at its learn limit at the last read.",
		bridgeLabels, nil)
	descOffendersTracked = prometheus.NewDesc("op25b_offenders_tracked",
		"Sources this replica remembers (at most --offenders-max-sources).", nil, nil)
	descOffendersMax = prometheus.NewDesc("op25b_offenders_max_sources",
		"The most sources this replica remembers (--offenders-max-sources).", nil, nil)
	descOffendersEvicted = prometheus.NewDesc("op25b_offenders_evicted_total",
		"Sources forgotten to make room for new ones (--offenders-max-sources reached).", nil, nil)
	descOffendersTruncated = prometheus.NewDesc("op25b_offenders_truncated",
		"1 when, within the last hour, attempts could not be attributed to a source (a switch at its learn limit, or a source evicted): GET /v1/offenders answers truncated.",
		nil, nil)
)

// offenderCollector reads the offender tracker at scrape time; the
// document (when there is one) gives each bridge its pop and name labels.
type offenderCollector struct {
	mu   sync.Mutex
	src  OffenderSource
	docs DocSource
}

func (c *offenderCollector) set(src OffenderSource, docs DocSource) {
	c.mu.Lock()
	c.src, c.docs = src, docs
	c.mu.Unlock()
}

// Describe sends nothing: label sets (bridges, pools) are known at scrape time.
func (c *offenderCollector) Describe(chan<- *prometheus.Desc) {}

func (c *offenderCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	src, docs := c.src, c.docs
	c.mu.Unlock()
	if src == nil {
		return
	}
	bridges := map[string]topology.Bridge{}
	if docs != nil {
		if snap := docs.Current(); snap.Loaded && snap.Doc != nil {
			for _, b := range snap.Doc.Bridges {
				bridges[b.DPID.String()] = b
			}
		}
	}
	labels := func(dpid string, more ...string) []string {
		b := bridges[dpid]
		return append([]string{dpid, b.Pop, b.Name}, more...)
	}
	st := src.Stats(time.Now())
	ch <- prometheus.MustNewConstMetric(descOffendersTracked, prometheus.GaugeValue, float64(st.Tracked))
	ch <- prometheus.MustNewConstMetric(descOffendersMax, prometheus.GaugeValue, float64(st.MaxSources))
	ch <- prometheus.MustNewConstMetric(descOffendersEvicted, prometheus.CounterValue, float64(st.Evicted))
	ch <- prometheus.MustNewConstMetric(descOffendersTruncated, prometheus.GaugeValue, boolValue(st.Truncated))
	for dpid, b := range st.Bridges {
		ch <- prometheus.MustNewConstMetric(descOffenderUntracked, prometheus.CounterValue, float64(b.Untracked), labels(dpid)...)
		ch <- prometheus.MustNewConstMetric(descOffenderLearned, prometheus.GaugeValue, float64(b.Learned), labels(dpid)...)
		ch <- prometheus.MustNewConstMetric(descOffenderSaturated, prometheus.GaugeValue, boolValue(b.Saturated), labels(dpid)...)
	}
	for k, v := range st.Attempts {
		ch <- prometheus.MustNewConstMetric(descOffenderAttempts, prometheus.CounterValue, float64(v), labels(k.Bridge, k.Pool, strconv.FormatBool(k.Observed))...)
	}
}

// collectOffenders registers the offender collector once; like
// collectSwitchState it starts nothing, the collector reads at scrape time.
func (m *Metrics) collectOffenders(src OffenderSource, docs DocSource) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.offenders == nil {
		m.offenders = &offenderCollector{}
		m.registry.MustRegister(m.offenders)
	}
	if src != nil {
		m.offenders.set(src, docs)
	}
}
