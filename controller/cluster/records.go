package cluster

import "context"

// writeStatuses writes the status records decide asked for (and those of
// this pass's claims), in batches of at most maxTxnOps records, each under
// its own timeout. Every other dirty bridge needs no record; a batch that
// fails stays dirty, with those after it, for the next pass.
func (r *Replica) writeStatuses(ctx context.Context, st *loop, v view, writes []statusWrite) {
	clear(st.dirty)
	if r.cfg.Records == nil || st.lease == 0 {
		return
	}
	for len(writes) > 0 {
		batch := writes[:min(len(writes), maxTxnOps)]
		records := make([]BridgeStatus, 0, len(batch))
		for _, w := range batch {
			records = append(records, r.statusRecord(w, v))
		}
		cctx, cancel := r.etcdCtx(ctx)
		err := r.cfg.Records.PutBridgeStatuses(cctx, records, st.lease)
		cancel()
		if err != nil {
			r.log.Warn("write bridge status records", "count", len(batch), "err", err)
			for _, w := range writes {
				st.dirty[w.dpid] = true // retried on the next pass
			}
			return
		}
		for _, w := range batch {
			if w.orphan {
				delete(st.wrote, w.dpid)
			} else {
				st.wrote[w.dpid] = true
			}
		}
		writes = writes[len(batch):]
	}
}

// statusRecord is what the master reports about a bridge: the controller's
// view of it, or for an orphan that it is disconnected with no master.
func (r *Replica) statusRecord(w statusWrite, v view) BridgeStatus {
	rep, _ := r.cfg.Switches.Report(w.dpid)
	status := BridgeStatus{
		DPID: w.dpid, Connected: rep.Connected, Master: r.cfg.NodeID,
		AppliedRevision: rep.AppliedRevision, Flows: rep.Flows, LastError: rep.LastError,
		LastReconcile: rep.LastReconcile, Registered: v.policy.bridges[w.dpid], DriftDetection: rep.DriftDetection,
	}
	if w.orphan {
		status.Connected, status.Master, status.DriftDetection = false, "", ""
	}
	return status
}
