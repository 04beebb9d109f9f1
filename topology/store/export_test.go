package store

import (
	"context"
	"fmt"
	"time"
)

// SetProbeInterval lets tests see an etcd outage in the cache sooner.
func (c *Cache) SetProbeInterval(d time.Duration) { c.probeInterval = d }

// SetBeforeWatch runs f each time the cache is about to open its watch.
func (c *Cache) SetBeforeWatch(f func()) { c.beforeWatch = f }

// CurrentKey exposes the commit record's key so tests can corrupt the
// stored document by hand, like an operator with etcdctl would.
func (s *Store) CurrentKey() string { return s.currentKey() }

// GenerationKey exposes the key prefix of one generation.
func (s *Store) GenerationKey(gen string) string { return s.generationKey(gen) }

const MaxAuditRecords, AuditTrimSlack = maxAuditRecords, auditTrimSlack

// AuditKey exposes the audit key for a commit time (tests fill the log).
func (s *Store) AuditKey(nanos int64) string {
	return s.auditPrefix() + fmt.Sprintf("%016x.%s", nanos, "00000000")
}

// PruneHistory runs the pruning a write runs.
func (s *Store) PruneHistory() { s.pruneHistory(context.Background()) }

// HistoryPrefix is where history records live.
func (s *Store) HistoryPrefix() string { return s.historyPrefix() }

// OnWritten registers f like a Cache does: it runs, before the write
// returns, for every document s commits (rev: the document revision).
func (s *Store) OnWritten(f func(rev int64)) { s.onWritten(func(st *state) { f(st.rev) }) }

// SetFlipWait bounds how long the cache's watch waits for this Store's own
// commit to be adopted before reading the document itself.
func (s *Store) SetFlipWait(d time.Duration) { s.flipWait = d }
