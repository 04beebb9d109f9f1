package api

import (
	"fmt"
	"net/http"
	"strconv"

	"github.com/op25b/op25b/api/apitypes"
	"github.com/op25b/op25b/topology/store"
)

// Audit paging limits.
const (
	defaultAuditLimit = 50
	maxAuditLimit     = 1000
)

// The response types live in apitypes, shared with clients.
type (
	AuditResponse = apitypes.Audit
	AuditEntry    = apitypes.AuditEntry
)

func (s *server) audit(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	limit, err := queryInt(q.Get("limit"), "limit", defaultAuditLimit, 1, maxAuditLimit)
	if err != nil {
		return err
	}
	before, err := queryInt(q.Get("before"), "before", 0, 1, 1<<62)
	if err != nil {
		return err
	}
	ctx, cancel := s.storeContext(r)
	defer cancel()
	// One more than asked tells whether an older page exists.
	records, err := s.cfg.Store.Audit(ctx, int(limit)+1, before)
	if err != nil {
		return fmt.Errorf("read audit log: %w", err)
	}
	resp := AuditResponse{Records: []AuditEntry{}}
	for i, rec := range records {
		if i == int(limit) {
			resp.NextBefore = records[i-1].Revision
			break
		}
		resp.Records = append(resp.Records, auditEntry(rec))
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// queryInt parses an optional integer query parameter within [lo, hi].
func queryInt(v, name string, def, lo, hi int64) (int64, error) {
	if v == "" {
		return def, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < lo || n > hi {
		return 0, newError(http.StatusBadRequest, CodeBadRequest, name, fmt.Sprintf("%s must be an integer in [%d, %d], got %q", name, lo, hi, v))
	}
	return n, nil
}

// auditEntry is the wire form of one audit record.
func auditEntry(rec store.AuditRecord) AuditEntry {
	e := AuditEntry{Revision: rec.Revision, Time: rec.Time, Who: rec.Who,
		Added: nonNil(rec.Summary.Added), Changed: nonNil(rec.Summary.Changed), Removed: nonNil(rec.Summary.Removed),
		Op: rec.Op, RollbackOf: rec.RollbackOf, Base: rec.Base, ChangesTotal: rec.ChangesTotal}
	for _, ch := range rec.Changes {
		e.Changes = append(e.Changes, apitypes.ItemChange{Item: ch.Item, Old: ch.Old, New: ch.New})
	}
	return e
}
