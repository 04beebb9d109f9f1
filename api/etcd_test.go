package api

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/op25b/op25b/topology"
	"github.com/op25b/op25b/topology/store"
)

type fakeFootprint struct{ f store.Footprint }

func (f *fakeFootprint) Current() store.Footprint { return f.f }

// fullStore is a memStore whose etcd is out of space.
type fullStore struct{ *memStore }

func (f fullStore) Replace(ctx context.Context, doc *topology.Document, opts store.WriteOptions) (int64, error) {
	return 0, fmt.Errorf("write generation: %w (%w: mvcc: database space exceeded)", store.ErrNoSpace, store.ErrUnavailable)
}

func (f fullStore) Update(ctx context.Context, opts store.WriteOptions, mutate func(*topology.Document) error) (int64, error) {
	return 0, fmt.Errorf("commit: %w (%w: mvcc: database space exceeded)", store.ErrNoSpace, store.ErrUnavailable)
}

// A NOSPACE alarm is surfaced in /readyz, /v1/status and the metrics, and
// writes are refused with 503 etcd_nospace (not a generic unavailable, not
// a hang).
func TestNoSpaceSurfacedAndWritesRefused(t *testing.T) {
	etcd := &fakeFootprint{store.Footprint{DBSize: 2 << 30, DBSizeInUse: 2 << 30, Alarms: []string{"NOSPACE"}, NoSpace: true, CheckedAt: time.Now()}}
	e := newEnv(t, func(c *Config) {
		c.Store = fullStore{newMemStore()}
		c.Etcd = etcd
		c.Metrics = NewMetrics(nil)
	})
	e.expectError(e.do(http.MethodGet, "/readyz", ""), http.StatusServiceUnavailable, CodeNoSpace, "")
	e.expectError(e.do(http.MethodPut, "/v1/config", contractExample(t)), http.StatusServiceUnavailable, CodeNoSpace, "")
	e.expectError(e.do(http.MethodPut, "/v1/pools/p", `{"prefix": "10.9.0.0/16", "kind": "static"}`), http.StatusServiceUnavailable, CodeNoSpace, "")
	var st StatusResponse
	e.expect(e.do(http.MethodGet, "/v1/status", ""), http.StatusOK, &st)
	if st.Etcd == nil || !st.Etcd.NoSpace || len(st.Etcd.Alarms) != 1 || st.Etcd.DBSizeBytes != 2<<30 {
		t.Fatalf("status etcd = %+v", st.Etcd)
	}
	metrics := e.do(http.MethodGet, "/metrics", "").Body.String()
	for _, want := range []string{`op25b_etcd_alarm{alarm="NOSPACE"} 1`, "op25b_etcd_db_size_bytes 2.147483648e+09"} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	// Alarm gone: ready again, metric 0.
	etcd.f = store.Footprint{DBSize: 10 << 20, DBSizeInUse: 9 << 20, Alarms: []string{}}
	e2 := newEnv(t, func(c *Config) {
		c.Store = newMemStore()
		c.Etcd = etcd
		c.Metrics = NewMetrics(nil)
		c.Logger = slog.New(slog.DiscardHandler)
	})
	e2.expect(e2.do(http.MethodGet, "/readyz", ""), http.StatusOK, nil)
	if m := e2.do(http.MethodGet, "/metrics", "").Body.String(); !strings.Contains(m, `op25b_etcd_alarm{alarm="NOSPACE"} 0`) {
		t.Errorf("NOSPACE metric not 0 after the alarm cleared")
	}
}
