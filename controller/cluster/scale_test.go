package cluster

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/op25b/op25b/internal/testenv"
	"github.com/op25b/op25b/topology"
)

// A replica that takes over many bridges at once: its first passes publish
// hundreds of connected/ records, claim hundreds of locks and write
// hundreds of status records, which together take far longer than one
// EtcdTimeout. Each request has its own timeout, so no pass fails for being
// long; records go out in batches within etcd's default 128 operations.
func TestManyBridgesPerOperationTimeouts(t *testing.T) {
	const n = 3000
	etcd := startDebianEtcd(t)
	var dpids []topology.DPID
	for i := range n {
		dpids = append(dpids, topology.DPIDFromUint64(uint64(i+1)))
	}
	records := &batchRecords{fakeRecords: newFakeRecords()}
	warnings := &warnCounter{}
	cli := newClient(t, etcd.Endpoints)
	rep, err := New(Config{NodeID: "solo", Client: cli, Prefix: "/op25b-test/",
		Switches: newFakeSwitches("solo", nil, dpids...), Policy: newFakePolicy(smallDoc(dpids...), 1),
		Records: records, Compile: countingCompile, LeaseTTL: 5 * time.Second,
		EtcdTimeout: 500 * time.Millisecond, Resync: time.Second, Logger: slog.New(warnings)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = rep.Run(ctx) }()
	defer func() { cancel(); <-done }()

	start := time.Now()
	testenv.Eventually(t, 2*time.Minute, "every bridge mastered with its status record", func() bool {
		return len(rep.Masters()) == n && records.count() == n
	})
	t.Logf("%d bridges claimed and recorded in %s (EtcdTimeout 500ms)", n, time.Since(start).Round(time.Millisecond))
	resp, err := cli.Get(context.Background(), "/op25b-test/connected/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil || resp.Count != n {
		t.Errorf("connected records: %v, %v; want %d", resp, err, n)
	}
	if w := warnings.get(); len(w) > 0 {
		t.Errorf("passes failed while taking over %d bridges: %v", n, w)
	}
	if m := records.maxBatch(); m > maxTxnOps {
		t.Errorf("a status batch of %d records; etcd's default limit is %d", m, maxTxnOps)
	}
}

// batchRecords remembers the size of every status batch.
type batchRecords struct {
	*fakeRecords
	mu      sync.Mutex
	batches []int
}

func (b *batchRecords) PutBridgeStatuses(ctx context.Context, sts []BridgeStatus, lease clientv3.LeaseID) error {
	b.mu.Lock()
	b.batches = append(b.batches, len(sts))
	b.mu.Unlock()
	return b.fakeRecords.PutBridgeStatuses(ctx, sts, lease)
}

func (b *batchRecords) maxBatch() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Max(append([]int{0}, b.batches...))
}

func (f *fakeRecords) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.statuses)
}

// warnCounter is a slog handler that keeps the messages of warnings and
// errors.
type warnCounter struct {
	mu   sync.Mutex
	msgs []string
}

func (w *warnCounter) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }
func (w *warnCounter) Handle(_ context.Context, r slog.Record) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	msg := r.Message
	r.Attrs(func(a slog.Attr) bool {
		msg += " " + a.String()
		return true
	})
	w.msgs = append(w.msgs, msg)
	return nil
}
func (w *warnCounter) WithAttrs([]slog.Attr) slog.Handler { return w }
func (w *warnCounter) WithGroup(string) slog.Handler      { return w }

func (w *warnCounter) get() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.msgs...)
}
