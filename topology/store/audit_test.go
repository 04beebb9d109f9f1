package store_test

import (
	"slices"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/op25b/op25b/topology"
	"github.com/op25b/op25b/topology/store"
)

func TestAuditRecordPerWrite(t *testing.T) {
	s, _ := newStore(t)
	ctx := ctxT(t)
	r1, err := s.Replace(ctx, sampleDoc(), store.WriteOptions{Who: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	r2, err := s.Update(ctx, store.WriteOptions{Who: "bob"}, func(d *topology.Document) error {
		d.Pools = append(d.Pools, topology.Pool{Name: "osaka-dyn", Prefix: "10.2.0.0/16", Kind: topology.KindDynamic, Service: "ftth"})
		d.Relays = nil
		d.Bridges[0].Pop = "tokyo-2"
		d.Ports = []int{25, 2525}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	r3, err := s.Update(ctx, store.WriteOptions{Who: "carol"}, func(d *topology.Document) error {
		d.Pools = slices.DeleteFunc(d.Pools, func(p topology.Pool) bool { return p.Name == "osaka-dyn" })
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	recs, err := s.Audit(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 3 {
		t.Fatalf("%d audit records, want 3: %+v", len(recs), recs)
	}
	want := []struct {
		rev int64
		who string
		sum store.ChangeSummary
	}{
		{r3, "carol", store.ChangeSummary{Removed: []string{"pools/osaka-dyn"}}},
		{r2, "bob", store.ChangeSummary{
			Added:   []string{"pools/osaka-dyn"},
			Changed: []string{"bridges/0000000000000001", "ports"},
			Removed: []string{"relays/msa"},
		}},
		{r1, "alice", store.ChangeSummary{Added: []string{
			"bridges/0000000000000001", "destinations/mobile-carriers", "pools/tokyo-dyn", "pools/tokyo-fixed",
			"pools/tokyo-v6", "ports", "relays/msa", "services/ftth", "services/v6plus",
		}}},
	}
	for i, w := range want {
		r := recs[i]
		if r.Revision != w.rev || r.Who != w.who || !equalJSON(t, r.Summary, w.sum) || r.Time.IsZero() {
			t.Errorf("record %d = %+v, want revision %d who %s summary %+v", i, r, w.rev, w.who, w.sum)
		}
	}
	// Paging: records strictly older than the given revision.
	page, err := s.Audit(ctx, 1, r3)
	if err != nil || len(page) != 1 || page[0].Revision != r2 {
		t.Fatalf("Audit(1, before %d) = %+v, %v", r3, page, err)
	}
	page, err = s.Audit(ctx, 10, r1)
	if err != nil || len(page) != 0 {
		t.Fatalf("Audit(before first) = %+v, %v", page, err)
	}
}

func TestAuditLogIsBounded(t *testing.T) {
	s, e := newStore(t)
	ctx := ctxT(t)
	total := store.MaxAuditRecords + store.AuditTrimSlack + 5
	var ops []clientv3.Op
	flush := func() {
		if len(ops) == 0 {
			return
		}
		if _, err := e.Client.Txn(ctx).Then(ops...).Commit(); err != nil {
			t.Fatal(err)
		}
		ops = ops[:0]
	}
	for i := 1; i <= total; i++ {
		ops = append(ops, clientv3.OpPut(s.AuditKey(int64(i)), `{"time":"2006-11-01T00:00:00Z","who":"old","summary":{}}`))
		if len(ops) == 128 {
			flush()
		}
	}
	flush()
	rev, err := s.Replace(ctx, sampleDoc(), store.WriteOptions{Who: "new"})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := e.Client.Get(ctx, s.KeyPrefix("audit/"), clientPrefixCount()...)
	if err != nil || resp.Count != store.MaxAuditRecords {
		t.Fatalf("%d audit records after trimming (%v), want %d", resp.Count, err, store.MaxAuditRecords)
	}
	if r, _ := e.Client.Get(ctx, s.AuditKey(1)); len(r.Kvs) != 0 {
		t.Error("oldest record kept")
	}
	if r, _ := e.Client.Get(ctx, s.AuditKey(int64(total))); len(r.Kvs) != 1 {
		t.Error("newest hand-filled record deleted")
	}
	recs, err := s.Audit(ctx, 1, 0)
	if err != nil || len(recs) != 1 || recs[0].Revision != rev || recs[0].Who != "new" {
		t.Fatalf("newest audit record = %+v, %v", recs, err)
	}
}
