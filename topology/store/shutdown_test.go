package store_test

import (
	"context"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/op25b/op25b/topology"
	"github.com/op25b/op25b/topology/store"
)

// TestRunEndsEveryGoroutine: the long-running parts of the store, the
// Cache (its watch loop and the etcd probe it owns) and the Keeper,
// return when their context is cancelled, and nothing they started
// outlives them. The etcd client's own goroutines exist before and are
// ignored; a gRPC stream may take a moment to wind down, which goleak's
// retries allow for.
func TestRunEndsEveryGoroutine(t *testing.T) {
	s, e := newStore(t)
	ctx := ctxT(t)
	if _, err := s.Replace(ctx, sampleDoc(), store.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	before := goleak.IgnoreCurrent()

	c := store.NewCache(s, testLogger(t))
	c.SetProbeInterval(50 * time.Millisecond)
	k := store.NewKeeper(e.Client, store.KeeperConfig{Interval: 50 * time.Millisecond, Maintain: true, Logger: testLogger(t)})
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan string, 2)
	go func() { _ = c.Run(runCtx); done <- "cache" }()
	go func() { _ = k.Run(runCtx); done <- "keeper" }()
	waitSnapshot(t, c, "document loaded", func(sn store.Snapshot) bool { return sn.Loaded && sn.Revision > 0 })
	// A write while both run: the cache follows it through its watch.
	rev, err := s.Update(ctx, store.WriteOptions{}, func(d *topology.Document) error {
		d.Pools = d.Pools[1:]
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	waitSnapshot(t, c, "update seen", func(sn store.Snapshot) bool { return sn.Revision == rev })
	time.Sleep(150 * time.Millisecond) // a few probes and Keeper checks

	cancel()
	for range 2 {
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Fatal("Cache.Run or Keeper.Run did not return after cancel")
		}
	}
	goleak.VerifyNone(t, before, goleak.IgnoreTopFunction("google.golang.org/grpc.(*addrConn).resetTransportAndUnlock"))
}
