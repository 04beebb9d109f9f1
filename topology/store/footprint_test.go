package store_test

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/op25b/op25b/internal/etcdembed"
	"github.com/op25b/op25b/internal/testenv"
	"github.com/op25b/op25b/topology"
	"github.com/op25b/op25b/topology/store"
)

// embeddedWith starts an embedded etcd in dir with opts and returns a
// client; stop shuts it down (idempotent), and cleanup calls it.
func embeddedWith(t testing.TB, dir string, opts etcdembed.Options) (*clientv3.Client, func()) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	endpoints, stopEtcd, err := etcdembed.Start(ctx, dir, slog.New(slog.DiscardHandler), opts)
	if err != nil {
		t.Fatalf("embedded etcd: %v", err)
	}
	cli, err := testenv.NewEtcdClient(endpoints)
	if err != nil {
		stopEtcd()
		t.Fatal(err)
	}
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			cli.Close()
			stopEtcd()
		}
	}
	t.Cleanup(stop)
	return cli, stop
}

// Regression (issue 11, "The embedded etcd grows"): the data dir went from
// 123 to 656 MB over about a dozen 100k-pool replaces (compaction after an
// hour, no defragmentation). With the Keeper maintaining it, the database
// stays within a small multiple of one document's size however many
// replaces there were. (BenchmarkEtcdGrowth100Replaces measures the full
// 100 × 100k-pool case, size and start-up time.)
func TestRegressionEmbeddedEtcdGrows(t *testing.T) {
	cli, _ := embeddedWith(t, t.TempDir(), etcdembed.Options{})
	s := store.New(cli, "", testLogger(t))
	ctx := ctxT(t)
	const pools, replaces = 20_000, 8
	docs := []*topology.Document{bigDoc(pools, "a"), bigDoc(pools, "b")}
	watch := store.NewKeeper(cli, store.KeeperConfig{})
	keeper := store.NewKeeper(cli, store.KeeperConfig{Maintain: true, DefragFreeBytes: 1 << 20, Logger: testLogger(t)})
	// Each check compacts up to what the previous one saw: two checks in a
	// row leave no history (in op25bd they are seconds apart).
	check := func() store.Footprint { keeper.Check(ctx); return keeper.Check(ctx) }

	if _, err := s.Replace(ctx, docs[0], store.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	one := check().DBSize // one document, compacted and defragmented
	for i := 1; i <= replaces; i++ {
		if _, err := s.Replace(ctx, docs[i%2], store.WriteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	grown := watch.Check(ctx)
	t.Logf("one %d-pool document: %.1f MB; after %d replaces unmaintained: %.1f MB (%.1f MB in use)",
		pools, mb(one), replaces, mb(grown.DBSize), mb(grown.DBSizeInUse))
	if grown.DBSize < 3*one {
		t.Fatalf("the unmaintained database did not grow (%d → %d): the test no longer shows the problem", one, grown.DBSize)
	}
	kept := check()
	// What the Keeper cannot and must not reclaim: the history records of
	// the writes (each replace keeps its item changes so that LoadAt and
	// rollback work), which grow with the number of writes by design.
	hist, err := s.HistoryUsage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("after the Keeper's checks: %.1f MB, of which %.1f MB history of %d writes (compacted to %d, %d defrags in %v)",
		mb(kept.DBSize), mb(hist.Bytes), hist.Records, kept.Compacted, kept.Defrags, kept.LastDefragDuration)
	if kept.DBSize-hist.Bytes > 2*one || kept.Defrags == 0 || kept.Compactions == 0 {
		t.Fatalf("after maintenance the database is %d bytes (%d of history; one document: %d): %+v", kept.DBSize, hist.Bytes, one, kept)
	}
	// Maintained as op25bd does (a check after each large write here, every
	// few seconds in the daemon): it never grows past a bound.
	var worst int64 // beyond the history kept
	for i := 1; i <= replaces; i++ {
		if _, err := s.Replace(ctx, docs[i%2], store.WriteOptions{}); err != nil {
			t.Fatal(err)
		}
		size := check().DBSize
		hist, err := s.HistoryUsage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		worst = max(worst, size-hist.Bytes)
	}
	t.Logf("maintained through %d more replaces: at most %.1f MB besides history", replaces, mb(worst))
	if worst > 4*one {
		t.Fatalf("maintained database reached %d bytes besides history (one document: %d)", worst, one)
	}
	if doc, _, err := store.New(cli, "", nil).Load(ctx); err != nil || len(doc.Pools) != pools {
		t.Fatalf("after maintenance: %v", err)
	}
}

func mb(n int64) float64 { return float64(n) / (1 << 20) }

// A full etcd (NOSPACE alarm) refuses writes at once with ErrNoSpace, not
// a hang or a generic "unavailable"; the Keeper reports the alarm and, on
// an etcd op25b owns, compacts, defragments and disarms it, after which
// writes work again.
func TestNoSpaceAlarmRefusesWritesClearlyAndRecovers(t *testing.T) {
	const quota = 24 << 20
	cli, _ := embeddedWith(t, t.TempDir(), etcdembed.Options{QuotaBytes: quota})
	s := store.New(cli, "", testLogger(t))
	ctx := ctxT(t)
	docs := []*topology.Document{bigDoc(20_000, "a"), bigDoc(20_000, "b")}
	watch := store.NewKeeper(cli, store.KeeperConfig{QuotaBytes: quota})
	var err error
	var took time.Duration
	for i := 0; i < 40; i++ {
		start := time.Now()
		_, err = s.Replace(ctx, docs[i%2], store.WriteOptions{})
		took = time.Since(start)
		if err != nil {
			break
		}
	}
	if !errors.Is(err, store.ErrNoSpace) || !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("filling a %d-byte quota: %v, want ErrNoSpace", quota, err)
	}
	t.Logf("NOSPACE after filling the quota: %v (the failing write took %v)", err, took.Round(time.Millisecond))
	if took > 30*time.Second {
		t.Errorf("the refused write took %v", took)
	}
	// Small writes are refused the same way, at once.
	start := time.Now()
	if _, err := s.Update(ctx, store.WriteOptions{}, func(d *topology.Document) error { d.Ports = []int{25, 587}; return nil }); !errors.Is(err, store.ErrNoSpace) {
		t.Fatalf("small write under NOSPACE: %v", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("small write under NOSPACE took %v", d)
	}
	if f := watch.Check(ctx); !f.NoSpace || len(f.Alarms) == 0 || !errors.Is(watch.NoSpace(), store.ErrNoSpace) {
		t.Fatalf("Keeper does not report the alarm: %+v", f)
	}
	// Reads still work: the replicas keep enforcing the stored document.
	if _, _, err := store.New(cli, "", nil).Load(ctx); err != nil {
		t.Fatalf("read under NOSPACE: %v", err)
	}
	keeper := store.NewKeeper(cli, store.KeeperConfig{Maintain: true, QuotaBytes: quota, Logger: testLogger(t)})
	f := keeper.Check(ctx)
	t.Logf("after maintenance: %+v", f)
	if f.NoSpace || f.Disarms != 1 {
		t.Fatalf("NOSPACE not recovered: %+v", f)
	}
	if _, err := s.Replace(ctx, docs[0], store.WriteOptions{}); err != nil {
		t.Fatalf("write after recovery: %v", err)
	}
}
