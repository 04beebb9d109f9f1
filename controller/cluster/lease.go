package cluster

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
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
	st.leaseTTL, st.confirmed, st.keepaliveLost, st.leaseGone = time.Duration(lease.TTL)*time.Second, time.Now(), false, false
	if st.leaseTTL != time.Duration(ttl)*time.Second {
		// etcd grants at least 1.5 election timeouts (2 s with its
		// defaults); a longer TTL slows takeover accordingly.
		r.log.Warn("etcd granted another lease TTL than asked", "asked", r.cfg.LeaseTTL, "granted", st.leaseTTL)
	}
	r.log.Info("joined cluster", "lease", fmt.Sprintf("%x", lease.ID), "ttl", st.leaseTTL)
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

// errLeaseUnconfirmed: the keepalive stream stopped answering and etcd has
// not yet said whether the lease lives (checkLease).
var errLeaseUnconfirmed = errors.New("lease keepalive interrupted; asking etcd whether the lease lives")

// health is the lease's health for decide.
func (st *loop) health() leaseHealth {
	h := leaseHealth{ttl: st.leaseTTL, gone: st.leaseGone}
	if st.keepaliveLost {
		// Never 0 while lost: decide tells "confirmed" from "unconfirmed"
		// by it.
		h.unconfirmed = max(time.Since(st.confirmed), time.Nanosecond)
	}
	return h
}

// noteKeepalive handles one message of the keepalive stream: a renewal
// confirms the lease; a closed stream (the client got no answer for a
// whole TTL, e.g. during an etcd leader election) or a TTL of 0 (etcd
// says it expired) leaves the verdict to checkLease and decide.
func (r *Replica) noteKeepalive(st *loop, resp *clientv3.LeaseKeepAliveResponse, ok bool) {
	switch {
	case ok && resp != nil && resp.TTL > 0:
		st.confirmed = time.Now()
		r.leaseRenewed(resp.TTL)
		return
	case ok && resp != nil:
		st.leaseGone = true
	default:
		r.log.Warn("lease keepalive stopped answering; asking etcd", "lease", fmt.Sprintf("%x", st.lease),
			"last_confirmed", time.Since(st.confirmed).Round(time.Millisecond))
	}
	r.dropLease(st)
	st.keepaliveLost = true
}

// checkLease asks etcd whether the lease lives, once per pass while the
// keepalive stream is down. The client's deadline passing does not mean
// etcd expired it — a new leader extends every lease — so while the lease
// exists nobody else can hold our locks and mastership is kept; the
// keepalive resumes. If etcd says it is gone, or cannot say for longer
// than the TTL plus leaseGrace, decide steps down.
func (r *Replica) checkLease(ctx context.Context, st *loop) {
	if st.lease == 0 || st.leaseGone {
		return
	}
	cctx, cancel := r.etcdCtx(ctx)
	ttl, err := r.cfg.Client.TimeToLive(cctx, st.lease)
	cancel()
	switch {
	case err == nil && ttl.TTL > 0:
		if err := r.keepAlive(ctx, st, st.lease); err != nil {
			return
		}
		st.confirmed, st.keepaliveLost = time.Now(), false
		r.leaseRenewed(ttl.TTL)
		r.log.Warn("lease keepalive interrupted but the lease is alive; resumed", "lease", fmt.Sprintf("%x", st.lease), "ttl_left", ttl.TTL)
	case err == nil, errors.Is(err, rpctypes.ErrLeaseNotFound):
		st.leaseGone = true
	default:
		r.log.Debug("cannot tell whether the lease lives", "lease", fmt.Sprintf("%x", st.lease), "err", err)
	}
}

// loseLease forgets a lease decide no longer trusts (it demoted every
// bridge first): etcd may already have handed our bridges to another
// replica. The flows stay; a slave only stops writing. The next pass asks
// for a new lease and revokes this one once etcd answers.
func (r *Replica) loseLease(st *loop, reason string) {
	r.log.Warn("lease lost; stepping down to slave on every bridge", "lease", fmt.Sprintf("%x", st.lease), "reason", reason)
	r.dropLease(st)
	st.lostLease, st.lease = st.lease, 0
	st.keepaliveLost, st.leaseGone = false, false
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
