package cluster

import (
	"context"
	"runtime"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/goleak"

	"github.com/op25b/op25b/internal/testenv"
	"github.com/op25b/op25b/topology"
)

// Run owns every goroutine it starts: once its context is done it steps
// down, revokes its lease (others take over at once) and returns, and
// nothing of it is left running — neither the package's own goroutines nor,
// once the caller closes its etcd client, any watch or keepalive stream.
// The same holds when etcd is gone at shutdown: the revoke is bounded by
// EtcdTimeout.
func TestShutdownLeavesNothingRunning(t *testing.T) {
	for _, etcdGone := range []bool{false, true} {
		name := "etcd up"
		if etcdGone {
			name = "etcd gone"
		}
		t.Run(name, func(t *testing.T) { testShutdown(t, etcdGone) })
	}
}

func testShutdown(t *testing.T, etcdGone bool) {
	// Debian's etcd runs in its own process, so every goroutine of this
	// process after the test is the replica's or its client's.
	etcd := startDebianEtcd(t)
	before := goleak.IgnoreCurrent()
	cli, err := clientv3.New(clientv3.Config{Endpoints: etcd.Endpoints, DialTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	dpids := []topology.DPID{dpidN(1), dpidN(2)}
	sw := newFakeSwitches("solo", newBeliefs(t), dpids...)
	rep, err := New(Config{NodeID: "solo", Client: cli, Prefix: "/op25b-test/", Switches: sw,
		Policy: newFakePolicy(smallDoc(dpids...), 3), Records: newFakeRecords(), Compile: countingCompile,
		LeaseTTL: 2 * time.Second, EtcdTimeout: time.Second, Resync: 200 * time.Millisecond, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- rep.Run(ctx) }()
	testenv.Eventually(t, 20*time.Second, "both bridges mastered", func() bool { return len(rep.Masters()) == 2 })

	if etcdGone {
		etcd.StopMember(0)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		t.Fatal("Run did not return after its context was cancelled")
	}
	if n := replicaGoroutines(); n != "" {
		t.Fatalf("goroutines of the replica still running after Run returned:\n%s", n)
	}
	for _, d := range dpids {
		if des, _ := sw.get(d); des.Master {
			t.Errorf("%s: still master after shutdown", d)
		}
	}
	if !etcdGone {
		resp, err := cli.Get(context.Background(), "/op25b-test/masters/", clientv3.WithPrefix(), clientv3.WithCountOnly())
		if err != nil || resp.Count != 0 {
			t.Errorf("locks after shutdown: %v, %v; want none (lease revoked)", resp, err)
		}
	}
	if err := cli.Close(); err != nil && !etcdGone {
		t.Errorf("close etcd client: %v", err)
	}
	// With etcd gone, gRPC may leave a connection's redial attempt
	// sleeping out its backoff after Close; it ends by itself and is
	// neither ours nor the etcd client's to stop.
	goleak.VerifyNone(t, before, goleak.IgnoreTopFunction("google.golang.org/grpc.(*addrConn).resetTransportAndUnlock"))
}

// replicaGoroutines returns the stacks of live goroutines running a
// Replica method.
func replicaGoroutines() string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var found []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "controller/cluster.(*Replica)") {
			found = append(found, g)
		}
	}
	return strings.Join(found, "\n\n")
}
