package api

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/op25b/op25b/topology/store"
)

// maxWriteAttempts bounds how often a write without precondition is tried
// when it keeps losing races; each loss means another writer committed, so
// the cluster as a whole is making progress. A replica whose writes meet a
// steady stream from another replica may lose several times in a row, so
// the bound is generous and the back-off short; the request's deadline
// (Config.StoreTimeout) bounds the whole.
const maxWriteAttempts = 32

// retryUnconditional runs write until it does not lose a race. A write the
// client did not condition on a revision (no If-Match, no body revision)
// does not depend on what another writer changed in between: an item PUT
// or DELETE re-applies its change to the newer document (and is
// re-validated there, so a delete of something that became referenced
// still fails with 409 referenced), and a whole PUT replaces whatever is
// there. Such a write should not fail because someone else wrote, so a
// store.ErrConflict is retried, a bounded number of times with jittered
// back-off, within the request's deadline. With a precondition the
// conflict is the answer (409).
//
// Writes through this replica also take turns (s.writeTurn): they would
// all be conditional on the same etcd key anyway, so running them one at
// a time costs no throughput and leaves only other replicas' writes to
// race with, which the retries absorb.
func (s *server) retryUnconditional(ctx context.Context, ifRevision int64, write func() (int64, error)) (int64, error) {
	for attempt := 1; ; attempt++ {
		select {
		case s.writeTurn <- struct{}{}:
		case <-ctx.Done():
			return 0, fmt.Errorf("waiting for a concurrent write on this replica: %w", ctx.Err())
		}
		rev, err := write()
		<-s.writeTurn
		if err == nil || ifRevision != 0 || !errors.Is(err, store.ErrConflict) || attempt == maxWriteAttempts {
			return rev, err
		}
		// Spread the losers out so they do not collide again at once.
		wait := time.Duration(rand.Int64N(int64(min(attempt, 10)) * int64(time.Millisecond)))
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return rev, err
		}
	}
}
