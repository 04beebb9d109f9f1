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

// The types in this file are the small interfaces between the cluster loop
// and the parts it drives. The daemon satisfies them with the real
// controller, watch cache and store (see wiring.go); tests use fakes, so the
// loop can be exercised against a real etcd without OVS (and decide, the
// protocol itself, without etcd).

// Desired is what one bridge should have: the controller's own type.
type Desired = controller.Desired

// SwitchReport is what the local controller knows about one bridge, used for
// the status record a master writes.
type SwitchReport struct {
	Connected       bool
	AppliedRevision int64
	Flows           int
	LastError       string
	LastReconcile   time.Time
	DriftDetection  string // controller.DriftMonitor or DriftPoll while master
}

// Switches is the local OpenFlow side (the controller). Every method is
// called from the cluster loop and must not block for long; Report is
// called once per status record written, so it must cost O(1), not
// O(bridges).
type Switches interface {
	SetDesired(d Desired)
	Forget(dpid topology.DPID)
	Connected() []topology.DPID
	Report(dpid topology.DPID) (SwitchReport, bool)
}

// Policy is the replica's in-memory copy of the policy document (the watch
// cache). Snapshot returns the last good document; loaded is false until one
// was read, and the cluster never enforces anything before that.
type Policy interface {
	Snapshot() (doc *topology.Document, revision int64, loaded bool)
	Changed() <-chan struct{}
	// Rejected reports that etcd holds a newer document the Policy refuses
	// (it does not decode or validate) while Snapshot keeps the last good
	// one: that snapshot is then the newest anyone can enforce, so its age
	// must not block a mastership claim.
	Rejected() bool
}

// BridgeStatus is the status record a master publishes: the store's own type.
type BridgeStatus = store.BridgeStatus

// Records publishes this replica and its bridges' status in etcd, bound to
// the replica's lease (the store satisfies it through wiring.go).
type Records interface {
	RegisterReplica(ctx context.Context, lease clientv3.LeaseID) error
	// PutBridgeStatuses stores the records (at most 128 per call from the
	// loop, etcd's default transaction limit) bound to lease.
	PutBridgeStatuses(ctx context.Context, sts []BridgeStatus, lease clientv3.LeaseID) error
}

// CompileFunc computes the complete desired flow set of one bridge at one
// instant (flows.Compile with the default options in the daemon). Its
// result must depend on the bridge only through its pop, as flows.Compile's
// does: the loop compiles once per pop and hands bridges of one pop the
// same slice, which nobody may modify.
type CompileFunc func(doc *topology.Document, dpid topology.DPID, at time.Time) ([]flows.Flow, error)
