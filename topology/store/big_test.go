package store_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/op25b/op25b/internal/testenv"
	"github.com/op25b/op25b/topology"
	"github.com/op25b/op25b/topology/store"
)

// TestReplace100kAtomic stores a 100k-pool document on an etcd left at its
// default limits (128 ops per transaction, 1.5 MiB per request), replaces
// it with another 100k-pool document while readers load continuously, and
// checks that every read saw exactly one of the two documents.
func TestReplace100kAtomic(t *testing.T) {
	if testing.Short() {
		t.Skip("100k-pool replace skipped in -short mode")
	}
	s, _ := newStore(t)
	// Generous: under -race on a busy 2-core machine this takes minutes.
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	const n = topology.MaxPools - 3 // sampleDoc's other pools are dropped; keep within the limit
	docA, docB := bigDoc(n, "a"), bigDoc(n, "b")
	revA, err := s.Replace(ctx, docA, store.WriteOptions{Who: "bulk"})
	if err != nil {
		t.Fatal(err)
	}

	readCtx, stopReaders := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var mu sync.Mutex
	seen := map[string]int{}
	var readErr error
	for r := 0; r < 2; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Read until the new document shows up, so that some reads
			// overlap the flip and the deletion of the old generation.
			for readCtx.Err() == nil {
				// A fresh Store each time: a full read, as a replica that
				// starts now would do (no reuse of a remembered state).
				doc, rev, err := store.New(s.Client(), "", nil).Load(readCtx)
				if err != nil {
					if readCtx.Err() == nil {
						mu.Lock()
						readErr = err
						mu.Unlock()
					}
					return
				}
				kind := classify(doc, n)
				mu.Lock()
				seen[kind]++
				if kind == "mix" {
					readErr = errMix(rev)
				}
				mu.Unlock()
				if kind != "a" {
					return
				}
			}
		}()
	}
	revB, err := s.Replace(ctx, docB, store.WriteOptions{Who: "bulk"})
	if err != nil {
		stopReaders()
	}
	wg.Wait()
	stopReaders()
	if err != nil {
		t.Fatal(err)
	}
	if readErr != nil {
		t.Fatalf("reader: %v (seen %v)", readErr, seen)
	}
	t.Logf("reads during replace: %v", seen)
	doc, rev, err := s.Load(ctx)
	if err != nil || rev != revB || rev <= revA || classify(doc, n) != "b" {
		t.Fatalf("after replace: rev %d (want %d) err %v", rev, revB, err)
	}
	// The old generation is gone: the prefix holds one generation only.
	resp, err := s.Client().Get(ctx, s.KeyPrefix("config/g/"), clientPrefixCount()...)
	if err != nil {
		t.Fatal(err)
	}
	if want := int64(n + 1 + 1 + 2 + 1 + 1); resp.Count != want { // pools, ports, relay, services, destination, bridge
		t.Fatalf("%d keys under config/g/, want %d (old generation not deleted?)", resp.Count, want)
	}
	// A small change to the big document is one in-place transaction.
	revC, err := s.Update(ctx, store.WriteOptions{}, func(d *topology.Document) error {
		d.Pools[0].Kind, d.Pools[0].Service = topology.KindStatic, ""
		return nil
	})
	if err != nil || revC <= revB {
		t.Fatalf("small update on big document: %d, %v", revC, err)
	}
	recs, err := s.Audit(ctx, 1, 0)
	if err != nil || len(recs) != 1 || len(recs[0].Summary.Changed) != 1 {
		t.Fatalf("audit of small update = %+v, %v", recs, err)
	}
}

type errMix int64

func (e errMix) Error() string { return "read a mix of two documents" }

// classify reports "a" or "b" when doc is exactly one of the big documents,
// "mix" otherwise.
func classify(doc *topology.Document, n int) string {
	if len(doc.Pools) != n {
		return "mix"
	}
	tag := ""
	for _, p := range doc.Pools {
		t := strings.TrimPrefix(p.Name[:2], "p")
		if tag == "" {
			tag = t
		}
		if t != tag {
			return "mix"
		}
	}
	return tag
}

// TestReplace100kDebianEtcd runs the large-document path against Debian's
// etcd 3.4 server (a separate process, default limits, fsync to disk),
// which op25b supports as an external cluster: replace, per-item update,
// full and remembered reads.
func TestReplace100kDebianEtcd(t *testing.T) {
	if testing.Short() {
		t.Skip("100k-pool replace skipped in -short mode")
	}
	cl := testenv.NewEtcdCluster(t, 1)
	s := store.New(cl.Client, "", testLogger(t))
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	const n = topology.MaxPools - 3
	if _, err := s.Replace(ctx, bigDoc(n, "a"), store.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	revB, err := s.Replace(ctx, bigDoc(n, "b"), store.WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	revC, err := s.Update(ctx, store.WriteOptions{}, func(d *topology.Document) error {
		d.Pools = d.Pools[1:]
		return nil
	})
	if err != nil || revC <= revB {
		t.Fatalf("Update: %d, %v", revC, err)
	}
	mine, rev1, err := s.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	fresh, rev2, err := store.New(cl.Client, "", nil).Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rev1 != revC || rev2 != revC || len(fresh.Pools) != n-1 || !equalJSON(t, mine, fresh) {
		t.Fatalf("remembered rev %d, fresh rev %d (want %d), %d pools", rev1, rev2, revC, len(fresh.Pools))
	}
}
