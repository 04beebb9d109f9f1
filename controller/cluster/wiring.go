package cluster

import (
	"context"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/op25b/op25b/controller"
	"github.com/op25b/op25b/flows"
	"github.com/op25b/op25b/topology"
	"github.com/op25b/op25b/topology/store"
)

// Adapters from the real packages to the cluster's interfaces (ports.go).

// ControllerSwitches adapts the local OpenFlow controller.
func ControllerSwitches(c *controller.Controller) Switches { return controllerSwitches{c} }

type controllerSwitches struct{ c *controller.Controller }

func (s controllerSwitches) SetDesired(d Desired)       { s.c.SetDesired(d) }
func (s controllerSwitches) Forget(dpid topology.DPID)  { s.c.Forget(dpid) }
func (s controllerSwitches) Connected() []topology.DPID { return s.c.Connected() }

// Report looks up one bridge: the loop asks only about the bridges whose
// status record it rewrites, so a pass costs O(changed), not O(bridges).
func (s controllerSwitches) Report(dpid topology.DPID) (SwitchReport, bool) {
	st, ok := s.c.StatusOf(dpid)
	if !ok {
		return SwitchReport{}, false
	}
	return SwitchReport{
		Connected: st.Connected, AppliedRevision: st.AppliedRevision, Flows: st.Flows,
		LastError: st.LastError, LastReconcile: st.LastReconcile, DriftDetection: st.DriftDetection,
	}, true
}

// CachePolicy adapts the store's watch cache.
func CachePolicy(c *store.Cache) Policy { return cachePolicy{c} }

type cachePolicy struct{ c *store.Cache }

func (p cachePolicy) Snapshot() (*topology.Document, int64, bool) {
	s := p.c.Current()
	return s.Doc, s.Revision, s.Loaded
}

func (p cachePolicy) Changed() <-chan struct{} { return p.c.Changed() }

// Rejected: the cache reports a stored value it refuses (Snapshot.Err).
func (p cachePolicy) Rejected() bool { return p.c.Current().Err != nil }

// StoreRecords adapts the store: the replica registers with info.
func StoreRecords(s *store.Store, info store.ReplicaInfo) Records { return storeRecords{s, info} }

type storeRecords struct {
	s    *store.Store
	info store.ReplicaInfo
}

func (r storeRecords) RegisterReplica(ctx context.Context, lease clientv3.LeaseID) error {
	return r.s.RegisterReplica(ctx, r.info, lease)
}

func (r storeRecords) PutBridgeStatuses(ctx context.Context, sts []BridgeStatus, lease clientv3.LeaseID) error {
	return r.s.PutBridgeStatuses(ctx, sts, lease)
}

// DefaultCompile is flows.Compile with the default pipeline options.
var DefaultCompile = CompileWith(flows.DefaultOptions())

// CompileWith is flows.Compile with the given pipeline options (op25bd
// --first-table, --continue).
func CompileWith(opts flows.Options) CompileFunc {
	return func(doc *topology.Document, dpid topology.DPID, at time.Time) ([]flows.Flow, error) {
		c, err := flows.Compile(doc, dpid, at, opts)
		if err != nil {
			return nil, err
		}
		return c.Flows, nil
	}
}
