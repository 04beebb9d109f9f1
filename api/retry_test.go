package api

import (
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/op25b/op25b/topology/store"
)

// Regression (issue 11, "Spurious 409s"): writers without If-Match that
// each changed only their own pool got 409 on 248 of 400 PUTs and 126 of
// 400 DELETEs. Now a write without precondition that loses a race is
// retried inside the server: zero 409s, every pool where its writer left it.
func TestRegressionSpurious409WithoutIfMatch(t *testing.T) {
	e := newEnv(t, nil)
	e.putExample()
	// A second replica on the same etcd prefix: writes through one replica
	// take turns, so races between replicas are what the retries absorb.
	cfg2 := e.cfg
	cfg2.Store = store.New(etcdClient(t), e.store.KeyPrefix(""), slog.New(slog.DiscardHandler))
	h2, err := New(cfg2)
	if err != nil {
		t.Fatal(err)
	}
	replicas := []*apiEnv{e, {t: t, handler: h2, store: cfg2.Store.(*store.Store), cfg: cfg2}}
	const writers, rounds = 8, 12
	var wg sync.WaitGroup
	var mu sync.Mutex
	codes := map[int]int{}
	var failures []string
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := fmt.Sprintf("/v1/pools/writer-%d", w)
			for i := 0; i < rounds; i++ {
				for _, req := range []struct{ method, body string }{
					{http.MethodPut, fmt.Sprintf(`{"prefix": "10.%d.%d.0/24", "kind": "static"}`, 100+w, i)},
					{http.MethodPut, fmt.Sprintf(`{"prefix": "10.%d.%d.0/24", "kind": "dynamic", "service": "ftth"}`, 100+w, i)},
					{http.MethodDelete, ""},
				} {
					rec := replicas[w%2].do(req.method, name, req.body)
					mu.Lock()
					codes[rec.Code]++
					if rec.Code/100 != 2 && len(failures) < 5 {
						failures = append(failures, fmt.Sprintf("%s %s: %d %s", req.method, name, rec.Code, strings.TrimSpace(rec.Body.String())))
					}
					mu.Unlock()
				}
			}
			// Leave each writer's pool in place, to check the end state.
			replicas[w%2].do(http.MethodPut, name, fmt.Sprintf(`{"prefix": "10.%d.255.0/24", "kind": "static"}`, 100+w))
		}()
	}
	wg.Wait()
	t.Logf("answers: %v", codes)
	if codes[http.StatusConflict] != 0 || len(failures) > 0 {
		t.Fatalf("%d conflicts without If-Match; first failures: %s", codes[http.StatusConflict], strings.Join(failures, "\n"))
	}
	doc := e.load()
	for w := 0; w < writers; w++ {
		i := -1
		for j, p := range doc.Pools {
			if p.Name == fmt.Sprintf("writer-%d", w) {
				i = j
			}
		}
		if i < 0 || doc.Pools[i].Prefix != fmt.Sprintf("10.%d.255.0/24", 100+w) {
			t.Errorf("writer-%d's pool is not as its writer left it: %+v", w, doc.Pools)
		}
	}
}

// Whole-document PUTs without precondition racing each other all succeed;
// with a precondition the loser still gets 409, and a delete that became a
// true conflict (the item is now referenced) is 409 referenced, not retried
// into something else.
func TestConflictsThatStay409(t *testing.T) {
	e := newEnv(t, nil)
	rev := e.putExample()
	example := contractExample(t)
	var wg sync.WaitGroup
	var mu sync.Mutex
	codes := map[int]int{}
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 4; i++ {
				body := strings.Replace(example, "10.1.0.0/16", fmt.Sprintf("10.%d.0.0/16", 10+4*w+i), 1)
				rec := e.do(http.MethodPut, "/v1/config", body)
				mu.Lock()
				codes[rec.Code]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if codes[http.StatusOK] != 16 {
		t.Fatalf("whole PUTs without precondition: %v, want 16 × 200", codes)
	}
	e.expectError(e.do(http.MethodPut, "/v1/pools/late", `{"prefix": "10.200.0.0/16", "kind": "static"}`, fmt.Sprintf("If-Match: %d", rev)),
		http.StatusConflict, CodeConflict, "")
	e.expectError(e.do(http.MethodDelete, "/v1/services/ftth", ""), http.StatusConflict, CodeReferenced, "*")
	e.expectError(e.do(http.MethodPut, "/v1/config", example, fmt.Sprintf("If-Match: %d", rev)), http.StatusConflict, CodeConflict, "")
}
