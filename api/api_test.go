package api

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/op25b/op25b/internal/etcdembed"
	"github.com/op25b/op25b/internal/testenv"
	"github.com/op25b/op25b/topology"
	"github.com/op25b/op25b/topology/store"
)

// sharedEtcd is one embedded etcd for the whole package, started on first
// use (fuzz workers never need it); every test gets its own key prefix, so
// tests stay independent without paying ~1 s of etcd start-up each.
var sharedEtcd struct {
	once   sync.Once
	err    error
	client *clientv3.Client
	stop   func()
	dir    string
	seq    atomic.Int64
}

func TestMain(m *testing.M) {
	code := m.Run()
	if sharedEtcd.client != nil {
		sharedEtcd.client.Close()
	}
	if sharedEtcd.stop != nil {
		sharedEtcd.stop()
	}
	if sharedEtcd.dir != "" {
		os.RemoveAll(sharedEtcd.dir)
	}
	os.Exit(code)
}

func etcdClient(t testing.TB) *clientv3.Client {
	t.Helper()
	sharedEtcd.once.Do(func() {
		dir, err := os.MkdirTemp("", "op25b-api-etcd-")
		if err != nil {
			sharedEtcd.err = err
			return
		}
		sharedEtcd.dir = dir
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		endpoints, stop, err := etcdembed.Start(ctx, dir, slog.New(slog.DiscardHandler), etcdembed.Options{})
		if err != nil {
			sharedEtcd.err = fmt.Errorf("embedded etcd: %w", err)
			return
		}
		sharedEtcd.stop = stop
		sharedEtcd.client, sharedEtcd.err = testenv.NewEtcdClient(endpoints)
	})
	if sharedEtcd.err != nil {
		t.Fatal(sharedEtcd.err)
	}
	return sharedEtcd.client
}

// testClock is inside the contract example's last ftth phase ("block all").
var testClock = time.Date(2007, 1, 10, 0, 0, 0, 0, time.UTC)

type apiEnv struct {
	t       testing.TB
	handler http.Handler
	store   *store.Store
	cfg     Config
}

func newEnv(t testing.TB, configure func(*Config)) *apiEnv {
	t.Helper()
	prefix := fmt.Sprintf("/api-test-%d/", sharedEtcd.seq.Add(1))
	st := store.New(etcdClient(t), prefix, slog.New(slog.DiscardHandler))
	cfg := Config{
		Store:        st,
		Cluster:      st,
		NodeID:       "node-a",
		Logger:       slog.New(slog.DiscardHandler),
		Now:          func() time.Time { return testClock },
		StoreTimeout: 20 * time.Second,
	}
	if configure != nil {
		configure(&cfg)
	}
	h, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return &apiEnv{t: t, handler: h, store: st, cfg: cfg}
}

// do sends one request; headers are "Name: value" strings.
func (e *apiEnv) do(method, path, body string, headers ...string) *httptest.ResponseRecorder {
	e.t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, path, r)
	for _, h := range headers {
		name, value, _ := strings.Cut(h, ":")
		req.Header.Set(strings.TrimSpace(name), strings.TrimSpace(value))
	}
	rec := httptest.NewRecorder()
	e.handler.ServeHTTP(rec, req)
	return rec
}

// expect checks the status and decodes the JSON body into out (if non-nil).
func (e *apiEnv) expect(rec *httptest.ResponseRecorder, status int, out any) {
	e.t.Helper()
	if rec.Code != status {
		e.t.Fatalf("status %d, want %d; body: %s", rec.Code, status, rec.Body.String())
	}
	if out != nil {
		if err := json.Unmarshal(rec.Body.Bytes(), out); err != nil {
			e.t.Fatalf("decode %T: %v; body: %s", out, err, rec.Body.String())
		}
	}
}

// expectError checks an error answer's status, code and field.
func (e *apiEnv) expectError(rec *httptest.ResponseRecorder, status int, code, field string) *Error {
	e.t.Helper()
	var body struct{ Error *Error }
	e.expect(rec, status, &body)
	if body.Error == nil || body.Error.Code != code {
		e.t.Fatalf("error code %+v, want %q; body: %s", body.Error, code, rec.Body.String())
	}
	if field != "*" && body.Error.Field != field {
		e.t.Fatalf("error field %q, want %q; body: %s", body.Error.Field, field, rec.Body.String())
	}
	if body.Error.Message == "" {
		e.t.Fatalf("error without message: %s", rec.Body.String())
	}
	return body.Error
}

// revision is the stored document revision (straight from etcd).
func (e *apiEnv) revision() int64 {
	e.t.Helper()
	_, rev, err := e.store.Load(context.Background())
	if err != nil {
		e.t.Fatalf("load: %v", err)
	}
	return rev
}

func (e *apiEnv) load() *topology.Document {
	e.t.Helper()
	doc, _, err := e.store.Load(context.Background())
	if err != nil {
		e.t.Fatalf("load: %v", err)
	}
	return doc
}

func contractExample(t testing.TB) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "contract-example.json"))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// putExample stores the contract example and returns its revision.
func (e *apiEnv) putExample() int64 {
	e.t.Helper()
	var w writeResponse
	e.expect(e.do(http.MethodPut, "/v1/config", contractExample(e.t)), http.StatusOK, &w)
	if w.Revision <= 0 {
		e.t.Fatalf("write returned revision %d", w.Revision)
	}
	return w.Revision
}
