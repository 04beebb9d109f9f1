package api

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/op25b/op25b/api/apitypes"
	"github.com/op25b/op25b/topology"
	"github.com/op25b/op25b/topology/store"
)

// op25b_explain_disagreements_total has a series at 0 for every bridge of
// the document from the first scrape on (so increase() sees the first
// disagreement); the zero series follow the document, a counted one stays.
func TestDisagreementCounterStartsAtZero(t *testing.T) {
	docOf := func(bridges ...topology.Bridge) store.Snapshot {
		return store.Snapshot{Loaded: true, Revision: 1, Doc: &topology.Document{Bridges: bridges}}
	}
	a := topology.Bridge{DPID: "0000000000000001", Name: "tokyo-1-sub-a", Pop: "tokyo-1"}
	b := topology.Bridge{DPID: "0000000000000002", Name: "osaka-1-sub-a", Pop: "osaka-1"}
	series := func(br topology.Bridge, v string) string {
		return fmt.Sprintf("%s %s %s %s", br.DPID, br.Pop, br.Name, v)
	}
	c := newDisagreementCounter()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	if got := gatherDisagreements(t, reg); len(got) != 0 {
		t.Errorf("no document yet: %q, want no series", got)
	}
	docs := &fakeDocs{snap: store.Snapshot{}}
	c.watch(docs)
	if got := gatherDisagreements(t, reg); len(got) != 0 {
		t.Errorf("document not loaded: %q, want no series", got)
	}

	for _, step := range []struct {
		name string
		snap store.Snapshot
		inc  *topology.Bridge
		want []string
	}{
		{"every registered bridge at 0", docOf(a, b), nil, []string{series(b, "0"), series(a, "0")}},
		{"a disagreement on a", docOf(a, b), &a, []string{series(b, "0"), series(a, "1")}},
		{"b leaves the document: its zero series goes", docOf(a), nil, []string{series(a, "1")}},
		{"a renamed: the counted series stays, the new name starts at 0", docOf(topology.Bridge{DPID: a.DPID, Name: "tokyo-1-sub-z", Pop: a.Pop}), nil,
			[]string{series(topology.Bridge{DPID: a.DPID, Name: "tokyo-1-sub-z", Pop: a.Pop}, "0"), series(a, "1")}},
		{"b back", docOf(a, b), nil, []string{series(b, "0"), series(a, "1")}},
	} {
		docs.snap = step.snap
		if step.inc != nil {
			c.inc(apitypes.ExplainBridge{DPID: step.inc.DPID, Name: step.inc.Name, Pop: step.inc.Pop})
		}
		got := gatherDisagreements(t, reg)
		slices.Sort(step.want)
		if strings.Join(got, "\n") != strings.Join(step.want, "\n") {
			t.Errorf("%s: series\n%s\nwant\n%s", step.name, strings.Join(got, "\n"), strings.Join(step.want, "\n"))
		}
	}
}

// gatherDisagreements returns the counter's series as "dpid pop name
// value", sorted.
func gatherDisagreements(t *testing.T, reg *prometheus.Registry) []string {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			lv := map[string]string{}
			for _, l := range m.GetLabel() {
				lv[l.GetName()] = l.GetValue()
			}
			out = append(out, fmt.Sprintf("%s %s %s %g", lv["dpid"], lv["pop"], lv["name"], m.GetCounter().GetValue()))
		}
	}
	slices.Sort(out)
	return out
}
