package cluster

import (
	"context"
	"errors"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// ensureLease obtains a lease when we have none — reads the cluster epoch
// (once per process), grants the lease, starts its keepalive, revokes the
// previous one — and registers the replica under it until that succeeds.
// Each etcd request has its own timeout.
func (r *Replica) ensureLease(ctx context.Context, st *loop) error {
	if st.lease == 0 {
		if err := r.grant(ctx, st); err != nil {
			return err
		}
	}
	if r.cfg.Records != nil && !st.registered {
		cctx, cancel := r.etcdCtx(ctx)
		defer cancel()
		if err := r.cfg.Records.RegisterReplica(cctx, st.lease); err != nil {
			return fmt.Errorf("register replica: %w", err)
		}
		st.registered = true
	}
	return nil
}

func (r *Replica) grant(ctx context.Context, st *loop) error {
	if st.epoch == 0 {
		epoch, err := r.readEpoch(ctx)
		if err != nil {
			return err
		}
		st.epoch = epoch
	}
	ttl := int64((r.cfg.LeaseTTL + time.Second - 1) / time.Second)
	cctx, cancel := r.etcdCtx(ctx)
	lease, err := r.cfg.Client.Grant(cctx, ttl)
	cancel()
	if err != nil {
		return fmt.Errorf("grant lease: %w", err)
	}
	if err := r.keepAlive(ctx, st, lease.ID); err != nil {
		return err
	}
	st.lease, st.registered = lease.ID, false
	r.leaseRenewed(lease.TTL)
	r.log.Info("joined cluster", "lease", fmt.Sprintf("%x", lease.ID), "ttl", r.cfg.LeaseTTL)
	if st.lostLease != 0 {
		// etcd may have kept the old lease alive across a leader change;
		// revoking it drops our stale locks and records at once.
		cctx, cancel := r.etcdCtx(ctx)
		if _, err := r.cfg.Client.Revoke(cctx, st.lostLease); err == nil {
			r.log.Info("revoked previous lease", "lease", fmt.Sprintf("%x", st.lostLease))
		}
		cancel()
		st.lostLease = 0
	}
	return nil
}

// keepAlive starts the keepalive stream of lease. The stream is owned by
// the loop: stopLease ends it, and so does ctx.
func (r *Replica) keepAlive(ctx context.Context, st *loop, lease clientv3.LeaseID) error {
	kctx, stop := context.WithCancel(ctx)
	ka, err := r.cfg.Client.KeepAlive(kctx, lease)
	if err != nil {
		stop()
		return fmt.Errorf("keep lease %x alive: %w", lease, err)
	}
	st.keepalive, st.stopLease = ka, stop
	return nil
}

// checkLease runs when the client stopped renewing the lease: the
// keepalive stream broke for longer than the TTL (e.g. an etcd leader
// election after a member died) or etcd said it expired. The client's
// deadline passing does not mean etcd expired it — a new leader extends every
// lease — so ask etcd. While the lease exists nobody else can hold our locks,
// so keeping mastership is safe; if it is gone or etcd cannot say, step down.
func (r *Replica) checkLease(ctx context.Context, st *loop) {
	if st.lease == 0 {
		return
	}
	cctx, cancel := r.etcdCtx(ctx)
	ttl, err := r.cfg.Client.TimeToLive(cctx, st.lease)
	cancel()
	if err == nil && ttl.TTL > 0 {
		st.stopLease()
		if r.keepAlive(ctx, st, st.lease) == nil {
			r.log.Warn("lease keepalive interrupted but the lease is alive; resumed", "lease", fmt.Sprintf("%x", st.lease), "ttl_left", ttl.TTL)
			return
		}
	}
	r.loseLease(st)
}

// loseLease is called when the lease could not be renewed within its TTL:
// etcd may already have handed our bridges to another replica, so stop acting
// as master at once (decide without a lease demotes everywhere). The flows
// stay; a slave only stops writing. The next pass asks for a new lease.
func (r *Replica) loseLease(st *loop) {
	r.log.Warn("lease lost; stepping down to slave on every bridge", "lease", fmt.Sprintf("%x", st.lease))
	r.dropLease(st)
	st.lostLease = st.lease
	st.lease = 0
	_, v := r.localView(st)
	r.applyLocal(st, decide(v))
	r.setReady(errors.New("etcd lease lost"), st)
	r.leaseGone()
}

// dropLease stops the keepalive stream.
func (r *Replica) dropLease(st *loop) {
	if st.stopLease != nil {
		st.stopLease()
	}
	st.keepalive, st.stopLease = nil, nil
}

// leave steps down everywhere and revokes the lease, which deletes our
// locks, connected records and status records at once so another replica
// takes over without waiting for the TTL. ctx is Run's, already done: the
// revoke gets its own bounded context.
func (r *Replica) leave(ctx context.Context, st *loop) {
	lease := st.lease
	r.dropLease(st)
	st.lease = 0
	_, v := r.localView(st)
	r.applyLocal(st, decide(v))
	if lease != 0 {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.cfg.EtcdTimeout)
		if _, err := r.cfg.Client.Revoke(cctx, lease); err != nil {
			r.log.Warn("revoke lease on shutdown; others take over after the TTL", "err", err)
		}
		cancel()
	}
	r.setReady(errors.New("cluster: stopped"), st)
	r.leaseGone()
	r.log.Info("left cluster")
}
