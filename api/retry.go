package api

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/op25b/op25b/topology/store"
)

// maxWriteAttempts bounds how often a write without precondition is tried
// when it keeps losing races; each loss means another writer committed, so
// the cluster as a whole is making progress.
const maxWriteAttempts = 10

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
func retryUnconditional(ctx context.Context, ifRevision int64, write func() (int64, error)) (int64, error) {
	for attempt := 1; ; attempt++ {
		rev, err := write()
		if err == nil || ifRevision != 0 || !errors.Is(err, store.ErrConflict) || attempt == maxWriteAttempts {
			return rev, err
		}
		// Spread the losers out so they do not collide again at once.
		wait := time.Duration(rand.Int64N(int64(attempt) * int64(5*time.Millisecond)))
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return rev, err
		}
	}
}
