package api

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"

	"github.com/op25b/op25b/offenders"
	"github.com/op25b/op25b/topology/store"
)

// offenderTracker is a tracker with attempts on the contract example's
// bridges: tokyo-1 (registered) and an unregistered one.
func offenderTracker(t testing.TB, batches ...offenders.Batch) *offenders.Tracker {
	t.Helper()
	tr, err := offenders.NewTracker(offenders.Config{})
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range batches {
		tr.Add(b)
	}
	return tr
}

func offenderAttempt(src, dst, pool string, n uint64, observed bool) offenders.Attempt {
	return offenders.Attempt{Src: netip.MustParseAddr(src), Dst: netip.MustParseAddr(dst), Pool: pool, Count: n, Observed: observed}
}

func TestOffendersLocal(t *testing.T) {
	tr := offenderTracker(t,
		offenders.Batch{Bridge: "0000000000000001", At: testClock.Add(-30 * time.Minute), Attempts: []offenders.Attempt{
			offenderAttempt("10.1.3.7", "203.0.113.25", "tokyo-dyn", 40, false),
			offenderAttempt("10.1.3.7", "203.0.113.26", "tokyo-dyn", 2, false),
			offenderAttempt("10.1.9.9", "203.0.113.25", "tokyo-dyn", 7, true),
		}},
		offenders.Batch{Bridge: "00000000000000aa", At: testClock.Add(-5 * time.Minute), Attempts: []offenders.Attempt{
			offenderAttempt("2001:db8:1::5", "2001:db8:25::25", "tokyo-v6", 12, false),
		}},
		offenders.Batch{Bridge: "0000000000000001", At: testClock.Add(-3 * time.Hour), Attempts: []offenders.Attempt{
			offenderAttempt("10.1.4.4", "203.0.113.25", "tokyo-dyn", 99, false),
		}},
	)
	e := newEnv(t, func(c *Config) { c.Offenders = tr; c.Cluster = nil })
	e.putExample()

	var got OffendersResponse
	e.expect(e.do(http.MethodGet, "/v1/offenders", ""), http.StatusOK, &got)
	if !got.Since.Equal(testClock.Add(-time.Hour)) || got.Truncated || len(got.Offenders) != 3 {
		t.Fatalf("default window (1h): %+v", got)
	}
	o := got.Offenders[0]
	if o.Src != "10.1.3.7" || o.Pool != "tokyo-dyn" || o.Bridge != "0000000000000001" || o.Pop != "tokyo-1" || o.Attempts != 42 ||
		o.Destinations != 2 || o.Observed || !o.LastSeen.Equal(testClock.Add(-30*time.Minute)) {
		t.Fatalf("top offender: %+v", o)
	}
	if got.Offenders[1].Src != "2001:db8:1::5" || got.Offenders[1].Pop != "" || got.Offenders[2].Src != "10.1.9.9" || !got.Offenders[2].Observed {
		t.Fatalf("order / unregistered bridge / observed: %+v", got.Offenders)
	}
	e.expect(e.do(http.MethodGet, "/v1/offenders?since=4h&limit=1", ""), http.StatusOK, &got)
	if len(got.Offenders) != 1 || got.Offenders[0].Src != "10.1.4.4" {
		t.Fatalf("4h, limit 1: %+v", got.Offenders)
	}
	e.expect(e.do(http.MethodGet, "/v1/offenders?pop=tokyo-1", ""), http.StatusOK, &got)
	if len(got.Offenders) != 2 {
		t.Fatalf("pop tokyo-1: %+v", got.Offenders)
	}
	e.expect(e.do(http.MethodGet, "/v1/offenders?pop=osaka-1", ""), http.StatusOK, &got)
	if len(got.Offenders) != 0 || got.Offenders == nil {
		t.Fatalf("pop without offenders must be an empty list: %+v", got)
	}
	// The wire names are the contract's.
	body := e.do(http.MethodGet, "/v1/offenders", "").Body.String()
	for _, field := range []string{`"since"`, `"truncated"`, `"offenders"`, `"src"`, `"pool"`, `"bridge"`, `"pop"`, `"attempts"`, `"destinations"`, `"first_seen"`, `"last_seen"`, `"observed"`} {
		if !strings.Contains(body, field) {
			t.Fatalf("offenders lacks %s: %s", field, body)
		}
	}
	for _, bad := range []struct{ query, field string }{
		{"since=25h", "since"}, {"since=0s", "since"}, {"since=soon", "since"}, {"since=-1h", "since"},
		{"limit=0", "limit"}, {"limit=10001", "limit"}, {"limit=x", "limit"},
		{"pop=" + strings.Repeat("p", 64), "pop"},
	} {
		e.expectError(e.do(http.MethodGet, "/v1/offenders?"+bad.query, ""), http.StatusBadRequest, CodeBadRequest, bad.field)
	}
	none := newEnv(t, func(c *Config) { c.Cluster = nil })
	none.expectError(none.do(http.MethodGet, "/v1/offenders", ""), http.StatusServiceUnavailable, CodeUnavailable, "")
}

// Each replica knows the bridges it masters: the replica asked merges the
// others' answers; one that does not answer makes the result truncated.
func TestOffendersMergedAcrossReplicas(t *testing.T) {
	at := testClock.Add(-10 * time.Minute)
	trB := offenderTracker(t, offenders.Batch{Bridge: "0000000000000001", At: at, Attempts: []offenders.Attempt{
		offenderAttempt("10.1.3.7", "203.0.113.25", "tokyo-dyn", 5, false),
		offenderAttempt("10.1.3.8", "203.0.113.25", "tokyo-dyn", 50, false),
	}})
	b := newEnv(t, func(c *Config) { c.NodeID = "node-b"; c.Offenders = trB })
	b.putExample()
	srvB := httptest.NewServer(b.handler)
	defer srvB.Close()
	// node-a mastered the bridge earlier in the window: its part of
	// 10.1.3.7's attempts adds up.
	trA := offenderTracker(t, offenders.Batch{Bridge: "0000000000000001", At: at.Add(-time.Minute), Attempts: []offenders.Attempt{
		offenderAttempt("10.1.3.7", "203.0.113.25", "tokyo-dyn", 3, false),
	}})
	cluster := &fakeCluster{replicas: []store.ReplicaInfo{
		{ID: "node-a"}, {ID: "node-b", APIAddr: strings.TrimPrefix(srvB.URL, "http://")},
	}}
	a := newEnv(t, func(c *Config) { c.Store = b.store; c.Cluster = cluster; c.Offenders = trA })
	var got OffendersResponse
	a.expect(a.do(http.MethodGet, "/v1/offenders", ""), http.StatusOK, &got)
	if got.Truncated || len(got.Offenders) != 2 || got.Offenders[0].Src != "10.1.3.8" || got.Offenders[0].Attempts != 50 ||
		got.Offenders[1].Src != "10.1.3.7" || got.Offenders[1].Attempts != 8 || !got.Offenders[1].FirstSeen.Equal(at.Add(-time.Minute)) {
		t.Fatalf("merged: %+v", got)
	}
	a.expect(a.do(http.MethodGet, "/v1/offenders?limit=1", ""), http.StatusOK, &got)
	if len(got.Offenders) != 1 || got.Offenders[0].Attempts != 50 {
		t.Fatalf("merged, limit 1: %+v", got)
	}
	srvB.Close()
	a.expect(a.do(http.MethodGet, "/v1/offenders", ""), http.StatusOK, &got)
	if !got.Truncated || len(got.Offenders) != 1 || got.Offenders[0].Attempts != 3 {
		t.Fatalf("a replica down: %+v", got)
	}
}

// The offender metrics are there, with the tracker's figures, and pass
// promlint (Prometheus's naming and help conventions).
func TestOffenderMetrics(t *testing.T) {
	tr := offenderTracker(t,
		offenders.Batch{Bridge: "0000000000000001", At: time.Now(), Learned: 3, Untracked: 4, Saturated: true, Attempts: []offenders.Attempt{
			offenderAttempt("10.1.3.7", "203.0.113.25", "tokyo-dyn", 40, false),
			offenderAttempt("10.1.9.9", "203.0.113.25", "tokyo-dyn", 7, true),
		}})
	docs := &fakeDocs{}
	e := newEnv(t, func(c *Config) { c.Offenders = tr; c.Cache = docs })
	rev := e.putExample()
	docs.snap = store.Snapshot{Doc: e.load(), Revision: rev, Loaded: true}
	rec := e.do(http.MethodGet, "/metrics", "")
	e.expect(rec, http.StatusOK, nil)
	text := rec.Body.String()
	for _, w := range []string{
		`op25b_offender_attempts_total{dpid="0000000000000001",name="tokyo-1-sub-a",observed="false",pool="tokyo-dyn",pop="tokyo-1"} 40`,
		`op25b_offender_attempts_total{dpid="0000000000000001",name="tokyo-1-sub-a",observed="true",pool="tokyo-dyn",pop="tokyo-1"} 7`,
		`op25b_offender_untracked_attempts_total{dpid="0000000000000001",name="tokyo-1-sub-a",pop="tokyo-1"} 4`,
		`op25b_offender_learned_flows{dpid="0000000000000001",name="tokyo-1-sub-a",pop="tokyo-1"} 3`,
		`op25b_offender_table_full{dpid="0000000000000001",name="tokyo-1-sub-a",pop="tokyo-1"} 1`,
		`op25b_offenders_tracked 2`,
		`op25b_offenders_max_sources 100000`,
		`op25b_offenders_evicted_total 0`,
		`op25b_offenders_truncated 1`,
	} {
		if !strings.Contains(text, w) {
			t.Errorf("metrics lack %q", w)
		}
	}
	var ours []string
	keep := false
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(l, "# HELP ") {
			keep = strings.HasPrefix(l, "# HELP op25b_offender")
		}
		if keep {
			ours = append(ours, l)
		}
	}
	problems, err := promlint.New(strings.NewReader(strings.Join(ours, "\n") + "\n")).Lint()
	if err != nil || len(problems) > 0 {
		t.Errorf("promlint: %v %+v", err, problems)
	}
}
