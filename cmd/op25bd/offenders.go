package main

import (
	"sync"

	"github.com/op25b/op25b/controller"
	"github.com/op25b/op25b/flows"
	"github.com/op25b/op25b/offenders"
	"github.com/op25b/op25b/topology"
	"github.com/op25b/op25b/topology/store"
)

// offenderRecorder hands the controller's offender reads to the tracker,
// naming each pool id with the document in the watch cache: the names of
// 100k pools are computed once per document revision, not per read.
type offenderRecorder struct {
	tracker *offenders.Tracker
	cache   *store.Cache

	mu       sync.Mutex
	revision int64
	names    map[uint32]string
}

// record is controller.Config.Offenders: called from session goroutines.
func (r *offenderRecorder) record(dpid topology.DPID, read controller.OffenderRead) {
	names := r.poolNames()
	b := offenders.Batch{Bridge: dpid.String(), At: read.At, Untracked: read.Untracked, Saturated: read.Saturated, Learned: read.Learned,
		Attempts: make([]offenders.Attempt, 0, len(read.Attempts))}
	for _, a := range read.Attempts {
		b.Attempts = append(b.Attempts, offenders.Attempt{Src: a.Src, Dst: a.Dst, Pool: names[a.PoolID],
			Observed: read.Observing[a.PoolID], Count: a.Count, Since: a.Since})
	}
	r.tracker.Add(b)
}

func (r *offenderRecorder) poolNames() map[uint32]string {
	snap := r.cache.Current()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.names == nil || snap.Revision != r.revision {
		r.names, r.revision = flows.PoolNames(snap.Doc), snap.Revision
	}
	return r.names
}
