package api

import (
	"bytes"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"runtime/metrics"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// nestedBodies are 16 MB bodies of nesting, the shape of the probe that
// took op25bd to 2.27 GB RSS: bare, inside a known key (which the old
// byte scanner stacked one frame per level for), and inside a value whose
// type is a list.
func nestedBodies(size int) map[string][]byte {
	nest := func(prefix, open string) []byte {
		b := make([]byte, 0, size)
		b = append(b, prefix...)
		for len(b)+len(open) <= size {
			b = append(b, open...)
		}
		return b
	}
	return map[string][]byte{
		"bare-lists":          nest("", "["),
		"pools-lists":         nest(`{"pools":`, "["),
		"block-lists":         nest(`{"services":[{"name":"s","phases":[{"block":`, "["),
		"objects-under-key":   nest(`{"ports":`, `{"a":`),
		"revision-then-lists": nest(`{"revision":0,"pools":`, "["),
	}
}

// heapPeak samples the live heap while f runs and returns the highest
// value seen above the level before f, plus the bytes f allocated in all.
func heapPeak(f func()) (peak, allocated uint64) {
	runtime.GC()
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(sample)
	base := sample[0].Value.Uint64()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	var max atomic.Uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			metrics.Read(s)
			if v := s[0].Value.Uint64(); v > base && v-base > max.Load() {
				max.Store(v - base)
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	f()
	close(stop)
	wg.Wait()
	runtime.ReadMemStats(&after)
	return max.Load(), after.TotalAlloc - before.TotalAlloc
}

// nestedBodyHeapBound is the stated bound for one 16 MB request: the body
// itself (16 MB, read once into one buffer) plus parser state that does
// not grow with nesting. The probe measured 2.27 GB RSS for one request.
const nestedBodyHeapBound = 32 << 20

// Regression (issue 11, "Memory blow-up from one request"): a 16 MB body
// of nested '[' sent with ?dry_run=true (a read token is enough) took
// op25bd to 2.27 GB RSS and 14 s of CPU. Now every such body is refused as
// invalid JSON with memory bounded by the body size, in well under a
// second of CPU.
func TestRegressionMemoryBlowUpFromOneRequest(t *testing.T) {
	mem := newMemStore()
	h, err := New(Config{Store: mem, Logger: slog.New(slog.DiscardHandler), Now: func() time.Time { return testClock }})
	if err != nil {
		t.Fatal(err)
	}
	for name, body := range nestedBodies(16 << 20) {
		for _, path := range []string{"/v1/config?dry_run=true", "/v1/config", "/v1/pools/p"} {
			var rec *httptest.ResponseRecorder
			start := time.Now()
			peak, allocated := heapPeak(func() {
				req := httptest.NewRequest(http.MethodPut, path, bytes.NewReader(body))
				rec = httptest.NewRecorder()
				h.ServeHTTP(rec, req)
			})
			elapsed := time.Since(start)
			t.Logf("%s %s: %d, peak heap +%.1f MB, allocated %.1f MB, %v", name, path, rec.Code, float64(peak)/(1<<20), float64(allocated)/(1<<20), elapsed.Round(time.Millisecond))
			if rec.Code != http.StatusBadRequest {
				t.Errorf("%s %s: status %d, want 400: %.300s", name, path, rec.Code, rec.Body.String())
			}
			if allocated > nestedBodyHeapBound {
				t.Errorf("%s %s: allocated %d bytes for one request, bound %d", name, path, allocated, nestedBodyHeapBound)
			}
			if elapsed > 20*time.Second { // behaviour, not timing: the old code took 14 s of CPU
				t.Errorf("%s %s: took %v", name, path, elapsed)
			}
		}
	}
	if mem.writes != 0 {
		t.Errorf("a refused body stored something (%d writes)", mem.writes)
	}
}

// BenchmarkNestedBody16MB reports the memory one hostile 16 MB nested body
// costs the API: peak-heap-MB (live heap above the idle level, sampled
// every millisecond) and alloc-MB (everything allocated by the request),
// against ref-body-MB, the body's own size, measured in the same run.
func BenchmarkNestedBody16MB(b *testing.B) {
	h, err := New(Config{Store: newMemStore(), Logger: slog.New(slog.DiscardHandler), Now: func() time.Time { return testClock }})
	if err != nil {
		b.Fatal(err)
	}
	body := nestedBodies(16 << 20)["pools-lists"]
	var peak, allocated uint64
	for b.Loop() {
		p, a := heapPeak(func() {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodPut, "/v1/config?dry_run=true", bytes.NewReader(body)))
			if rec.Code != http.StatusBadRequest {
				b.Fatalf("status %d", rec.Code)
			}
		})
		peak, allocated = max(peak, p), max(allocated, a)
	}
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MB")
	b.ReportMetric(float64(allocated)/(1<<20), "alloc-MB")
	b.ReportMetric(float64(len(body))/(1<<20), "ref-body-MB")
	b.ReportMetric(float64(peak)/float64(len(body)), "peak/body")
}

// Regression (issue 11, "A precondition bypass"): with a top-level
// "revision" key the body went through a map first, so duplicate keys were
// no longer refused: `{…,"pools":[],"revision":0}` after a full pools list
// wiped every pool with 200, and `"revision":1,"revision":0` silently
// dropped a stale precondition (last wins).
func TestRegressionPreconditionBypassWithRevisionKey(t *testing.T) {
	e := newEnv(t, nil)
	rev := e.putExample()
	before := e.load()
	example := strings.TrimSpace(contractExample(t))
	body := strings.TrimSuffix(example, "}")

	// A second "pools" (empty) after the full list, with "revision": 0
	// (no precondition) or the current revision: refused, nothing stored.
	for _, tail := range []string{`,"pools":[],"revision":0}`, fmt.Sprintf(`,"pools":[],"revision":%d}`, rev), `,"revision":0,"pools":[]}`} {
		for _, path := range []string{"/v1/config", "/v1/config?dry_run=true"} {
			e.expectError(e.do(http.MethodPut, path, body+tail), http.StatusBadRequest, CodeInvalidJSON, "pools")
		}
	}
	// Two revisions: the stale one is not dropped in favour of the other.
	stale := fmt.Sprintf(`{"revision":%d,"revision":%d,"ports":[25]}`, rev, 0)
	e.expectError(e.do(http.MethodPut, "/v1/config", stale), http.StatusBadRequest, CodeInvalidJSON, "revision")
	stale = fmt.Sprintf(`{"revision":%d,"revision":%d,"ports":[25]}`, rev-1, rev)
	e.expectError(e.do(http.MethodPut, "/v1/config", stale), http.StatusBadRequest, CodeInvalidJSON, "revision")
	// Other shapes of "revision" and of duplicates elsewhere.
	for _, tc := range []struct{ body, field string }{
		{`{"revision":-1}`, "revision"},
		{`{"revision":"5"}`, "revision"},
		{`{"revision":null}`, "revision"},
		{`{"revision":1.5}`, "revision"},
		{`{"revision":99999999999999999999}`, "revision"},
		{`{"Revision":1}`, "Revision"},
		{`{"revision":0,"pools":[{"name":"a","name":"b"}]}`, "pools[0].name"},
		{`{"revision":0,"services":[{"name":"s","phases":[{"block":"all","block":[]}]}]}`, "services[0].phases[0].block"},
	} {
		e.expectError(e.do(http.MethodPut, "/v1/config", tc.body), http.StatusBadRequest, CodeInvalidJSON, tc.field)
	}
	if got := e.revision(); got != rev {
		t.Fatalf("revision moved from %d to %d", rev, got)
	}
	if after := e.load(); len(after.Pools) != len(before.Pools) {
		t.Fatalf("pools changed: %d → %d", len(before.Pools), len(after.Pools))
	}
	// The honest use still works: GET, edit, PUT with the body's revision.
	e.expect(e.do(http.MethodPut, "/v1/config", strings.Replace(body, `"ports": [25]`, `"ports": [25, 587]`, 1)+fmt.Sprintf(`,"revision":%d}`, rev)), http.StatusOK, nil)
	e.expectError(e.do(http.MethodPut, "/v1/config", body+fmt.Sprintf(`,"revision":%d}`, rev)), http.StatusConflict, CodeConflict, "")
	// Items refuse duplicates the same way, and "revision" is not an item field.
	e.expectError(e.do(http.MethodPut, "/v1/pools/x", `{"prefix":"10.9.0.0/16","kind":"static","kind":"dynamic"}`), http.StatusBadRequest, CodeInvalidJSON, "kind")
	e.expectError(e.do(http.MethodPut, "/v1/pools/x", `{"prefix":"10.9.0.0/16","kind":"static","revision":0}`), http.StatusBadRequest, CodeInvalidJSON, "revision")
}
