package store_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/op25b/op25b/internal/testenv"
	"github.com/op25b/op25b/topology"
	"github.com/op25b/op25b/topology/store"
)

// runCache starts c.Run for the duration of the test.
func runCache(t *testing.T, c *store.Cache) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = c.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
}

// waitSnapshot waits (generously) until cond holds for the cache's snapshot.
func waitSnapshot(t *testing.T, c *store.Cache, what string, cond func(store.Snapshot) bool) store.Snapshot {
	t.Helper()
	deadline := time.After(60 * time.Second)
	for {
		ch := c.Changed()
		snap := c.Current()
		if cond(snap) {
			return snap
		}
		select {
		case <-ch:
		case <-time.After(500 * time.Millisecond): // also re-check without a change
		case <-deadline:
			t.Fatalf("timed out waiting for %s; snapshot: rev %d loaded %v err %v", what, snap.Revision, snap.Loaded, snap.Err)
		}
	}
}

// The cache of a replica follows what other replicas write, through its
// watch: in-place commits applied from the events, new generations read.
func TestCacheFollowsWrites(t *testing.T) {
	s, e := newStore(t) // the other replica's store: its writes reach the cache only through etcd
	ctx := ctxT(t)
	var logs lockedBuffer
	c := store.NewCache(store.New(e.Client, store.DefaultPrefix, testLogger(t)), slog.New(slog.NewTextHandler(&logs, nil)))
	if c.Healthy() == nil {
		t.Fatal("Healthy before Run should report not loaded")
	}
	runCache(t, c)
	waitSnapshot(t, c, "empty document", func(s store.Snapshot) bool { return s.Loaded && s.Revision == 0 })
	if err := c.Healthy(); err != nil {
		t.Fatalf("Healthy after load: %v", err)
	}
	r1, err := s.Replace(ctx, sampleDoc(), store.WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	snap := waitSnapshot(t, c, "first document", func(s store.Snapshot) bool { return s.Revision == r1 })
	if !equalJSON(t, snap.Doc, sampleDoc()) || snap.Err != nil {
		t.Fatalf("snapshot = %s, err %v", mustJSON(t, snap.Doc), snap.Err)
	}
	r2, err := s.Update(ctx, store.WriteOptions{}, func(d *topology.Document) error {
		d.Pools = d.Pools[1:]
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	snap = waitSnapshot(t, c, "update", func(s store.Snapshot) bool { return s.Revision == r2 })
	if len(snap.Doc.Pools) != 2 {
		t.Fatalf("after update: %d pools", len(snap.Doc.Pools))
	}
	// A whole replace through a new generation.
	r3, err := s.Replace(ctx, bigDoc(300, "x"), store.WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	snap = waitSnapshot(t, c, "replace", func(s store.Snapshot) bool { return s.Revision == r3 })
	if !equalJSON(t, snap.Doc, bigDoc(300, "x")) {
		t.Fatal("cache does not hold the replaced document")
	}

	// Per-item writes are applied from the watch events; after each one the
	// cache must hold exactly what a full Load returns.
	yes := true
	steps := []func(d *topology.Document){
		func(d *topology.Document) { // insert in the middle of the sorted list
			d.Pools = append(d.Pools, topology.Pool{Name: "px-000150a", Prefix: "10.9.0.0/16", Kind: topology.KindStatic})
		},
		func(d *topology.Document) { d.Pools[7].Kind, d.Pools[7].Service = topology.KindStatic, "" },
		func(d *topology.Document) { d.Pools = append(d.Pools[:3], d.Pools[4:]...) },
		func(d *topology.Document) { d.Ports = []int{25, 2525} },
		func(d *topology.Document) { d.Ports = nil },
		func(d *topology.Document) {
			d.Bridges = append(d.Bridges, topology.Bridge{DPID: "00000000000000aa", Name: "osaka-1-sub-a", Pop: "osaka-1"})
			d.Services = append(d.Services, topology.Service{Name: "biz", Phases: []topology.Phase{{Block: topology.Block{All: true}, Relays: &yes}}})
		},
		func(d *topology.Document) { d.Bridges = d.Bridges[:1]; d.Relays = nil },
	}
	before := strings.Count(logs.String(), "document updated")
	for i, step := range steps {
		rev, err := s.Update(ctx, store.WriteOptions{}, func(d *topology.Document) error { step(d); return nil })
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		snap := waitSnapshot(t, c, fmt.Sprintf("step %d", i), func(s store.Snapshot) bool { return s.Revision == rev })
		want, _, err := s.Load(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !equalJSON(t, snap.Doc, want) || snap.Err != nil {
			t.Fatalf("step %d: cache differs from Load:\n cache %s\n load  %s", i, mustJSON(t, snap.Doc), mustJSON(t, want))
		}
	}
	if n := strings.Count(logs.String(), "document updated") - before; n != len(steps) {
		t.Errorf("%d incremental updates for %d per-item writes; logs:\n%s", n, len(steps), logs.String())
	}
}

func TestCacheKeepsDocumentWhenCommitRecordDeleted(t *testing.T) {
	s, e := newStore(t)
	ctx := ctxT(t)
	rev, err := s.Replace(ctx, sampleDoc(), store.WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c := store.NewCache(s, testLogger(t))
	runCache(t, c)
	waitSnapshot(t, c, "document", func(s store.Snapshot) bool { return s.Revision == rev })
	if _, err := e.Client.Delete(ctx, s.CurrentKey()); err != nil {
		t.Fatal(err)
	}
	snap := waitSnapshot(t, c, "error report", func(s store.Snapshot) bool { return s.Err != nil })
	if snap.Revision != rev || !equalJSON(t, snap.Doc, sampleDoc()) {
		t.Fatalf("cache dropped its document: %+v", snap)
	}
}

// currentGeneration reads the commit record like an operator would.
func currentGeneration(t *testing.T, s *store.Store) string {
	t.Helper()
	resp, err := s.Client().Get(ctxT(t), s.CurrentKey())
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("get commit record: %v", err)
	}
	v := string(resp.Kvs[0].Value)
	i := strings.Index(v, `"generation":"`)
	rest := v[i+len(`"generation":"`):]
	return rest[:strings.Index(rest, `"`)]
}

func TestCacheKeepsLastGoodOnInvalidValue(t *testing.T) {
	for _, tc := range []struct {
		name, key, value string
	}{
		{"not-json", "pools/tokyo-dyn", "{garbage"},
		{"unknown-field", "pools/tokyo-dyn", `{"name":"tokyo-dyn","prefix":"10.1.0.0/16","kind":"dynamic","service":"ftth","extra":1}`},
		{"fails-validation", "pools/tokyo-dyn", `{"name":"tokyo-dyn","prefix":"10.1.0.1/16","kind":"dynamic","service":"ftth"}`},
		{"name-mismatch", "pools/tokyo-dyn", `{"name":"other","prefix":"10.1.0.0/16","kind":"dynamic","service":"ftth"}`},
		{"unknown-key", "gremlins/x", `{}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, e := newStore(t)
			ctx := ctxT(t)
			good, err := s.Replace(ctx, sampleDoc(), store.WriteOptions{})
			if err != nil {
				t.Fatal(err)
			}
			c := store.NewCache(s, testLogger(t))
			runCache(t, c)
			waitSnapshot(t, c, "good document", func(s store.Snapshot) bool { return s.Revision == good })

			// Written by hand, outside op25b (etcdctl put).
			key := s.GenerationKey(currentGeneration(t, s)) + tc.key
			if _, err := e.Client.Put(ctx, key, tc.value); err != nil {
				t.Fatal(err)
			}
			snap := waitSnapshot(t, c, "error report", func(s store.Snapshot) bool { return s.Err != nil })
			if !errors.Is(snap.Err, store.ErrInvalidStored) || snap.Revision != good || !equalJSON(t, snap.Doc, sampleDoc()) || !snap.Loaded {
				t.Fatalf("snapshot after bad value: rev %d err %v doc %s", snap.Revision, snap.Err, mustJSON(t, snap.Doc))
			}
			if err := c.Healthy(); err != nil {
				t.Fatalf("Healthy with a last good document: %v", err)
			}
			if _, _, err := s.Load(ctx); !errors.Is(err, store.ErrInvalidStored) {
				t.Fatalf("Load of invalid stored document = %v, want ErrInvalidStored", err)
			}
			if _, err := s.Update(ctx, store.WriteOptions{}, func(*topology.Document) error { return nil }); !errors.Is(err, store.ErrInvalidStored) {
				t.Fatalf("Update over invalid stored document = %v, want ErrInvalidStored", err)
			}
			// A whole replace repairs it.
			fixed, err := s.Replace(ctx, sampleDoc(), store.WriteOptions{})
			if err != nil {
				t.Fatal(err)
			}
			snap = waitSnapshot(t, c, "repair", func(s store.Snapshot) bool { return s.Revision == fixed && s.Err == nil })
			if !equalJSON(t, snap.Doc, sampleDoc()) {
				t.Fatalf("after repair: %s", mustJSON(t, snap.Doc))
			}
		})
	}
}

func TestCacheInvalidAtStartIsNotLoaded(t *testing.T) {
	s, e := newStore(t)
	ctx := ctxT(t)
	if _, err := s.Replace(ctx, sampleDoc(), store.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Client.Put(ctx, s.CurrentKey(), "not a commit record"); err != nil {
		t.Fatal(err)
	}
	c := store.NewCache(s, testLogger(t))
	runCache(t, c)
	snap := waitSnapshot(t, c, "error report", func(s store.Snapshot) bool { return s.Err != nil })
	if snap.Loaded || snap.Doc != nil {
		t.Fatalf("an invalid document was loaded: %+v", snap)
	}
	if c.Healthy() == nil {
		t.Fatal("Healthy without any good document")
	}
}

// TestCacheUnhealthyWhenEtcdDiesWhileWatchIsOpened: clientv3's Watch
// blocks until its stream is set up, so an etcd lost between a read and the
// next watch used to stall the probe with it, and the cache (/readyz)
// reported healthy for as long as etcd stayed away. Found as a flaky
// TestCacheResumesAfterCompaction on a fresh CI machine.
func TestCacheUnhealthyWhenEtcdDiesWhileWatchIsOpened(t *testing.T) {
	cl := testenv.NewEtcdCluster(t, 1)
	ctx := ctxT(t)
	writer := store.New(cl.Client, "", testLogger(t))
	r1, err := writer.Replace(ctx, sampleDoc(), store.WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cacheCli, err := testenv.NewEtcdClient(cl.Endpoints)
	if err != nil {
		t.Fatal(err)
	}
	defer cacheCli.Close()
	c := store.NewCache(store.New(cacheCli, "", testLogger(t)), testLogger(t))
	c.SetProbeInterval(200 * time.Millisecond)
	var once sync.Once
	c.SetBeforeWatch(func() { once.Do(func() { cl.StopMember(0) }) })
	runCache(t, c)
	waitSnapshot(t, c, "first document", func(s store.Snapshot) bool { return s.Revision == r1 })
	waitUnhealthy(t, c)
	cl.StartMember(0)
	deadline := time.Now().Add(60 * time.Second)
	for c.Healthy() != nil {
		if time.Now().After(deadline) {
			t.Fatalf("cache still unhealthy 60 s after its etcd came back: %v", c.Healthy())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestCacheResumesAfterCompaction cuts a replica's cache off etcd (its only
// endpoint is a member that is killed), writes and compacts past the
// revision its watch stopped at, and checks that the cache re-reads and
// keeps following once its member is back.
func TestCacheResumesAfterCompaction(t *testing.T) {
	cl := testenv.NewEtcdCluster(t, 3)
	ctx := ctxT(t)
	writer := store.New(cl.Client, "", testLogger(t))
	cacheCli, err := testenv.NewEtcdClient(cl.Endpoints[:1])
	if err != nil {
		t.Fatal(err)
	}
	defer cacheCli.Close()
	c := store.NewCache(store.New(cacheCli, "", testLogger(t)), testLogger(t))
	c.SetProbeInterval(200 * time.Millisecond)
	runCache(t, c)
	r1, err := writer.Replace(ctx, sampleDoc(), store.WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	waitSnapshot(t, c, "first document", func(s store.Snapshot) bool { return s.Revision == r1 })

	cl.StopMember(0)
	waitUnhealthy(t, c)
	var last int64
	for i := 0; i < 5; i++ {
		last, err = writer.Update(ctx, store.WriteOptions{}, func(d *topology.Document) error {
			d.Relays[0].Prefix = []string{"192.0.2.1/32", "192.0.2.2/32", "192.0.2.3/32", "192.0.2.4/32", "192.0.2.5/32"}[i]
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if _, err := cl.Client.Compact(ctx, last, clientv3.WithCompactPhysical()); err != nil {
		t.Fatal(err)
	}
	if snap := c.Current(); snap.Revision != r1 {
		t.Fatalf("cache moved to %d while cut off", snap.Revision)
	}
	cl.StartMember(0)
	snap := waitSnapshot(t, c, "catch-up after compaction", func(s store.Snapshot) bool { return s.Revision == last })
	if snap.Doc.Relays[0].Prefix != "192.0.2.5/32" || snap.Err != nil {
		t.Fatalf("after catch-up: %s err %v", mustJSON(t, snap.Doc), snap.Err)
	}
	// And it keeps following.
	next, err := writer.Replace(ctx, bigDoc(10, "z"), store.WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	waitSnapshot(t, c, "write after resume", func(s store.Snapshot) bool { return s.Revision == next })
	waitHealthy(t, c)
}

func waitHealthy(t *testing.T, c *store.Cache) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for c.Healthy() != nil {
		if time.Now().After(deadline) {
			t.Fatalf("cache not healthy: %v", c.Healthy())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func waitUnhealthy(t *testing.T, c *store.Cache) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for c.Healthy() == nil {
		if time.Now().After(deadline) {
			t.Fatalf("cache still healthy with its only etcd member down; snapshot %+v", c.Current())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := c.Healthy(); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("Healthy = %v, want ErrUnavailable", err)
	}
}

// A replica's own writes are in its cache when the write returns (adopted,
// not rebuilt from the watch), in revision order with other replicas'
// writes the watch delivers.
func TestCacheAdoptsOwnWrites(t *testing.T) {
	own, e := newStore(t)
	other := store.New(e.Client, store.DefaultPrefix, testLogger(t))
	ctx := ctxT(t)
	var logs lockedBuffer
	c := store.NewCache(own, slog.New(slog.NewTextHandler(&logs, nil)))
	runCache(t, c)
	waitSnapshot(t, c, "empty document", func(s store.Snapshot) bool { return s.Loaded })
	var ownRevs []int64
	for i, doc := range []*topology.Document{bigDoc(2000, "a"), sampleDoc(), bigDoc(500, "b")} {
		rev, err := own.Replace(ctx, doc, store.WriteOptions{})
		if err != nil {
			t.Fatal(err)
		}
		ownRevs = append(ownRevs, rev)
		if snap := c.Current(); snap.Revision != rev || !equalJSON(t, snap.Doc, doc) {
			t.Fatalf("write %d: the cache holds revision %d when the write of %d returned", i, snap.Revision, rev)
		}
		// Another replica writes next; the watch brings it, never the
		// adopted document again.
		rev, err = other.Update(ctx, store.WriteOptions{}, func(d *topology.Document) error {
			d.Pools = d.Pools[1:]
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		snap := waitSnapshot(t, c, "the other replica's write", func(s store.Snapshot) bool { return s.Revision >= rev })
		want, _, err := other.Load(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if snap.Revision != rev || !equalJSON(t, snap.Doc, want) {
			t.Fatalf("write %d: cache at %d, want the other replica's %d", i, snap.Revision, rev)
		}
	}
	// Each own write was adopted, never read back: a watch that reports
	// the new commit record before the write's answer waits for the
	// adoption instead of reading the whole document.
	for _, rev := range ownRevs {
		adopted := strings.Count(logs.String(), fmt.Sprintf(`msg="document adopted" revision=%d `, rev))
		loaded := strings.Count(logs.String(), fmt.Sprintf(`msg="document loaded" revision=%d `, rev))
		if adopted != 1 || loaded != 0 {
			t.Errorf("revision %d adopted %d times and read %d times, want adopted once; logs:\n%s", rev, adopted, loaded, logs.String())
		}
	}
}

// Adoption never moves the cache backwards nor hides a later write: here
// this replica's write is held back between its commit and its adoption
// (longer than the watch waits for an adoption, SetFlipWait) while another
// replica writes on top of it, and the cache, which saw that later write
// through its watch, keeps it. A cache that is not following
// etcd yet (Run not started) adopts what its Store writes at once, and its
// first read keeps it.
func TestCacheAdoptionKeepsRevisionOrder(t *testing.T) {
	own, e := newStore(t)
	own.SetFlipWait(100 * time.Millisecond)
	other := store.New(e.Client, store.DefaultPrefix, testLogger(t))
	ctx := ctxT(t)

	committed, release := make(chan int64), make(chan struct{})
	var hold sync.Once
	own.OnWritten(func(rev int64) { // registered before the cache's own: runs first
		hold.Do(func() {
			committed <- rev
			<-release
		})
	})
	var logs lockedBuffer
	c := store.NewCache(own, slog.New(slog.NewTextHandler(&logs, nil)))

	// Not running: the write is adopted all the same, and the first read
	// (at the same revision) keeps it.
	first := bigDoc(1000, "a")
	go func() { <-committed; close(release) }()
	r1, err := own.Replace(ctx, first, store.WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if snap := c.Current(); !snap.Loaded || snap.Revision != r1 || !equalJSON(t, snap.Doc, first) {
		t.Fatalf("before Run: cache at %d (loaded %v), want the adopted %d", snap.Revision, snap.Loaded, r1)
	}
	runCache(t, c)
	waitHealthy(t, c)
	if snap := c.Current(); snap.Revision != r1 {
		t.Fatalf("first read moved the cache to %d from the adopted %d", snap.Revision, r1)
	}

	// Held back: own commits r2, other writes r3 on top of it, the cache
	// follows to r3; then r2's adoption must change nothing.
	hold = sync.Once{}
	committed, release = make(chan int64), make(chan struct{})
	type result struct {
		rev int64
		err error
	}
	done := make(chan result)
	go func() {
		rev, err := own.Replace(ctx, bigDoc(1500, "b"), store.WriteOptions{})
		done <- result{rev, err}
	}()
	r2 := <-committed
	r3, err := other.Update(ctx, store.WriteOptions{}, func(d *topology.Document) error {
		d.Pools = d.Pools[1:]
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if r3 <= r2 {
		t.Fatalf("other's write at %d, not after own %d", r3, r2)
	}
	waitSnapshot(t, c, "the other replica's later write", func(s store.Snapshot) bool { return s.Revision == r3 })
	close(release)
	if res := <-done; res.err != nil || res.rev != r2 {
		t.Fatalf("own write = %d, %v; want %d", res.rev, res.err, r2)
	}
	want, _, err := other.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if snap := c.Current(); snap.Revision != r3 || !equalJSON(t, snap.Doc, want) {
		t.Fatalf("after the late adoption of %d: cache at %d, want %d", r2, snap.Revision, r3)
	}
	if strings.Contains(logs.String(), fmt.Sprintf(`msg="document adopted" revision=%d `, r2)) {
		t.Errorf("revision %d adopted after the cache had %d; logs:\n%s", r2, r3, logs.String())
	}

	// Own next write starts from r3 (its Store re-reads) and is adopted;
	// a later in-place write of the other replica arrives on top of it.
	r4, err := own.Update(ctx, store.WriteOptions{}, func(d *topology.Document) error {
		d.Pools = d.Pools[1:]
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if snap := c.Current(); snap.Revision != r4 || len(snap.Doc.Pools) != 1498 {
		t.Fatalf("own write %d: cache at %d with %d pools", r4, snap.Revision, len(snap.Doc.Pools))
	}
	r5, err := other.Update(ctx, store.WriteOptions{}, func(d *topology.Document) error {
		d.Pools = d.Pools[1:]
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	snap := waitSnapshot(t, c, "the other replica's write after an adoption", func(s store.Snapshot) bool { return s.Revision >= r5 })
	want, _, err = other.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if snap.Revision != r5 || !equalJSON(t, snap.Doc, want) {
		t.Fatalf("cache at %d, want %d equal to Load", snap.Revision, r5)
	}
}
