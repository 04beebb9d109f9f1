package store_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/op25b/op25b/topology"
	"github.com/op25b/op25b/topology/store"
)

// writeSteps applies n small writes of different kinds (replace, item
// update, item delete, item add) and returns the document after each,
// keyed by its revision.
func writeSteps(t *testing.T, s *store.Store, n int) ([]int64, map[int64]*topology.Document) {
	t.Helper()
	ctx := ctxT(t)
	docs := map[int64]*topology.Document{}
	var revs []int64
	for i := 0; i < n; i++ {
		var rev int64
		var err error
		switch i % 4 {
		case 0: // whole replace: the pool moves
			d := sampleDoc()
			d.Pools[0].Prefix = fmt.Sprintf("10.%d.0.0/16", 10+i%200)
			rev, err = s.Replace(ctx, d, store.WriteOptions{Who: "ops"})
		case 1: // one item changed
			rev, err = s.Update(ctx, store.WriteOptions{Who: "noc"}, func(d *topology.Document) error {
				d.Relays[0].Prefix = fmt.Sprintf("192.0.2.%d/32", i%250)
				return nil
			})
		case 2: // one item added
			rev, err = s.Update(ctx, store.WriteOptions{Who: "noc"}, func(d *topology.Document) error {
				d.Relays = append(d.Relays, topology.Relay{Name: fmt.Sprintf("extra-%d", i), Prefix: fmt.Sprintf("198.18.%d.0/24", i%250)})
				return nil
			})
		case 3: // ports change and a bridge goes away
			rev, err = s.Update(ctx, store.WriteOptions{Who: "noc"}, func(d *topology.Document) error {
				d.Ports = []int{25, 2525 + i%100}
				d.Bridges = nil
				return nil
			})
		}
		if err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
		doc, got, err := s.Load(ctx)
		if err != nil || got != rev {
			t.Fatalf("load after write %d: rev %d (want %d), %v", i, got, rev, err)
		}
		docs[rev] = doc
		revs = append(revs, rev)
	}
	return revs, docs
}

// TestLoadAtLastRevisions: every one of the last 100 revisions (and more)
// comes back exactly as it was stored, whatever kind of write made it;
// a revision between two writes is the older write's document.
func TestLoadAtLastRevisions(t *testing.T) {
	s, _ := newStore(t)
	ctx := ctxT(t)
	revs, docs := writeSteps(t, s, 110)
	for _, rev := range revs[len(revs)-100:] {
		doc, got, err := store.New(s.Client(), store.DefaultPrefix, nil).LoadAt(ctx, rev)
		if err != nil {
			t.Fatalf("LoadAt(%d): %v", rev, err)
		}
		if got != rev || !equalJSON(t, doc, docs[rev]) {
			t.Fatalf("LoadAt(%d) = rev %d\n%s\nwant\n%s", rev, got, mustJSON(t, doc), mustJSON(t, docs[rev]))
		}
		// Between this write and the next: still this document.
		if rev == revs[len(revs)-1] {
			continue
		}
		if doc, got, err := s.LoadAt(ctx, rev+1); err != nil || (got != rev && got != rev+1) || got == rev && !equalJSON(t, doc, docs[rev]) {
			t.Fatalf("LoadAt(%d) = rev %d, %v", rev+1, got, err)
		}
	}
	// Before the first write: the empty document.
	if doc, got, err := s.LoadAt(ctx, revs[0]-1); err != nil || got != 0 || len(doc.Pools) != 0 {
		t.Fatalf("LoadAt before the first write: rev %d, %+v, %v", got, doc, err)
	}
	// The future is not a revision.
	var pe *store.PrunedError
	if _, _, err := s.LoadAt(ctx, revs[len(revs)-1]+1000); !errors.As(err, &pe) || !pe.Future {
		t.Fatalf("LoadAt(future): %v", err)
	}
}

// TestHistoryPrunedByCount: with room for 5 records, the 6th-newest
// revision is gone, and the error names the oldest one still there.
func TestHistoryPrunedByCount(t *testing.T) {
	s, _ := newStore(t)
	s.SetHistoryLimits(5, 2, 1<<30)
	ctx := ctxT(t)
	revs, docs := writeSteps(t, s, 10)
	oldest := revs[4] // undoing the 5 newest writes reaches the 5th write's document
	if doc, got, err := s.LoadAt(ctx, oldest); err != nil || got != oldest || !equalJSON(t, doc, docs[oldest]) {
		t.Fatalf("LoadAt(%d): rev %d, %v", oldest, got, err)
	}
	_, _, err := s.LoadAt(ctx, revs[3])
	var pe *store.PrunedError
	if !errors.As(err, &pe) || !errors.Is(err, store.ErrRevisionPruned) || pe.Oldest != oldest {
		t.Fatalf("LoadAt(%d) after pruning: %v, want oldest %d", revs[3], err, oldest)
	}
	if !strings.Contains(err.Error(), fmt.Sprint(oldest)) {
		t.Fatalf("message does not name the oldest revision: %v", err)
	}
	if u, err := s.HistoryUsage(ctx); err != nil || u.Records != 5 {
		t.Fatalf("history usage %+v, %v; want 5 records", u, err)
	}
}

// TestHistoryPrunedByBytes: past minRecords, records are dropped to stay
// under the byte bound; the newest minRecords stay whatever their size.
func TestHistoryPrunedByBytes(t *testing.T) {
	s, _ := newStore(t)
	s.SetHistoryLimits(1000, 3, 1) // 1 byte: only the newest 3 survive
	ctx := ctxT(t)
	revs, _ := writeSteps(t, s, 8)
	u, err := s.HistoryUsage(ctx)
	if err != nil || u.Records != 3 {
		t.Fatalf("history usage %+v, %v; want 3 records", u, err)
	}
	var pe *store.PrunedError
	if _, _, err := s.LoadAt(ctx, revs[len(revs)-4]); !errors.As(err, &pe) || pe.Oldest != revs[len(revs)-4] {
		// revs[-4]'s document is reachable: undo the 3 newest writes.
		if err != nil {
			t.Fatalf("LoadAt(%d): %v", revs[len(revs)-4], err)
		}
	}
	if _, _, err := s.LoadAt(ctx, revs[len(revs)-5]); !errors.As(err, &pe) || pe.Oldest != revs[len(revs)-4] {
		t.Fatalf("LoadAt(%d): %v, want pruned with oldest %d", revs[len(revs)-5], err, revs[len(revs)-4])
	}
}

// TestHistoryOrphansRemoved: a history record whose write never committed
// (a crash between writing it and the commit) is deleted once it is old;
// a fresh one (a writer in progress) is left alone.
func TestHistoryOrphansRemoved(t *testing.T) {
	s, e := newStore(t)
	ctx := ctxT(t)
	if _, err := s.Replace(ctx, sampleDoc(), store.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	old := fmt.Sprintf("%016x.deadbeef", time.Now().Add(-time.Hour).UnixNano())
	fresh := fmt.Sprintf("%016x.cafecafe", time.Now().UnixNano())
	for _, id := range []string{old, fresh} {
		if _, err := e.Client.Put(ctx, s.HistoryPrefix()+id+"/0000.3", "abc"); err != nil {
			t.Fatal(err)
		}
	}
	s.PruneHistory()
	resp, err := e.Client.Get(ctx, s.HistoryPrefix(), clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, kv := range resp.Kvs {
		keys = append(keys, string(kv.Key))
	}
	joined := strings.Join(keys, " ")
	if strings.Contains(joined, old) || !strings.Contains(joined, fresh) || len(keys) != 2 {
		t.Fatalf("history keys after pruning: %v", keys)
	}
}

// TestHistoryStopsAtHandEditsAndOldRecords: an edit by hand, or an audit
// record from before history existed, is as far back as history goes.
func TestHistoryStopsAtHandEditsAndOldRecords(t *testing.T) {
	s, e := newStore(t)
	ctx := ctxT(t)
	revs, _ := writeSteps(t, s, 3)
	// An old-format record for a write "at" the current revision is
	// impossible to fake exactly; instead strip the history of the middle
	// write, as pruning or an older op25b would leave it.
	recs, err := s.Audit(ctx, 10, 0)
	if err != nil || len(recs) != 3 {
		t.Fatalf("audit: %v %v", recs, err)
	}
	// The middle write's history keys carry its revision.
	resp, err := e.Client.Get(ctx, s.HistoryPrefix(), clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range resp.Kvs {
		if kv.ModRevision == revs[1] {
			if _, err := e.Client.Delete(ctx, string(kv.Key)); err != nil {
				t.Fatal(err)
			}
		}
	}
	var pe *store.PrunedError
	if _, _, err := s.LoadAt(ctx, revs[0]); !errors.As(err, &pe) || pe.Oldest != revs[1] {
		t.Fatalf("LoadAt(%d) across a record without history: %v, want oldest %d", revs[0], err, revs[1])
	}
	if _, _, err := s.LoadAt(ctx, revs[1]); err != nil {
		t.Fatalf("LoadAt(%d): %v", revs[1], err)
	}
}

// TestRollback: the document of an earlier revision is stored again, as a
// rollback in the audit log, only if nobody wrote since the revision the
// caller saw.
func TestRollback(t *testing.T) {
	s, _ := newStore(t)
	ctx := ctxT(t)
	revs, docs := writeSteps(t, s, 6)
	current := revs[len(revs)-1]
	if _, err := s.Rollback(ctx, revs[1], store.WriteOptions{IfRevision: current - 1, Who: "night"}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("rollback with a stale If-Match: %v", err)
	}
	rev, err := s.Rollback(ctx, revs[1], store.WriteOptions{IfRevision: current, Who: "night"})
	if err != nil {
		t.Fatal(err)
	}
	doc, got, err := s.Load(ctx)
	if err != nil || got != rev || !equalJSON(t, doc, docs[revs[1]]) {
		t.Fatalf("after rollback: rev %d (want %d), %v\n%s\nwant\n%s", got, rev, err, mustJSON(t, doc), mustJSON(t, docs[revs[1]]))
	}
	recs, err := s.Audit(ctx, 1, 0)
	if err != nil || len(recs) != 1 {
		t.Fatal(recs, err)
	}
	r := recs[0]
	if r.Revision != rev || r.Op != store.OpRollback || r.RollbackOf != revs[1] || r.Who != "night" || r.Base != current || r.ChangesTotal == 0 {
		t.Fatalf("rollback audit record: %+v", r)
	}
	// And the rollback is history too: the revision before it is back.
	if doc, got, err := s.LoadAt(ctx, current); err != nil || got != current || !equalJSON(t, doc, docs[current]) {
		t.Fatalf("LoadAt(%d) after the rollback: %d %v", current, got, err)
	}
}

// TestAuditRecordsItemValues: the audit record says what changed in each
// item, old and new value, not just its name.
func TestAuditRecordsItemValues(t *testing.T) {
	s, _ := newStore(t)
	ctx := ctxT(t)
	first, err := s.Replace(ctx, sampleDoc(), store.WriteOptions{Who: "ops"})
	if err != nil {
		t.Fatal(err)
	}
	rev, err := s.Update(ctx, store.WriteOptions{Who: "noc"}, func(d *topology.Document) error {
		d.Pools[0].Prefix = "10.2.0.0/16"
		d.Pools = append(d.Pools, topology.Pool{Name: "zz-new", Prefix: "10.9.0.0/16", Kind: topology.KindStatic})
		d.Relays = nil
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	recs, err := s.Audit(ctx, 1, 0)
	if err != nil || len(recs) != 1 {
		t.Fatal(recs, err)
	}
	r := recs[0]
	if r.Revision != rev || r.Op != store.OpUpdate || r.Base != first || r.ChangesTotal != 3 || len(r.Changes) != 3 {
		t.Fatalf("record: %+v", r)
	}
	want := []string{
		`pools/tokyo-dyn {"name":"tokyo-dyn","prefix":"10.1.0.0/16","kind":"dynamic","service":"ftth"} {"name":"tokyo-dyn","prefix":"10.2.0.0/16","kind":"dynamic","service":"ftth"}`,
		`pools/zz-new  {"name":"zz-new","prefix":"10.9.0.0/16","kind":"static"}`,
		`relays/msa {"name":"msa","prefix":"192.0.2.25/32"} `,
	}
	for i, ch := range r.Changes {
		if got := ch.Item + " " + string(ch.Old) + " " + string(ch.New); got != want[i] {
			t.Errorf("change %d:\n got %s\nwant %s", i, got, want[i])
		}
	}
}

// measureHistory prints what one write's history costs.
func historyBytesOf(t testing.TB, s *store.Store, write func() error) (int64, int) {
	t.Helper()
	before, err := s.HistoryUsage(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := write(); err != nil {
		t.Fatal(err)
	}
	after, err := s.HistoryUsage(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return after.Bytes - before.Bytes, after.Records - before.Records
}
