package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/op25b/op25b/topology"
)

// bigDocument is n dynamic /26 pools of one service, one bridge.
func bigDocument(n int, variant int) *topology.Document {
	doc := &topology.Document{
		Services: []topology.Service{{Name: "ftth", Phases: []topology.Phase{{Block: topology.Block{All: true}}}}},
		Relays:   []topology.Relay{{Name: "msa", Prefix: "192.0.2.25/32"}},
		Bridges:  []topology.Bridge{{DPID: "0000000000000001", Name: "br-1", Pop: "tokyo-1"}},
	}
	for i := 0; i < n; i++ {
		doc.Pools = append(doc.Pools, topology.Pool{
			Name:    fmt.Sprintf("p%d", i),
			Prefix:  fmt.Sprintf("10.%d.%d.%d/26", (i>>10)&255, (i>>2)&255, (i&3)*64),
			Kind:    topology.KindDynamic,
			Service: "ftth",
		})
	}
	// The variant changes one pool, as a NOC edit would.
	doc.Pools[0].Prefix = fmt.Sprintf("172.16.%d.0/24", variant)
	return doc
}

func benchBody(b *testing.B, doc *topology.Document) string {
	data, err := json.Marshal(doc)
	if err != nil {
		b.Fatal(err)
	}
	return string(data)
}

// BenchmarkAPI100kPools reports, for a 100k-pool document (~6 MB of JSON)
// on the embedded etcd: a whole PUT through the API, the same write
// straight to the store (the ratio is the API's own cost: read, strict
// parse, validate), a GET, and a dry run (two compiles and a diff).
func BenchmarkAPI100kPools(b *testing.B) {
	e := newEnv(b, nil)
	docs := [2]*topology.Document{bigDocument(100_000, 0), bigDocument(100_000, 1)}
	bodies := [2]string{benchBody(b, docs[0]), benchBody(b, docs[1])}
	b.Logf("document: %d pools, %.1f MB of JSON", len(docs[0].Pools), float64(len(bodies[0]))/1e6)
	put := func(i int) {
		rec := e.do(http.MethodPut, "/v1/config", bodies[i%2])
		if rec.Code != http.StatusOK {
			b.Fatalf("PUT: %d %s", rec.Code, rec.Body.String()[:200])
		}
	}
	put(1)
	var apiPut, storePut, get, dry time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		put(i)
		apiPut += time.Since(start)

		start = time.Now()
		if _, err := e.store.Replace(context.Background(), docs[(i+1)%2], storeOpts()); err != nil {
			b.Fatal(err)
		}
		storePut += time.Since(start)

		start = time.Now()
		rec := e.do(http.MethodGet, "/v1/config", "")
		if rec.Code != http.StatusOK {
			b.Fatalf("GET: %d", rec.Code)
		}
		get += time.Since(start)

		start = time.Now()
		rec = e.do(http.MethodPut, "/v1/config?dry_run=true", bodies[i%2])
		if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "172.16.") {
			b.Fatalf("dry run: %d", rec.Code)
		}
		dry += time.Since(start)
	}
	n := time.Duration(b.N)
	b.ReportMetric((apiPut / n).Seconds(), "s/api-put")
	b.ReportMetric((storePut / n).Seconds(), "s/store-replace")
	b.ReportMetric((get / n).Seconds(), "s/api-get")
	b.ReportMetric((dry / n).Seconds(), "s/api-dry-run")
	b.Logf("ratio api PUT / store.Replace = %.2f (PUT %v, Replace %v, GET %v, dry run %v)",
		float64(apiPut)/float64(storePut), apiPut/n, storePut/n, get/n, dry/n)
}
