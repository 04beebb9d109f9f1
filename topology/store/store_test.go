package store_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/op25b/op25b/internal/testenv"
	"github.com/op25b/op25b/topology"
	"github.com/op25b/op25b/topology/store"
)

// testLogger logs to stderr with STORE_TEST_LOG set; otherwise it keeps
// the logs and prints them only if the test fails.
func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("STORE_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	buf := &lockedBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("store logs:\n%s", buf.String())
		}
	})
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
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

func TestReplaceRejectsInvalidAndStoresNothing(t *testing.T) {
	s, _ := newStore(t)
	ctx := ctxT(t)
	rev, err := s.Replace(ctx, sampleDoc(), store.WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	bad := sampleDoc()
	bad.Pools[0].Prefix = "10.1.0.1/16" // host bits set
	_, err = s.Replace(ctx, bad, store.WriteOptions{})
	var verr *topology.ValidationError
	if !errors.As(err, &verr) {
		t.Fatalf("Replace(invalid) = %v, want *topology.ValidationError", err)
	}
	_, err = s.Update(ctx, store.WriteOptions{}, func(d *topology.Document) error {
		d.Pools[0].Service = "no-such-service"
		return nil
	})
	if !errors.As(err, &verr) {
		t.Fatalf("Update(invalid) = %v, want *topology.ValidationError", err)
	}
	doc, got, err := s.Load(ctx)
	if err != nil || got != rev || !equalJSON(t, doc, sampleDoc()) {
		t.Fatalf("after rejected writes: rev %d (want %d) err %v doc %s", got, rev, err, mustJSON(t, doc))
	}
	if recs, _ := s.Audit(ctx, 0, 0); len(recs) != 1 {
		t.Fatalf("audit has %d records, want 1 (rejected writes leave none)", len(recs))
	}
}

func TestConditionalWrites(t *testing.T) {
	s, _ := newStore(t)
	ctx := ctxT(t)
	// Creating the first document with If-Match of a nonexistent revision fails.
	if _, err := s.Replace(ctx, sampleDoc(), store.WriteOptions{IfRevision: 12345}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("Replace(IfRevision on empty store) = %v, want ErrConflict", err)
	}
	r1, err := s.Replace(ctx, sampleDoc(), store.WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	d2 := sampleDoc()
	d2.Relays = append(d2.Relays, topology.Relay{Name: "msa2", Prefix: "192.0.2.26/32"})
	r2, err := s.Replace(ctx, d2, store.WriteOptions{IfRevision: r1})
	if err != nil || r2 <= r1 {
		t.Fatalf("Replace(IfRevision current) = %d, %v", r2, err)
	}
	// A client still holding r1 must not overwrite r2.
	if _, err := s.Replace(ctx, sampleDoc(), store.WriteOptions{IfRevision: r1}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("Replace(stale IfRevision) = %v, want ErrConflict", err)
	}
	called := false
	if _, err := s.Update(ctx, store.WriteOptions{IfRevision: r1}, func(*topology.Document) error { called = true; return nil }); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("Update(stale IfRevision) = %v, want ErrConflict", err)
	}
	if called {
		t.Fatal("mutate called although IfRevision was stale")
	}
	r3, err := s.Update(ctx, store.WriteOptions{IfRevision: r2}, func(d *topology.Document) error {
		d.Relays = d.Relays[:1]
		return nil
	})
	if err != nil || r3 <= r2 {
		t.Fatalf("Update(IfRevision current) = %d, %v", r3, err)
	}
	doc, rev, err := s.Load(ctx)
	if err != nil || rev != r3 || !equalJSON(t, doc, sampleDoc()) {
		t.Fatalf("Load = rev %d err %v doc %s", rev, err, mustJSON(t, doc))
	}
}

func TestUpdateMutateErrorUnchanged(t *testing.T) {
	s, _ := newStore(t)
	ctx := ctxT(t)
	rev, err := s.Replace(ctx, sampleDoc(), store.WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	myErr := fmt.Errorf("pool %q: %w", "nope", store.ErrNotFound)
	_, err = s.Update(ctx, store.WriteOptions{}, func(d *topology.Document) error {
		d.Pools = nil // must not be written
		return myErr
	})
	if err != myErr {
		t.Fatalf("Update returned %v, want the mutate error unchanged", err)
	}
	if _, got, _ := s.Load(ctx); got != rev {
		t.Fatalf("revision moved to %d after failed mutate", got)
	}
}

// barrier lets n goroutines proceed only once all of them arrived.
func barrier(n int) func() {
	var mu sync.Mutex
	arrived := 0
	all := make(chan struct{})
	return func() {
		mu.Lock()
		arrived++
		if arrived == n {
			close(all)
		}
		mu.Unlock()
		<-all
	}
}

func TestConflictingWriters(t *testing.T) {
	for _, tc := range []struct {
		name  string
		pools int // enough pools make each write a new generation
	}{
		{"in-place", 1},
		{"new-generation", 500},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := newStore(t)
			ctx := ctxT(t)
			if _, err := s.Replace(ctx, sampleDoc(), store.WriteOptions{}); err != nil {
				t.Fatal(err)
			}
			wait := barrier(2)
			errs := make([]error, 2)
			revs := make([]int64, 2)
			var wg sync.WaitGroup
			for w := 0; w < 2; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					revs[w], errs[w] = s.Update(ctx, store.WriteOptions{Who: fmt.Sprintf("writer-%d", w)}, func(d *topology.Document) error {
						for i := 0; i < tc.pools; i++ {
							d.Pools = append(d.Pools, topology.Pool{
								Name: fmt.Sprintf("w%d-%d", w, i), Prefix: fmt.Sprintf("10.%d.%d.%d/32", 100+w, i>>8, i&255),
								Kind: topology.KindStatic,
							})
						}
						wait() // both have loaded the same revision before either writes
						return nil
					})
				}()
			}
			wg.Wait()
			winner := -1
			for w, err := range errs {
				switch {
				case err == nil:
					if winner != -1 {
						t.Fatalf("both writers succeeded (revisions %v): a merge, not a conflict", revs)
					}
					winner = w
				case errors.Is(err, store.ErrConflict):
				default:
					t.Fatalf("writer %d: %v", w, err)
				}
			}
			if winner == -1 {
				t.Fatalf("no writer won: %v", errs)
			}
			doc, rev, err := s.Load(ctx)
			if err != nil || rev != revs[winner] {
				t.Fatalf("Load: rev %d (winner wrote %d) err %v", rev, revs[winner], err)
			}
			if want := 3 + tc.pools; len(doc.Pools) != want {
				t.Fatalf("%d pools stored, want %d (only the winner's)", len(doc.Pools), want)
			}
			for _, p := range doc.Pools {
				if p.Name[0] == 'w' && p.Name[1] != byte('0'+winner) {
					t.Fatalf("loser's pool %s was stored", p.Name)
				}
			}
			recs, err := s.Audit(ctx, 10, 0)
			if err != nil || len(recs) != 2 || recs[0].Who != fmt.Sprintf("writer-%d", winner) {
				t.Fatalf("audit = %+v, %v; want the initial write and the winner's", recs, err)
			}
		})
	}
}

// TestReplaceDeletesOrphanGenerations: a replace that died after writing
// part of its generation (never flipped) leaves keys that the next
// new-generation write removes; a generation read at or after that write's
// flip (a writer still in progress) is left alone.
func TestReplaceDeletesOrphanGenerations(t *testing.T) {
	s, e := newStore(t)
	ctx := ctxT(t)
	if _, err := s.Replace(ctx, sampleDoc(), store.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	orphan := s.GenerationKey("0000000000000001.deadbeef") + "pools/half-written"
	inProgress := s.GenerationKey("7fffffffffffffff.cafecafe") + "pools/being-written"
	for _, k := range []string{orphan, inProgress} {
		if _, err := e.Client.Put(ctx, k, `{}`); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Replace(ctx, bigDoc(200, "n"), store.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	if resp, err := e.Client.Get(ctx, orphan); err != nil || len(resp.Kvs) != 0 {
		t.Errorf("orphan generation still there (%v)", err)
	}
	if resp, err := e.Client.Get(ctx, inProgress); err != nil || len(resp.Kvs) != 1 {
		t.Errorf("generation of a writer in progress was deleted (%v)", err)
	}
	if doc, _, err := s.Load(ctx); err != nil || !equalJSON(t, doc, bigDoc(200, "n")) {
		t.Fatalf("Load after replace: %v", err)
	}
}

// TestLoadSeesHandEdits: reads may reuse what the Store last read or wrote,
// but never across a change made behind its back.
func TestLoadSeesHandEdits(t *testing.T) {
	s, e := newStore(t)
	ctx := ctxT(t)
	// Written in a different order than Load returns it.
	doc := sampleDoc()
	doc.Pools[0], doc.Pools[2] = doc.Pools[2], doc.Pools[0]
	if _, err := s.Replace(ctx, doc, store.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	got, _, err := s.Load(ctx)
	if err != nil || !equalJSON(t, got, sampleDoc()) {
		t.Fatalf("Load after Replace = %s, %v; want lists sorted by name", mustJSON(t, got), err)
	}
	got.Pools = nil // the caller owns what Load returns
	gen := s.GenerationKey(currentGeneration(t, s))
	if _, err := e.Client.Delete(ctx, gen+"pools/tokyo-fixed"); err != nil {
		t.Fatal(err)
	}
	got, _, err = s.Load(ctx)
	if err != nil || len(got.Pools) != 2 {
		t.Fatalf("Load after a hand delete: %d pools, %v", len(got.Pools), err)
	}
	fresh, _, err := store.New(s.Client(), "", nil).Load(ctx)
	if err != nil || !equalJSON(t, got, fresh) {
		t.Fatalf("remembered %s, fresh read %s (%v)", mustJSON(t, got), mustJSON(t, fresh), err)
	}
	if _, err := e.Client.Put(ctx, gen+"relays/msa", `{"name":"msa","prefix":"192.0.2.0/16"}`); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Load(ctx); !errors.Is(err, store.ErrInvalidStored) {
		t.Fatalf("Load after a bad hand edit = %v, want ErrInvalidStored", err)
	}
}

// TestReplaceRejectsItemTooBigForEtcd: one item over etcd's request limit
// (a destination set of 60k prefixes, allowed by validation) is a
// validation error naming it, not a 500 or a half-written generation.
func TestReplaceRejectsItemTooBigForEtcd(t *testing.T) {
	s, _ := newStore(t)
	ctx := ctxT(t)
	doc := sampleDoc()
	for i := 0; i < 60000; i++ {
		doc.Destinations[0].Prefixes = append(doc.Destinations[0].Prefixes, fmt.Sprintf("2001:db8:%x:%x::/64", i>>8+1, i&255+1))
	}
	if err := topology.Validate(doc); err != nil {
		t.Skipf("validation already refuses this document: %.200v", err)
	}
	_, err := s.Replace(ctx, doc, store.WriteOptions{})
	var verr *topology.ValidationError
	if !errors.As(err, &verr) || len(verr.Errors) != 1 || verr.Errors[0].Field != "destinations[0]" {
		t.Fatalf("Replace = %v, want a validation error on destinations[0]", err)
	}
	if _, rev, err := s.Load(ctx); err != nil || rev != 0 {
		t.Fatalf("something was stored: rev %d, %v", rev, err)
	}
}
