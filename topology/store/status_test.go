package store_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/op25b/op25b/internal/etcdembed"
	"github.com/op25b/op25b/internal/testenv"
	"github.com/op25b/op25b/topology"
	"github.com/op25b/op25b/topology/store"
)

func TestStatusRecordsFollowLease(t *testing.T) {
	s, e := newStore(t)
	ctx := ctxT(t)
	lease, err := e.Client.Grant(ctx, 60)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Second)
	st := store.BridgeStatus{DPID: "0000000000000001", Connected: true, Master: "node-a", AppliedRevision: 7,
		Flows: 12, LastReconcile: now, Registered: true}
	if err := s.PutBridgeStatus(ctx, st, lease.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.PutBridgeStatus(ctx, store.BridgeStatus{DPID: "0000000000000002", Master: "node-b"}, clientv3.NoLease); err != nil {
		t.Fatal(err)
	}
	info := store.ReplicaInfo{ID: "node-a", APIAddr: "127.0.0.1:8080", OpenFlowAddr: ":6653", Version: "test", Started: now}
	if err := s.RegisterReplica(ctx, info, lease.ID); err != nil {
		t.Fatal(err)
	}
	sts, err := s.BridgeStatuses(ctx)
	if err != nil || len(sts) != 2 || !equalJSON(t, sts[0], st) || sts[1].Master != "node-b" {
		t.Fatalf("BridgeStatuses = %+v, %v", sts, err)
	}
	reps, err := s.Replicas(ctx)
	if err != nil || len(reps) != 1 || !equalJSON(t, reps[0], info) {
		t.Fatalf("Replicas = %+v, %v", reps, err)
	}
	if got := mustJSON(t, info); got != `{"id":"node-a","api_addr":"127.0.0.1:8080","openflow_addr":":6653","version":"test","started":"`+now.Format(time.RFC3339)+`"}` {
		t.Errorf("ReplicaInfo JSON = %s", got)
	}
	// The master dies: its lease expires (here: is revoked) and its records go.
	if _, err := e.Client.Revoke(ctx, lease.ID); err != nil {
		t.Fatal(err)
	}
	err = s.PutBridgeStatus(ctx, st, lease.ID)
	if err == nil || errors.Is(err, store.ErrUnavailable) {
		t.Errorf("PutBridgeStatus with a revoked lease = %v, want a lease error that is not ErrUnavailable", err)
	}
	sts, _ = s.BridgeStatuses(ctx)
	reps, _ = s.Replicas(ctx)
	if len(sts) != 1 || sts[0].DPID != "0000000000000002" || len(reps) != 0 {
		t.Fatalf("after lease revoke: statuses %+v replicas %+v", sts, reps)
	}
	if got := s.KeyPrefix("masters/"); got != "/op25b/masters/" {
		t.Errorf("KeyPrefix = %q", got)
	}
}

// Hundreds of records go out in transactions within etcd's default limit
// of 128 operations; a dpid given twice keeps its last record.
func TestPutBridgeStatusesBatches(t *testing.T) {
	s, e := newStore(t)
	ctx := ctxT(t)
	lease, err := e.Client.Grant(ctx, 60)
	if err != nil {
		t.Fatal(err)
	}
	const n = 300
	var sts []store.BridgeStatus
	for i := range n {
		sts = append(sts, store.BridgeStatus{DPID: topology.DPIDFromUint64(uint64(i + 1)), Master: "node-a", AppliedRevision: int64(i)})
	}
	sts = append(sts, store.BridgeStatus{DPID: sts[0].DPID, Master: "node-a", AppliedRevision: 1000})
	if err := s.PutBridgeStatuses(ctx, sts, lease.ID); err != nil {
		t.Fatal(err)
	}
	got, err := s.BridgeStatuses(ctx)
	if err != nil || len(got) != n {
		t.Fatalf("BridgeStatuses: %d records, %v; want %d", len(got), err, n)
	}
	if got[0].AppliedRevision != 1000 || got[n-1].AppliedRevision != n-1 {
		t.Errorf("first and last records: %+v, %+v", got[0], got[n-1])
	}
	if err := s.PutBridgeStatuses(ctx, []store.BridgeStatus{{Master: "x"}}, lease.ID); err == nil {
		t.Error("a record without dpid was accepted")
	}
	if _, err := e.Client.Revoke(ctx, lease.ID); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.BridgeStatuses(ctx); len(got) != 0 {
		t.Errorf("%d records outlived their lease", len(got))
	}
}

// TestUnavailable: with etcd gone, every call fails with ErrUnavailable
// within the caller's deadline, and a cache keeps its last good document.
func TestUnavailable(t *testing.T) {
	ctx := ctxT(t)
	endpoints, stop, err := etcdembed.Start(ctx, t.TempDir(), slog.New(slog.DiscardHandler), etcdembed.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cli, err := testenv.NewEtcdClient(endpoints)
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	s := store.New(cli, "", testLogger(t))
	rev, err := s.Replace(ctx, sampleDoc(), store.WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c := store.NewCache(s, testLogger(t))
	c.SetProbeInterval(200 * time.Millisecond)
	runCache(t, c)
	waitSnapshot(t, c, "document", func(s store.Snapshot) bool { return s.Revision == rev })
	stop()
	holdPort(t, endpoints[0])

	short := func() context.Context {
		c, cancel := context.WithTimeout(ctx, time.Second)
		t.Cleanup(cancel)
		return c
	}
	check := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, store.ErrUnavailable) {
			t.Errorf("%s with etcd down = %v, want ErrUnavailable", what, err)
		}
	}
	_, _, err = s.Load(short())
	check("Load", err)
	_, err = s.Replace(short(), bigDoc(10, "q"), store.WriteOptions{})
	check("Replace", err)
	_, err = s.Update(short(), store.WriteOptions{}, func(*topology.Document) error { return nil })
	check("Update", err)
	_, err = s.Audit(short(), 10, 0)
	check("Audit", err)
	check("PutBridgeStatus", s.PutBridgeStatus(short(), store.BridgeStatus{DPID: "0000000000000001"}, clientv3.NoLease))
	_, err = s.BridgeStatuses(short())
	check("BridgeStatuses", err)
	check("RegisterReplica", s.RegisterReplica(short(), store.ReplicaInfo{ID: "x"}, clientv3.NoLease))
	_, err = s.Replicas(short())
	check("Replicas", err)

	waitUnhealthy(t, c)
	if snap := c.Current(); snap.Revision != rev || !snap.Loaded || !equalJSON(t, snap.Doc, sampleDoc()) {
		t.Fatalf("cache lost its document while etcd is down: %+v", snap)
	}
}

// TestEmbeddedRestartKeepsDocument: op25bd restarted on the same --data-dir
// finds its document (new ports each time are fine: the client follows).
func TestEmbeddedRestartKeepsDocument(t *testing.T) {
	ctx := ctxT(t)
	dir := t.TempDir()
	var rev int64
	for round := 0; round < 2; round++ {
		endpoints, stop, err := etcdembed.Start(ctx, dir, slog.New(slog.DiscardHandler), etcdembed.Options{})
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		cli, err := testenv.NewEtcdClient(endpoints)
		if err != nil {
			stop()
			t.Fatal(err)
		}
		s := store.New(cli, "", testLogger(t))
		if round == 0 {
			rev, err = s.Replace(ctx, sampleDoc(), store.WriteOptions{})
		} else {
			var doc *topology.Document
			var got int64
			doc, got, err = s.Load(ctx)
			if err == nil && (got != rev || !equalJSON(t, doc, sampleDoc())) {
				t.Errorf("after restart: revision %d (want %d), doc %s", got, rev, mustJSON(t, doc))
			}
		}
		cli.Close()
		stop()
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
	}
}

// holdPort keeps the stopped etcd's client port bound, refusing every
// connection, so that no other test's etcd (tests of other packages start
// some all the time) can take the port and answer this test's client.
func holdPort(t *testing.T, endpoint string) {
	t.Helper()
	l, err := net.Listen("tcp", strings.TrimPrefix(endpoint, "http://"))
	if err != nil {
		t.Skipf("port of the stopped etcd was taken at once by another process: %v", err)
	}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	t.Cleanup(func() { l.Close() })
}
