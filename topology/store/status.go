package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/op25b/op25b/topology"
)

// BridgeStatus is what the master of a bridge reports about it. It is
// bound to the master's lease: when the master dies, its records vanish
// with the lease and the next master writes its own.
type BridgeStatus struct {
	DPID      topology.DPID `json:"dpid"`
	Connected bool          `json:"connected"`
	// Master is the node id of the replica holding the master role.
	Master string `json:"master"`
	// AppliedRevision is the document revision whose flows the switch
	// acknowledged with a barrier.
	AppliedRevision int64     `json:"applied_revision"`
	Flows           int       `json:"flows"`
	LastError       string    `json:"last_error"`
	LastReconcile   time.Time `json:"last_reconcile"`
	// Registered is false for a bridge that connected but is not listed
	// in the document's bridges (docs/semantics.md, phases).
	Registered bool `json:"registered"`
	// DriftDetection is how the master finds drift: "monitor" (the switch
	// reports flow-table changes) or "poll" (periodic full audits); empty
	// in records written before it existed and for orphans.
	DriftDetection string `json:"drift_detection,omitempty"`
}

// ReplicaInfo is one live op25bd replica, bound to its lease.
type ReplicaInfo struct {
	ID           string    `json:"id"`
	APIAddr      string    `json:"api_addr"`
	OpenFlowAddr string    `json:"openflow_addr"`
	Version      string    `json:"version"`
	Started      time.Time `json:"started"`
}

func (s *Store) bridgeStatusPrefix() string { return s.prefix + "status/bridges/" }
func (s *Store) replicasPrefix() string     { return s.prefix + "replicas/" }

// PutBridgeStatus stores st under its dpid, attached to lease (0: none).
func (s *Store) PutBridgeStatus(ctx context.Context, st BridgeStatus, lease clientv3.LeaseID) error {
	if st.DPID == "" {
		return fmt.Errorf("put bridge status: empty dpid")
	}
	return s.putJSON(ctx, "put bridge status "+string(st.DPID), s.bridgeStatusPrefix()+string(st.DPID), st, lease)
}

// PutBridgeStatuses stores many records, attached to lease (0: none), in
// as few transactions as etcd's default limits allow (128 operations and
// 1 MiB each), each under its own timeout: a master rewriting thousands of
// records after a takeover sends tens of requests, not thousands. Each
// transaction is all-or-nothing; on error, those before it were stored.
// A dpid given twice is stored as its last record.
func (s *Store) PutBridgeStatuses(ctx context.Context, sts []BridgeStatus, lease clientv3.LeaseID) error {
	var opts []clientv3.OpOption
	if lease != clientv3.NoLease {
		opts = append(opts, clientv3.WithLease(lease))
	}
	var ops []clientv3.Op
	inBatch := map[string]bool{} // etcd refuses a txn that puts one key twice
	size := 0
	flush := func() error {
		if len(ops) == 0 {
			return nil
		}
		cctx, cancel := context.WithTimeout(ctx, s.opTimeout)
		defer cancel()
		if _, err := s.cli.Txn(cctx).Then(ops...).Commit(); err != nil {
			return s.etcdError(fmt.Sprintf("put %d bridge statuses", len(ops)), err)
		}
		ops, size = ops[:0], 0
		clear(inBatch)
		return nil
	}
	for _, st := range sts {
		if st.DPID == "" {
			return fmt.Errorf("put bridge status: empty dpid")
		}
		data, err := json.Marshal(st)
		if err != nil {
			return fmt.Errorf("put bridge status %s: %w", st.DPID, err)
		}
		key := s.bridgeStatusPrefix() + string(st.DPID)
		if len(ops) == maxTxnOps || size+len(key)+len(data) > maxTxnBytes || inBatch[key] {
			if err := flush(); err != nil {
				return err
			}
		}
		ops = append(ops, clientv3.OpPut(key, string(data), opts...))
		inBatch[key] = true
		size += len(key) + len(data)
	}
	return flush()
}

// BridgeStatuses returns every bridge status record, sorted by dpid.
// Undecodable records are logged and skipped.
func (s *Store) BridgeStatuses(ctx context.Context) ([]BridgeStatus, error) {
	var out []BridgeStatus
	err := s.listJSON(ctx, "read bridge status", s.bridgeStatusPrefix(), func() any {
		out = append(out, BridgeStatus{})
		return &out[len(out)-1]
	}, func() { out = out[:len(out)-1] })
	if out == nil {
		out = []BridgeStatus{}
	}
	return out, err
}

// RegisterReplica stores info under its id, attached to lease (0: none).
func (s *Store) RegisterReplica(ctx context.Context, info ReplicaInfo, lease clientv3.LeaseID) error {
	if info.ID == "" {
		return fmt.Errorf("register replica: empty id")
	}
	return s.putJSON(ctx, "register replica "+info.ID, s.replicasPrefix()+info.ID, info, lease)
}

// Replicas returns the registered replicas, sorted by id.
func (s *Store) Replicas(ctx context.Context) ([]ReplicaInfo, error) {
	var out []ReplicaInfo
	err := s.listJSON(ctx, "read replicas", s.replicasPrefix(), func() any {
		out = append(out, ReplicaInfo{})
		return &out[len(out)-1]
	}, func() { out = out[:len(out)-1] })
	if out == nil {
		out = []ReplicaInfo{}
	}
	return out, err
}

func (s *Store) putJSON(ctx context.Context, op, key string, v any, lease clientv3.LeaseID) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	var opts []clientv3.OpOption
	if lease != clientv3.NoLease {
		opts = append(opts, clientv3.WithLease(lease))
	}
	cctx, cancel := context.WithTimeout(ctx, s.opTimeout)
	defer cancel()
	if _, err := s.cli.Put(cctx, key, string(data), opts...); err != nil {
		return s.etcdError(op, err)
	}
	return nil
}

// listJSON decodes every value under prefix into next(); drop() undoes
// the last next() when a value does not decode.
func (s *Store) listJSON(ctx context.Context, op, prefix string, next func() any, drop func()) error {
	cctx, cancel := context.WithTimeout(ctx, s.opTimeout)
	defer cancel()
	resp, err := s.cli.Get(cctx, prefix, clientv3.WithPrefix())
	if err != nil {
		return s.etcdError(op, err)
	}
	for _, kv := range resp.Kvs {
		if err := json.Unmarshal(kv.Value, next()); err != nil {
			drop()
			s.log.Warn("skipping undecodable record", "key", string(kv.Key), "err", err)
		}
	}
	return nil
}
