package api

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/op25b/op25b/api/apitypes"
)

// disagreementCounter is op25b_explain_disagreements_total, per bridge.
// A plain CounterVec has no series until its first increment, and
// increase() and rate() see nothing of a counter's first increment when
// its first sample is already 1: the alert on disagreements would miss the
// first one. So, the Prometheus idiom, every bridge the document registers
// has its series at 0 from the first scrape on. The zero series follow the
// document: one that was never counted goes away when its bridge leaves
// the document (or changes pop or name); a counted one stays, it is
// history.
type disagreementCounter struct {
	vec *prometheus.CounterVec

	mu      sync.Mutex
	docs    DocSource
	zeroed  map[[3]string]bool // series created at 0 for the document's bridges
	counted map[[3]string]bool // series incremented at least once
}

func newDisagreementCounter() *disagreementCounter {
	return &disagreementCounter{
		vec: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "op25b_explain_disagreements_total",
			Help: "GET /v1/explain answers whose reference verdict differs from the verdict of the flows installed on the bridge.",
		}, bridgeLabels),
		zeroed:  map[[3]string]bool{},
		counted: map[[3]string]bool{},
	}
}

// watch makes the bridges of docs' current document known at scrape time.
func (c *disagreementCounter) watch(docs DocSource) {
	c.mu.Lock()
	c.docs = docs
	c.mu.Unlock()
}

// inc counts one disagreement on bridge.
func (c *disagreementCounter) inc(bridge apitypes.ExplainBridge) {
	lv := [3]string{string(bridge.DPID), bridge.Pop, bridge.Name}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.counted[lv] = true
	c.vec.WithLabelValues(lv[:]...).Inc()
}

func (c *disagreementCounter) Describe(ch chan<- *prometheus.Desc) { c.vec.Describe(ch) }

func (c *disagreementCounter) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	if c.docs != nil {
		if snap := c.docs.Current(); snap.Loaded && snap.Doc != nil {
			registered := make(map[[3]string]bool, len(snap.Doc.Bridges))
			for _, b := range snap.Doc.Bridges {
				lv := [3]string{string(b.DPID), b.Pop, b.Name}
				registered[lv] = true
				c.vec.WithLabelValues(lv[:]...) // creates the series at 0 if it is not there
			}
			for lv := range c.zeroed {
				if !registered[lv] && !c.counted[lv] {
					c.vec.DeleteLabelValues(lv[:]...)
				}
			}
			c.zeroed = registered
		}
	}
	c.mu.Unlock()
	c.vec.Collect(ch)
}
