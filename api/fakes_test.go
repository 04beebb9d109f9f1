package api

import (
	"context"
	"fmt"
	"sort"
	"sync"

	"github.com/op25b/op25b/controller"
	"github.com/op25b/op25b/flows"
	"github.com/op25b/op25b/topology"
	"github.com/op25b/op25b/topology/store"
)

// memStore is an in-memory ConfigStore for the fuzz test (no etcd round
// trips, so thousands of inputs per second). It validates like the real
// store so that "nothing stored for invalid input" is checked against the
// API, not against this fake.
type memStore struct {
	mu     sync.Mutex
	doc    *topology.Document
	rev    int64
	writes int
	audit  []store.AuditRecord
	past   map[int64]*topology.Document
}

func newMemStore() *memStore { return &memStore{doc: &topology.Document{}} }

func (m *memStore) Load(ctx context.Context) (*topology.Document, int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.doc.Clone(), m.rev, nil
}

func (m *memStore) Replace(ctx context.Context, doc *topology.Document, opts store.WriteOptions) (int64, error) {
	return m.Update(ctx, opts, func(d *topology.Document) error {
		*d = *doc.Clone()
		return nil
	})
}

func (m *memStore) Update(ctx context.Context, opts store.WriteOptions, mutate func(*topology.Document) error) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if opts.IfRevision != 0 && opts.IfRevision != m.rev {
		return 0, fmt.Errorf("update: %w", store.ErrConflict)
	}
	d := m.doc.Clone()
	if err := mutate(d); err != nil {
		return 0, err
	}
	if err := topology.Validate(d); err != nil {
		return 0, err
	}
	if m.past == nil {
		m.past = map[int64]*topology.Document{}
	}
	m.past[m.rev] = m.doc
	m.doc, m.rev = d, m.rev+1
	m.writes++
	m.audit = append(m.audit, store.AuditRecord{Revision: m.rev, Who: opts.Who})
	return m.rev, nil
}

func (m *memStore) LoadAt(ctx context.Context, rev int64) (*topology.Document, int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if rev >= m.rev {
		return m.doc.Clone(), m.rev, nil
	}
	if d, ok := m.past[rev]; ok {
		return d.Clone(), rev, nil
	}
	return nil, 0, &store.PrunedError{Revision: rev, Oldest: 1}
}

func (m *memStore) Rollback(ctx context.Context, rev int64, opts store.WriteOptions) (int64, error) {
	d, _, err := m.LoadAt(ctx, rev)
	if err != nil {
		return 0, err
	}
	return m.Replace(ctx, d, opts)
}

func (m *memStore) Audit(ctx context.Context, limit int, before int64) ([]store.AuditRecord, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []store.AuditRecord
	for i := len(m.audit) - 1; i >= 0 && len(out) < limit; i-- {
		if before == 0 || m.audit[i].Revision < before {
			out = append(out, m.audit[i])
		}
	}
	return out, nil
}

// fakeSwitches stands in for the local controller.
type fakeSwitches struct {
	mu        sync.Mutex
	status    []controller.BridgeStatus
	installed map[topology.DPID][]flows.Flow
	counters  map[topology.DPID][]controller.FlowCounter
}

func (f *fakeSwitches) Status() []controller.BridgeStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := append([]controller.BridgeStatus(nil), f.status...)
	sort.Slice(out, func(i, j int) bool { return out[i].DPID < out[j].DPID })
	return out
}

func (f *fakeSwitches) Installed(ctx context.Context, dpid topology.DPID) ([]flows.Flow, []controller.FlowCounter, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.installed[dpid], f.counters[dpid], nil
}

func (f *fakeSwitches) DropCounters(dpid topology.DPID) []controller.FlowCounter {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.counters[dpid]
}

// fakeCluster is a fixed cluster view.
type fakeCluster struct {
	bridges  []store.BridgeStatus
	replicas []store.ReplicaInfo
	err      error
}

func (f *fakeCluster) BridgeStatuses(ctx context.Context) ([]store.BridgeStatus, error) {
	return f.bridges, f.err
}

func (f *fakeCluster) Replicas(ctx context.Context) ([]store.ReplicaInfo, error) {
	return f.replicas, f.err
}

// fakeDocs is a fixed DocSource.
type fakeDocs struct {
	snap    store.Snapshot
	healthy error
}

func (f *fakeDocs) Current() store.Snapshot { return f.snap }
func (f *fakeDocs) Healthy() error          { return f.healthy }

func statusOf(dpid topology.DPID, connected bool, role string, applied int64) controller.BridgeStatus {
	return controller.BridgeStatus{DPID: dpid, Connected: connected, Role: role, AppliedRevision: applied, Flows: 10}
}
