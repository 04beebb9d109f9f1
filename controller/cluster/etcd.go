package cluster

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/op25b/op25b/topology"
	"github.com/op25b/op25b/topology/store"
)

// maxTxnOps is etcd's default --max-txn-ops: batches of connected/ records
// stay within it so that any cluster left at default settings takes them.
const maxTxnOps = 128

func (r *Replica) connectedKey(dpid topology.DPID) string {
	return r.cfg.Prefix + "connected/" + string(dpid) + "/" + r.cfg.NodeID
}

func (r *Replica) lockKey(dpid topology.DPID) string { return r.cfg.Prefix + "masters/" + string(dpid) }

func (r *Replica) documentKey() string { return r.cfg.Prefix + store.DocumentKey }

// readCluster reads connected/, masters/ and the document's commit record
// in one transaction, so the view is one etcd revision.
func (r *Replica) readCluster(ctx context.Context, lease clientv3.LeaseID) (*etcdView, error) {
	connPrefix, lockPrefix := r.cfg.Prefix+"connected/", r.cfg.Prefix+"masters/"
	cctx, cancel := r.etcdCtx(ctx)
	defer cancel()
	resp, err := r.cfg.Client.Txn(cctx).Then(
		clientv3.OpGet(connPrefix, clientv3.WithPrefix()),
		clientv3.OpGet(lockPrefix, clientv3.WithPrefix()),
		clientv3.OpGet(r.documentKey(), clientv3.WithKeysOnly()),
	).Commit()
	if err != nil {
		return nil, fmt.Errorf("read cluster state: %w", err)
	}
	ev := &etcdView{connected: map[topology.DPID]map[string]clientv3.LeaseID{}, locks: map[topology.DPID]lock{}}
	// Keys whose dpid does not parse were not written by a replica (a
	// hand edit): no bridge can match them, so they are left out.
	for _, kv := range resp.Responses[0].GetResponseRange().Kvs {
		rawDPID, replica, ok := strings.Cut(strings.TrimPrefix(string(kv.Key), connPrefix), "/")
		dpid, err := topology.ParseDPID(rawDPID)
		if !ok || err != nil {
			continue
		}
		if ev.connected[dpid] == nil {
			ev.connected[dpid] = map[string]clientv3.LeaseID{}
		}
		ev.connected[dpid][replica] = clientv3.LeaseID(kv.Lease)
	}
	for _, kv := range resp.Responses[1].GetResponseRange().Kvs {
		dpid, err := topology.ParseDPID(strings.TrimPrefix(string(kv.Key), lockPrefix))
		if err != nil {
			continue
		}
		ev.locks[dpid] = lock{
			holder: string(kv.Value), lease: clientv3.LeaseID(kv.Lease),
			createRev: kv.CreateRevision, modRev: kv.ModRevision,
		}
	}
	if kvs := resp.Responses[2].GetResponseRange().Kvs; len(kvs) == 1 {
		ev.documentRevision = kvs[0].ModRevision
	}
	return ev, nil
}

// applyEtcd carries out the etcd actions in order: connected/ records,
// releases, claims. It stops at the first failure; the next pass reads
// again and decides again. A successful claim adds its status write to a.
func (r *Replica) applyEtcd(ctx context.Context, st *loop, a *actions) error {
	if err := r.publishConnected(ctx, st.lease, a.publish, a.unpublish); err != nil {
		return err
	}
	if err := r.releaseAll(ctx, st, a.releases); err != nil {
		return err
	}
	for _, d := range a.deferred {
		r.log.Info("not claiming until the policy snapshot catches up with etcd", "dpid", d.dpid,
			"revision", d.policyRevision, "etcd_revision", d.documentRevision)
	}
	claimed, err := r.claimAll(ctx, st, a.claims)
	for _, dpid := range claimed {
		a.statuses = append(a.statuses, statusWrite{dpid: dpid})
	}
	return err
}

// releaseAll releases locks in transactions of up to maxTxnOps, each
// conditioned on every lock's ModRevision: when a replica restarts, a
// third of a thousand bridges move back to it, and each bridge costing its
// own request would be a thousand writes where a few do. A batch whose
// condition fails (a lock changed since the read) is released one lock at
// a time.
func (r *Replica) releaseAll(ctx context.Context, st *loop, rels []release) error {
	for len(rels) > 0 {
		batch := rels[:min(len(rels), maxTxnOps)]
		rels = rels[len(batch):]
		if len(batch) == 1 {
			if err := r.release(ctx, st, batch[0]); err != nil {
				return err
			}
			continue
		}
		cmps := make([]clientv3.Cmp, 0, len(batch))
		ops := make([]clientv3.Op, 0, len(batch))
		for _, rel := range batch {
			r.demote(st, rel.dpid, "release") // idempotent: applyLocal demoted already
			cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(r.lockKey(rel.dpid)), "=", rel.modRev))
			ops = append(ops, clientv3.OpDelete(r.lockKey(rel.dpid)))
		}
		cctx, cancel := r.etcdCtx(ctx)
		resp, err := r.cfg.Client.Txn(cctx).If(cmps...).Then(ops...).Commit()
		cancel()
		if err != nil {
			return fmt.Errorf("release %d locks: %w", len(batch), err)
		}
		if !resp.Succeeded {
			for _, rel := range batch {
				if err := r.release(ctx, st, rel); err != nil {
					return err
				}
			}
			continue
		}
		for _, rel := range batch {
			r.log.Info("lock released", "dpid", rel.dpid, "assignee", rel.assignee)
		}
	}
	return nil
}

// claimAll claims free locks in transactions of up to maxTxnOps-1 locks
// (one compare each, plus the document's): all of a batch under one etcd
// revision, which is every claimed lock's CreateRevision and so its
// generation. A batch whose condition fails (a lock taken meanwhile, or a
// newer document) is claimed one lock at a time, as claim decides. It
// returns the bridges claimed, also when it fails part way.
func (r *Replica) claimAll(ctx context.Context, st *loop, claims []claim) ([]topology.DPID, error) {
	var claimed []topology.DPID
	for len(claims) > 0 {
		batch := claims[:min(len(claims), maxTxnOps-1)]
		claims = claims[len(batch):]
		if len(batch) > 1 {
			ok, err := r.claimBatch(ctx, st, batch)
			if err != nil {
				return claimed, err
			}
			if ok {
				for _, c := range batch {
					claimed = append(claimed, c.dpid)
				}
				continue
			}
		}
		for _, c := range batch {
			ok, err := r.claim(ctx, st, c)
			if err != nil {
				return claimed, err
			}
			if ok {
				claimed = append(claimed, c.dpid)
			}
		}
	}
	return claimed, nil
}

// claimBatch is claim for several locks at once, all or none. The claims
// of one pass share the policy snapshot, so one document compare covers
// them.
func (r *Replica) claimBatch(ctx context.Context, st *loop, batch []claim) (bool, error) {
	cmps := make([]clientv3.Cmp, 0, len(batch)+1)
	ops := make([]clientv3.Op, 0, len(batch))
	for _, c := range batch {
		key := r.lockKey(c.dpid)
		cmps = append(cmps, clientv3.Compare(clientv3.CreateRevision(key), "=", 0))
		ops = append(ops, clientv3.OpPut(key, r.cfg.NodeID, clientv3.WithLease(st.lease)))
	}
	if c := batch[0]; c.checkDocument {
		cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(r.documentKey()), "<", c.policyRevision+1))
	}
	cctx, cancel := r.etcdCtx(ctx)
	defer cancel()
	tr, err := r.cfg.Client.Txn(cctx).If(cmps...).Then(ops...).Commit()
	if err != nil {
		return false, fmt.Errorf("claim %d locks: %w", len(batch), err)
	}
	if !tr.Succeeded {
		return false, nil
	}
	g := generation(st.epoch, tr.Header.Revision)
	for _, c := range batch {
		b := st.bridge(c.dpid)
		b.master, b.generation = true, g
		st.dirty[c.dpid] = true
		r.log.Info("mastership claimed", "dpid", c.dpid, "generation", g)
	}
	return true, nil
}

// publishConnected writes and deletes our connected/ records in
// transactions of at most maxTxnOps operations, each under its own timeout.
func (r *Replica) publishConnected(ctx context.Context, lease clientv3.LeaseID, publish, unpublish []topology.DPID) error {
	ops := make([]clientv3.Op, 0, len(publish)+len(unpublish))
	for _, dpid := range publish {
		ops = append(ops, clientv3.OpPut(r.connectedKey(dpid), "", clientv3.WithLease(lease)))
	}
	for _, dpid := range unpublish {
		ops = append(ops, clientv3.OpDelete(r.connectedKey(dpid)))
	}
	for len(ops) > 0 {
		batch := ops[:min(len(ops), maxTxnOps)]
		ops = ops[len(batch):]
		cctx, cancel := r.etcdCtx(ctx)
		_, err := r.cfg.Client.Txn(cctx).Then(batch...).Commit()
		cancel()
		if err != nil {
			return fmt.Errorf("publish %d connected records: %w", len(batch), err)
		}
	}
	return nil
}

// release deletes our lock if it is still the one we read. SLAVE first,
// then free the lock, so there is no moment with two replicas believing
// they are master (applyLocal demoted already; demote is idempotent).
func (r *Replica) release(ctx context.Context, st *loop, rel release) error {
	r.demote(st, rel.dpid, "release")
	key := r.lockKey(rel.dpid)
	cctx, cancel := r.etcdCtx(ctx)
	defer cancel()
	if _, err := r.cfg.Client.Txn(cctx).
		If(clientv3.Compare(clientv3.ModRevision(key), "=", rel.modRev)).
		Then(clientv3.OpDelete(key)).Commit(); err != nil {
		return fmt.Errorf("release %s: %w", rel.dpid, err)
	}
	r.log.Info("lock released", "dpid", rel.dpid, "assignee", rel.assignee)
	return nil
}

// claim creates our lock if it is still free and, unless the policy is
// rejected, the document in etcd is still not newer than our snapshot
// (decide checked on its read; the document may have changed since). It
// reports whether we are master now.
func (r *Replica) claim(ctx context.Context, st *loop, c claim) (bool, error) {
	key, docKey := r.lockKey(c.dpid), r.documentKey()
	cmps := []clientv3.Cmp{clientv3.Compare(clientv3.CreateRevision(key), "=", 0)}
	if c.checkDocument {
		cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(docKey), "<", c.policyRevision+1))
	}
	cctx, cancel := r.etcdCtx(ctx)
	defer cancel()
	tr, err := r.cfg.Client.Txn(cctx).If(cmps...).
		Then(clientv3.OpPut(key, r.cfg.NodeID, clientv3.WithLease(st.lease))).
		Else(clientv3.OpGet(docKey, clientv3.WithKeysOnly())).Commit()
	if err != nil {
		return false, fmt.Errorf("claim %s: %w", c.dpid, err)
	}
	if !tr.Succeeded {
		if kvs := tr.Responses[0].GetResponseRange().Kvs; c.checkDocument && len(kvs) == 1 && kvs[0].ModRevision > c.policyRevision {
			r.log.Info("not claiming until the policy snapshot catches up with etcd", "dpid", c.dpid,
				"revision", c.policyRevision, "etcd_revision", kvs[0].ModRevision)
		}
		return false, nil
	}
	// The key was created by this txn, so its CreateRevision is the txn's
	// revision: the generation for ROLE_REQUEST.
	b := st.bridge(c.dpid)
	b.master, b.generation = true, generation(st.epoch, tr.Header.Revision)
	st.dirty[c.dpid] = true
	r.log.Info("mastership claimed", "dpid", c.dpid, "generation", b.generation)
	return true, nil
}

// readEpoch returns the cluster's epoch, creating it (now, in Unix seconds)
// if this is the first replica ever to use this etcd.
func (r *Replica) readEpoch(ctx context.Context) (uint64, error) {
	key := r.cfg.Prefix + epochKey
	now := strconv.FormatInt(r.cfg.Now().Unix(), 10)
	cctx, cancel := r.etcdCtx(ctx)
	defer cancel()
	resp, err := r.cfg.Client.Txn(cctx).
		If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
		Then(clientv3.OpPut(key, now)).
		Else(clientv3.OpGet(key)).Commit()
	if err != nil {
		return 0, fmt.Errorf("read cluster epoch: %w", err)
	}
	value := now
	if !resp.Succeeded {
		kvs := resp.Responses[0].GetResponseRange().Kvs
		if len(kvs) != 1 {
			return 0, fmt.Errorf("read cluster epoch: %s vanished", key)
		}
		value = string(kvs[0].Value)
	}
	epoch, err := strconv.ParseUint(value, 10, 31)
	if err != nil || epoch == 0 {
		return 0, fmt.Errorf("cluster epoch %s = %q is not a Unix time in seconds", key, value)
	}
	return epoch, nil
}
