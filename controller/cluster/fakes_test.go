package cluster

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/op25b/op25b/flows"
	"github.com/op25b/op25b/internal/testenv"
	"github.com/op25b/op25b/topology"
)

// beliefs records, under one lock, which replicas currently believe they are
// master of each bridge, and fails the test the moment two do.
type beliefs struct {
	t  testing.TB
	mu sync.Mutex
	m  map[topology.DPID]map[string]bool // dpid → replica → master
}

func newBeliefs(t testing.TB) *beliefs { return &beliefs{t: t, m: map[topology.DPID]map[string]bool{}} }

func (b *beliefs) set(replica string, dpid topology.DPID, master bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.m[dpid] == nil {
		b.m[dpid] = map[string]bool{}
	}
	if master {
		for other, m := range b.m[dpid] {
			if m && other != replica {
				b.t.Errorf("bridge %s: %s became master while %s still is", dpid, replica, other)
			}
		}
	}
	b.m[dpid][replica] = master
}

// fakeSwitches stands in for the controller: it records every SetDesired.
type fakeSwitches struct {
	id      string
	beliefs *beliefs
	mu      sync.Mutex
	conn    map[topology.DPID]bool
	desired map[topology.DPID]Desired
	history []Desired
	forgot  []topology.DPID
}

func newFakeSwitches(id string, b *beliefs, dpids ...topology.DPID) *fakeSwitches {
	f := &fakeSwitches{id: id, beliefs: b, conn: map[topology.DPID]bool{}, desired: map[topology.DPID]Desired{}}
	for _, d := range dpids {
		f.conn[d] = true
	}
	return f
}

func (f *fakeSwitches) SetDesired(d Desired) {
	f.mu.Lock()
	f.desired[d.DPID] = d
	f.history = append(f.history, d)
	f.mu.Unlock()
	if f.beliefs != nil {
		f.beliefs.set(f.id, d.DPID, d.Master)
	}
}

func (f *fakeSwitches) Forget(dpid topology.DPID) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.desired, dpid)
	f.forgot = append(f.forgot, dpid)
}

func (f *fakeSwitches) Connected() []topology.DPID {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []topology.DPID
	for d, ok := range f.conn {
		if ok {
			out = append(out, d)
		}
	}
	slices.Sort(out)
	return out
}

func (f *fakeSwitches) Report(dpid topology.DPID) (SwitchReport, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	d, ok := f.desired[dpid]
	return SwitchReport{Connected: f.conn[dpid], AppliedRevision: d.Revision, Flows: len(d.Flows)}, ok
}

func (f *fakeSwitches) get(dpid topology.DPID) (Desired, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	d, ok := f.desired[dpid]
	return d, ok
}

// fakePolicy is a settable document source.
type fakePolicy struct {
	mu      sync.Mutex
	doc     *topology.Document
	rev     int64
	changed chan struct{}
}

func newFakePolicy(doc *topology.Document, rev int64) *fakePolicy {
	return &fakePolicy{doc: doc, rev: rev, changed: make(chan struct{}, 1)}
}

func (p *fakePolicy) Snapshot() (*topology.Document, int64, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.doc, p.rev, p.doc != nil
}

func (p *fakePolicy) Changed() <-chan struct{} { return p.changed }

func (p *fakePolicy) Rejected() bool { return false }

func (p *fakePolicy) set(doc *topology.Document, rev int64) {
	p.mu.Lock()
	p.doc, p.rev = doc, rev
	p.mu.Unlock()
	select {
	case p.changed <- struct{}{}:
	default:
	}
}

// countingCompile returns one flow per pool plus, for each service phase
// already started at `at`, one more: enough to see documents and phase
// boundaries change the desired set.
func countingCompile(doc *topology.Document, dpid topology.DPID, at time.Time) ([]flows.Flow, error) {
	var out []flows.Flow
	n := len(doc.Pools)
	for _, s := range doc.Services {
		for _, p := range s.Phases {
			if t, err := time.Parse(time.RFC3339, p.From); p.From == "" || (err == nil && !t.After(at)) {
				n++
			}
		}
	}
	for i := 0; i < n; i++ {
		out = append(out, flows.Flow{Table: 0, Priority: uint16(100 + i), Cookie: flows.CookieMarker})
	}
	return out, nil
}

// startDebianEtcd is a single-member /usr/bin/etcd on loopback that a test
// can stop (StopMember(0), a crash) and restart (StartMember(0), same data
// dir) to simulate losing etcd.
func startDebianEtcd(t testing.TB) *testenv.EtcdCluster { return testenv.NewEtcdCluster(t, 1) }

func newClient(t testing.TB, endpoints []string) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 2 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatalf("etcd client: %v", err)
	}
	t.Cleanup(func() { _ = cli.Close() })
	return cli
}

func dpidN(i int) topology.DPID { return topology.DPIDFromUint64(uint64(i)) }

// fakeRecords keeps the last status record per bridge.
type fakeRecords struct {
	mu       sync.Mutex
	statuses map[topology.DPID]BridgeStatus
	replicas int
}

func newFakeRecords() *fakeRecords { return &fakeRecords{statuses: map[topology.DPID]BridgeStatus{}} }

func (f *fakeRecords) RegisterReplica(ctx context.Context, lease clientv3.LeaseID) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.replicas++
	return nil
}

func (f *fakeRecords) PutBridgeStatuses(ctx context.Context, sts []BridgeStatus, lease clientv3.LeaseID) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, st := range sts {
		f.statuses[st.DPID] = st
	}
	return nil
}

func (f *fakeRecords) get(dpid topology.DPID) (BridgeStatus, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	st, ok := f.statuses[dpid]
	return st, ok
}
