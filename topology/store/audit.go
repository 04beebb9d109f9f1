package store

import (
	"bytes"
	"context"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// ChangeSummary names what one write changed, as "<kind>/<name>" ("pools/
// tokyo-dyn", "bridges/0000000000000001") or "ports". Each list holds at
// most 100 names; a longer one ends with "… and N more".
type ChangeSummary struct {
	Added   []string `json:"added,omitempty"`
	Changed []string `json:"changed,omitempty"`
	Removed []string `json:"removed,omitempty"`
}

// AuditRecord is one committed write. Revision is the document revision
// the write produced (the ModRevision of its audit key, written in the
// same transaction as the commit record).
//
// Records written before the store kept history have no Op, Base or
// Changes; history cannot reach past them.
type AuditRecord struct {
	Revision int64         `json:"revision"`
	Time     time.Time     `json:"time"`
	Who      string        `json:"who"`
	Summary  ChangeSummary `json:"summary"`
	// Op is OpReplace, OpUpdate or OpRollback; RollbackOf is the revision
	// whose document a rollback restored.
	Op         string `json:"op,omitempty"`
	RollbackOf int64  `json:"rollback_of,omitempty"`
	// Base is the document revision the write replaced (0: none).
	Base int64 `json:"base,omitempty"`
	// Changes are the first item changes (by key) with old and new values;
	// ChangesTotal counts them all (history.go keeps every one).
	Changes      []ItemChange `json:"changes,omitempty"`
	ChangesTotal int          `json:"changes_total,omitempty"`
}

// auditValue is the stored form; the revision is etcd's. Fields added
// since the first version are optional, so older records still decode.
type auditValue struct {
	Time          time.Time     `json:"time"`
	Who           string        `json:"who"`
	Summary       ChangeSummary `json:"summary"`
	Op            string        `json:"op,omitempty"`
	RollbackOf    int64         `json:"rollback_of,omitempty"`
	Base          int64         `json:"base,omitempty"`
	Changes       []ItemChange  `json:"changes,omitempty"`
	ChangesTotal  int           `json:"changes_total,omitempty"`
	HistoryChunks int           `json:"history_chunks,omitempty"`
}

// diffItems compares the stored items (nil when unknown: everything is
// then "added") with the new ones, sorted by key. It returns what to put,
// what to delete, and the summary for the audit log.
func diffItems(old map[string][]byte, items []encodedItem) (puts []encodedItem, dels []string, sum ChangeSummary) {
	var added, changed, removed []string
	seen := make(map[string]bool, len(items))
	for _, it := range items {
		seen[it.key] = true
		prev, ok := old[it.key]
		switch {
		case !ok:
			added = append(added, it.key)
			puts = append(puts, it)
		case !bytes.Equal(prev, it.value):
			changed = append(changed, it.key)
			puts = append(puts, it)
		}
	}
	for k := range old {
		if !seen[k] {
			dels = append(dels, k)
		}
	}
	sortStrings(dels)
	removed = append(removed, dels...)
	return puts, dels, ChangeSummary{
		Added:   capList(added),
		Changed: capList(changed),
		Removed: capList(removed),
	}
}

func capList(l []string) []string {
	if len(l) <= summaryLimit {
		return l
	}
	out := append([]string(nil), l[:summaryLimit]...)
	return append(out, fmt.Sprintf("… and %d more", len(l)-summaryLimit))
}

// Audit returns audit records newest first: at most limit (100 when
// limit ≤ 0), only those with Revision < before unless before is 0. Page
// with before = last record's Revision. The only cap on limit is the
// log's own bound, so a caller can ask for one more record than it shows
// to learn whether an older page exists (a cap of its own here made the
// API's limit=1000 look like the last page).
func (s *Store) Audit(ctx context.Context, limit int, before int64) ([]AuditRecord, error) {
	if limit <= 0 {
		limit = 100
	}
	limit = min(limit, maxAuditRecords+auditTrimSlack)
	opts := []clientv3.OpOption{
		clientv3.WithPrefix(),
		clientv3.WithSort(clientv3.SortByModRevision, clientv3.SortDescend),
		clientv3.WithLimit(int64(limit)),
	}
	if before > 0 {
		if before == 1 {
			return []AuditRecord{}, nil
		}
		opts = append(opts, clientv3.WithMaxModRev(before-1))
	}
	cctx, cancel := context.WithTimeout(ctx, s.opTimeout)
	defer cancel()
	resp, err := s.cli.Get(cctx, s.auditPrefix(), opts...)
	if err != nil {
		return nil, s.etcdError("read audit log", err)
	}
	out := make([]AuditRecord, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		var v auditValue
		if err := decodeStrict(kv.Value, &v); err != nil {
			s.log.Warn("skipping undecodable audit record", "key", string(kv.Key), "revision", kv.ModRevision, "err", err)
			continue
		}
		out = append(out, v.record(kv.ModRevision))
	}
	return out, nil
}

// maxAuditRecords bounds the audit log in etcd; older records are deleted
// in chunks of auditTrimSlack once the log is that much over the bound.
// Without a bound every write would grow etcd forever, and Audit — which
// etcd can only answer by reading the whole log (it sorts by revision) —
// would get slower with every write.
const (
	maxAuditRecords = 10_000
	auditTrimSlack  = 1_000
)

// trimAudit deletes the oldest audit records beyond maxAuditRecords. Best
// effort: a failure only delays trimming to a later write.
func (s *Store) trimAudit(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, s.opTimeout)
	defer cancel()
	resp, err := s.cli.Get(ctx, s.auditPrefix(), clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil || resp.Count <= maxAuditRecords+auditTrimSlack {
		return
	}
	// Audit keys are named by commit time, so key order is (up to clock
	// skew between replicas) age order: keep the newest maxAuditRecords.
	excess := resp.Count - maxAuditRecords
	old, err := s.cli.Get(ctx, s.auditPrefix(), clientv3.WithPrefix(), clientv3.WithKeysOnly(),
		clientv3.WithLimit(excess), clientv3.WithRev(resp.Header.Revision))
	if err != nil || len(old.Kvs) == 0 {
		return
	}
	last := string(old.Kvs[len(old.Kvs)-1].Key)
	if _, err := s.cli.Delete(ctx, s.auditPrefix(), clientv3.WithRange(last+"\x00")); err != nil {
		s.log.Warn("cannot trim audit log", "err", err)
		return
	}
	s.log.Info("audit log trimmed", "deleted", len(old.Kvs), "kept", maxAuditRecords)
}

func (v auditValue) record(rev int64) AuditRecord {
	return AuditRecord{Revision: rev, Time: v.Time, Who: v.Who, Summary: v.Summary, Op: v.Op, RollbackOf: v.RollbackOf,
		Base: v.Base, Changes: v.Changes, ChangesTotal: v.ChangesTotal}
}
