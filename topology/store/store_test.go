package store_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/op25b/op25b/internal/testenv"
	"github.com/op25b/op25b/topology"
	"github.com/op25b/op25b/topology/store"
)

func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("STORE_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func newStore(t testing.TB) (*store.Store, *testenv.Etcd) {
	e := testenv.EmbeddedEtcd(t)
	return store.New(e.Client, store.DefaultPrefix, testLogger(t)), e
}

func sampleDoc() *topology.Document {
	yes := true
	no := false
	return &topology.Document{
		Ports: []int{25},
		Pools: []topology.Pool{
			{Name: "tokyo-dyn", Prefix: "10.1.0.0/16", Kind: topology.KindDynamic, Service: "ftth"},
			{Name: "tokyo-fixed", Prefix: "10.1.200.0/29", Kind: topology.KindStatic},
			{Name: "tokyo-v6", Prefix: "2001:db8:1::/48", Kind: topology.KindDynamic, Service: "v6plus"},
		},
		Relays:       []topology.Relay{{Name: "msa", Prefix: "192.0.2.25/32"}},
		Destinations: []topology.DestinationSet{{Name: "mobile-carriers", Prefixes: []string{"198.51.100.0/24", "2001:db8:ffff::/48"}}},
		Services: []topology.Service{
			{Name: "ftth", Phases: []topology.Phase{
				{From: "2006-11-01T00:00:00+09:00", Block: topology.Block{Sets: []string{"mobile-carriers"}}, Relays: &yes},
				{From: "2006-12-01T00:00:00+09:00", Block: topology.Block{All: true}, Relays: &yes, Pops: []string{"osaka-1"}},
			}},
			{Name: "v6plus", Phases: []topology.Phase{{Block: topology.Block{All: true}, Relays: &no}}},
		},
		Bridges: []topology.Bridge{{DPID: "0000000000000001", Name: "tokyo-1-sub-a", Pop: "tokyo-1"}},
	}
}

// bigDoc returns a valid document with n dynamic /32 pools.
func bigDoc(n int, tag string) *topology.Document {
	d := sampleDoc()
	d.Pools = d.Pools[:0]
	for i := 0; i < n; i++ {
		d.Pools = append(d.Pools, topology.Pool{
			Name:    fmt.Sprintf("p%s-%06d", tag, i),
			Prefix:  fmt.Sprintf("10.%d.%d.%d/32", i>>16, (i>>8)&255, i&255),
			Kind:    topology.KindDynamic,
			Service: "ftth",
		})
	}
	return d
}

func TestLoadEmpty(t *testing.T) {
	s, _ := newStore(t)
	doc, rev, err := s.Load(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if rev != 0 || len(doc.Pools) != 0 || doc.Pools == nil {
		t.Fatalf("empty store: rev %d doc %+v", rev, doc)
	}
}

func TestReplaceLoadRoundTrip(t *testing.T) {
	s, _ := newStore(t)
	ctx := ctxT(t)
	rev, err := s.Replace(ctx, sampleDoc(), store.WriteOptions{Who: "noc"})
	if err != nil {
		t.Fatal(err)
	}
	doc, got, err := s.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got != rev {
		t.Fatalf("Load revision %d, Replace returned %d", got, rev)
	}
	if !equalJSON(t, doc, sampleDoc()) {
		t.Fatalf("round trip differs:\n got %s\nwant %s", mustJSON(t, doc), mustJSON(t, sampleDoc()))
	}
	// Same document again: nothing to write, same revision.
	again, err := s.Replace(ctx, sampleDoc(), store.WriteOptions{Who: "noc"})
	if err != nil || again != rev {
		t.Fatalf("idempotent replace: rev %d err %v, want %d", again, err, rev)
	}
}
