package store

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/op25b/op25b/topology"
)

// History: every committed write keeps, besides its audit record, the
// complete list of item changes with each item's old and new value
// (gzip-compressed JSON, split into chunks under history/<audit id>/). A
// past document is the current one with the changes of every newer write
// undone, newest first. etcd's own MVCC history cannot serve this: it is
// compacted after an hour.
//
// Writing a history record never breaks a write's atomicity: a small one
// goes into the commit transaction itself; a big one (a 100k-pool replace)
// is written in chunks before it, invisible until the audit record that
// names it is committed, and deleted again if the commit loses its race.
//
// Storage is bounded by the number of records and by their compressed
// bytes (see historyLimits); the newest records are never pruned for bytes
// so that the last minRecords revisions can always be fetched.

// ItemChange is one item before (Old) and after (New) a write, as stored:
// its JSON value, absent when the item did not exist on that side. Item
// is "kind/name" or "ports".
type ItemChange struct {
	Item string          `json:"item"`
	Old  json.RawMessage `json:"old,omitempty"`
	New  json.RawMessage `json:"new,omitempty"`
}

// Write operations recorded in the audit log.
const (
	OpReplace  = "replace"
	OpUpdate   = "update"
	OpRollback = "rollback"
)

// ErrRevisionPruned is wrapped by *PrunedError.
var ErrRevisionPruned = errors.New("revision no longer kept")

// PrunedError: the document at Revision cannot be rebuilt because the
// history it needs was pruned (or predates history); Oldest is the oldest
// revision that can still be fetched. Oldest is 0 and Future set for a
// revision that does not exist yet.
type PrunedError struct {
	Revision, Oldest int64
	Future           bool
}

func (e *PrunedError) Error() string {
	if e.Future {
		return fmt.Sprintf("revision %d does not exist yet (the newest etcd revision is %d)", e.Revision, e.Oldest)
	}
	return fmt.Sprintf("revision %d is no longer kept; the oldest revision available is %d", e.Revision, e.Oldest)
}

func (e *PrunedError) Unwrap() error { return ErrRevisionPruned }

// historyLimits bound the history kept in etcd.
type historyLimits struct {
	// maxRecords: at most this many writes keep their history.
	maxRecords int
	// minRecords: the newest writes whose history is never pruned for
	// bytes (the API promises the last 100 revisions).
	minRecords int
	// maxBytes: compressed bytes of all history records, beyond the
	// newest minRecords.
	maxBytes int64
	// chunkBytes: one history key's value at most.
	chunkBytes int
	// inlineBytes: a history record this small goes into the commit
	// transaction itself.
	inlineBytes int
	// orphanAge: a history record without an audit record is deleted once
	// this old (its writer crashed or lost the race without cleaning up).
	orphanAge time.Duration
}

var defaultHistoryLimits = historyLimits{
	maxRecords:  1000,
	minRecords:  100,
	maxBytes:    256 << 20,
	chunkBytes:  512 << 10,
	inlineBytes: 64 << 10,
	orphanAge:   10 * time.Minute,
}

// SetHistoryLimits changes how much history the Store keeps (call it
// before the Store is used): at most maxRecords writes, and beyond the
// newest minRecords at most maxBytes of compressed history. The defaults
// are 1000, 100 and 256 MiB. Fewer than 100 records break the API's
// promise of the last 100 revisions; tests use it to reach the limits.
func (s *Store) SetHistoryLimits(maxRecords, minRecords int, maxBytes int64) {
	s.history.maxRecords, s.history.minRecords, s.history.maxBytes = max(maxRecords, 1), max(minRecords, 0), maxBytes
}

// Inline changes in the audit record, for GET /v1/audit and op25bctl
// history without reading the history chunks.
const (
	auditInlineChanges = 20
	auditInlineBytes   = 16 << 10
)

func (s *Store) historyPrefix() string { return s.prefix + "history/" }

// auditID is the part of an audit key after audit/: "<nanos, 16 hex>.<random>".
func (s *Store) auditID(auditKey string) string { return strings.TrimPrefix(auditKey, s.auditPrefix()) }

// itemChanges lists what a write changes, sorted by item key, with the
// old and new values. old is nil when the stored document is unknown.
func itemChanges(old map[string][]byte, puts []encodedItem, dels []string) []ItemChange {
	out := make([]ItemChange, 0, len(puts)+len(dels))
	for _, it := range puts {
		ch := ItemChange{Item: it.key, New: it.value}
		if prev, ok := old[it.key]; ok {
			ch.Old = prev
		}
		out = append(out, ch)
	}
	for _, k := range dels {
		out = append(out, ItemChange{Item: k, Old: old[k]})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Item < out[j].Item })
	return out
}

// inlineChanges is the head of changes that goes into the audit record.
func inlineChanges(changes []ItemChange) []ItemChange {
	var out []ItemChange
	size := 0
	for _, ch := range changes {
		size += len(ch.Item) + len(ch.Old) + len(ch.New) + 32
		if len(out) == auditInlineChanges || size > auditInlineBytes {
			break
		}
		out = append(out, ch)
	}
	return out
}

// encodeHistory compresses changes and splits them into chunks.
func encodeHistory(changes []ItemChange, chunkBytes int) ([][]byte, error) {
	var buf bytes.Buffer
	// The fastest level: the default one saves a fifth of the bytes of a
	// 100k-pool replace for much more CPU on every write (README figures).
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	// One change per line, streamed: 100k changes without first building
	// one 16 MB array. Written by hand: the values are the stored items,
	// already JSON, which an encoder would validate and compact once more
	// (most of the cost of a 100k-pool replace's history).
	line := make([]byte, 0, 512)
	for _, ch := range changes {
		item, err := json.Marshal(ch.Item)
		if err != nil {
			return nil, fmt.Errorf("encode history: %w", err)
		}
		line = append(append(line[:0], `{"item":`...), item...)
		if len(ch.Old) > 0 {
			line = append(append(line, `,"old":`...), ch.Old...)
		}
		if len(ch.New) > 0 {
			line = append(append(line, `,"new":`...), ch.New...)
		}
		line = append(line, "}\n"...)
		if _, err := zw.Write(line); err != nil {
			return nil, fmt.Errorf("compress history: %w", err)
		}
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("compress history: %w", err)
	}
	data := buf.Bytes()
	var chunks [][]byte
	for len(data) > 0 {
		n := min(len(data), chunkBytes)
		chunks = append(chunks, data[:n])
		data = data[n:]
	}
	return chunks, nil
}

func decodeHistory(chunks [][]byte) ([]ItemChange, error) {
	zr, err := gzip.NewReader(bytes.NewReader(bytes.Join(chunks, nil)))
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(zr)
	var out []ItemChange
	for {
		var ch ItemChange
		err := dec.Decode(&ch)
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		out = append(out, ch)
	}
}

// historyChunkKey: history/<id>/<index, 4 hex>.<size, hex>. The size in
// the key lets pruning count bytes from a keys-only read.
func (s *Store) historyChunkKey(id string, i, size int) string {
	return fmt.Sprintf("%s%s/%04x.%x", s.historyPrefix(), id, i, size)
}

// historyOps are the puts of one history record's chunks.
func (s *Store) historyOps(id string, chunks [][]byte) []clientv3.Op {
	ops := make([]clientv3.Op, len(chunks))
	for i, c := range chunks {
		ops[i] = clientv3.OpPut(s.historyChunkKey(id, i, len(c)), string(c))
	}
	return ops
}

// writeHistory puts the chunks of a record that is too big to go into the
// commit transaction, one request per chunk (each well under etcd's 1.5 MiB).
func (s *Store) writeHistory(ctx context.Context, id string, chunks [][]byte) error {
	for _, op := range s.historyOps(id, chunks) {
		cctx, cancel := context.WithTimeout(ctx, s.batchTimeout)
		_, err := s.cli.Do(cctx, op)
		cancel()
		if err != nil {
			return s.etcdError("write history", err)
		}
	}
	return nil
}

// deleteHistory removes one history record, best effort: pruning removes
// what is left over.
func (s *Store) deleteHistory(id string) {
	ctx, cancel := context.WithTimeout(context.Background(), s.opTimeout)
	defer cancel()
	if _, err := s.cli.Delete(ctx, s.historyPrefix()+id+"/", clientv3.WithPrefix()); err != nil {
		s.log.Warn("cannot delete unused history record", "id", id, "err", err)
	}
}

// readHistory returns the changes of one record, or ok=false when the
// record is incomplete (pruned, or never written).
func (s *Store) readHistory(ctx context.Context, id string, chunks int) ([]ItemChange, bool, error) {
	cctx, cancel := context.WithTimeout(ctx, s.opTimeout)
	resp, err := s.cli.Get(cctx, s.historyPrefix()+id+"/", clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByKey, clientv3.SortAscend))
	cancel()
	if err != nil {
		return nil, false, s.etcdError("read history", err)
	}
	if chunks == 0 || len(resp.Kvs) != chunks {
		return nil, false, nil
	}
	parts := make([][]byte, len(resp.Kvs))
	for i, kv := range resp.Kvs {
		parts[i] = kv.Value
	}
	changes, err := decodeHistory(parts)
	if err != nil {
		s.log.Warn("undecodable history record", "id", id, "err", err)
		return nil, false, nil
	}
	return changes, true, nil
}

// LoadAt returns the document as it was at etcd revision rev, and the
// revision of the write that produced it (the newest write at or before
// rev; 0 for the empty document before the first write). It fails with a
// *PrunedError when the history it needs is no longer kept, or rev is in
// the future.
func (s *Store) LoadAt(ctx context.Context, rev int64) (*topology.Document, int64, error) {
	st, err := s.read(ctx)
	if err != nil {
		return nil, 0, err
	}
	if err := st.usable(); err != nil {
		return nil, st.rev, err
	}
	return s.documentAt(ctx, st, rev)
}

// documentAt undoes, on a copy of st's items, the changes of every write
// newer than rev and up to st.rev, newest first.
func (s *Store) documentAt(ctx context.Context, st *state, rev int64) (*topology.Document, int64, error) {
	if rev <= 0 {
		return nil, 0, fmt.Errorf("revision must be positive, got %d", rev)
	}
	if rev >= st.rev {
		// Is rev a revision etcd has reached? A cheap read says.
		cctx, cancel := context.WithTimeout(ctx, s.opTimeout)
		resp, err := s.cli.Get(cctx, s.currentKey(), clientv3.WithCountOnly())
		cancel()
		if err != nil {
			return nil, 0, s.etcdError("read revision", err)
		}
		if rev > resp.Header.Revision {
			return nil, 0, &PrunedError{Revision: rev, Oldest: resp.Header.Revision, Future: true}
		}
		return st.doc.Clone(), st.rev, nil
	}
	cctx, cancel := context.WithTimeout(ctx, s.opTimeout)
	resp, err := s.cli.Get(cctx, s.auditPrefix(), clientv3.WithPrefix(),
		clientv3.WithMinModRev(rev+1), clientv3.WithMaxModRev(st.rev),
		clientv3.WithSort(clientv3.SortByModRevision, clientv3.SortDescend),
		clientv3.WithLimit(int64(s.history.maxRecords)+1))
	cancel()
	if err != nil {
		return nil, 0, s.etcdError("read audit log", err)
	}
	items := make(map[string][]byte, len(st.items))
	for k, v := range st.items {
		items[k] = v
	}
	docRev := st.rev
	for _, kv := range resp.Kvs {
		var v auditValue
		if err := decodeStrict(kv.Value, &v); err != nil || kv.ModRevision != docRev {
			// Undecodable, or a gap: a write whose record is gone.
			return nil, 0, &PrunedError{Revision: rev, Oldest: docRev}
		}
		changes, ok, err := s.readHistory(ctx, s.auditID(string(kv.Key)), v.HistoryChunks)
		if err != nil {
			return nil, 0, err
		}
		if !ok || !undo(items, changes) {
			return nil, 0, &PrunedError{Revision: rev, Oldest: docRev}
		}
		docRev = v.Base
	}
	if docRev > rev {
		// More writes than kept history: the older ones were not reached.
		return nil, 0, &PrunedError{Revision: rev, Oldest: docRev}
	}
	keys := make([]string, 0, len(items))
	for k := range items {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	dec := newDocumentDecoder()
	for _, k := range keys {
		if err := dec.add(k, items[k]); err != nil {
			return nil, 0, fmt.Errorf("%w: history of revision %d: %v", ErrInvalidStored, docRev, err)
		}
	}
	return dec.doc, docRev, nil
}

// undo reverts one write's changes in items. It reports false, changing
// nothing it has not already changed, when items do not hold what the
// write left (an edit by hand since): history cannot go further back.
func undo(items map[string][]byte, changes []ItemChange) bool {
	for _, ch := range changes {
		cur, ok := items[ch.Item]
		if ok != (len(ch.New) > 0) || !bytes.Equal(cur, ch.New) {
			return false
		}
	}
	for _, ch := range changes {
		if len(ch.Old) == 0 {
			delete(items, ch.Item)
		} else {
			items[ch.Item] = ch.Old
		}
	}
	return true
}

// Rollback stores the document as it was at revision rev again, as one
// write conditioned on the current revision (opts.IfRevision, when set,
// must be it). The audit log records it as a rollback to the revision of
// the write whose document it restored. Errors: *PrunedError, ErrConflict,
// a validation error if the old document breaks today's rules, and
// ErrUnavailable.
func (s *Store) Rollback(ctx context.Context, rev int64, opts WriteOptions) (int64, error) {
	st, err := s.read(ctx)
	if err != nil {
		return 0, err
	}
	if opts.IfRevision != 0 && opts.IfRevision != st.rev {
		return 0, &ConflictError{Current: st.rev, Based: opts.IfRevision}
	}
	if err := st.usable(); err != nil {
		return 0, fmt.Errorf("rollback: %w (replace the whole document to repair it)", err)
	}
	doc, docRev, err := s.documentAt(ctx, st, rev)
	if err != nil {
		return 0, err
	}
	if err := topology.Validate(doc); err != nil {
		return 0, err
	}
	return s.commit(ctx, st, doc, opts, writeKind{op: OpRollback, rollbackOf: docRev})
}

// ConflictError is ErrConflict with the revisions involved: the write was
// based on Based, the document is at Current.
type ConflictError struct {
	Current, Based int64
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("the document is at revision %d, not %d: %v", e.Current, e.Based, ErrConflict)
}

func (e *ConflictError) Is(target error) bool { return target == ErrConflict }

// pruneHistory deletes the history records beyond the limits, and orphans
// (records whose write never committed). Best effort, after each write.
func (s *Store) pruneHistory(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, s.opTimeout)
	defer cancel()
	resp, err := s.cli.Get(ctx, s.historyPrefix(), clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		return
	}
	type record struct {
		id    string
		bytes int64
	}
	var records []record // in key order: oldest first (ids start with the commit time)
	for _, kv := range resp.Kvs {
		rest := strings.TrimPrefix(string(kv.Key), s.historyPrefix())
		id, chunk, ok := strings.Cut(rest, "/")
		if !ok {
			continue
		}
		_, sizeHex, _ := strings.Cut(chunk, ".")
		size, _ := strconv.ParseInt(sizeHex, 16, 64)
		if len(records) == 0 || records[len(records)-1].id != id {
			records = append(records, record{id: id})
		}
		records[len(records)-1].bytes += size + int64(len(kv.Key))
	}
	if len(records) == 0 {
		return
	}
	// Which records belong to a committed write: audit keys from the
	// oldest history record on.
	committed := map[string]bool{}
	audit, err := s.cli.Get(ctx, s.auditPrefix()+records[0].id, clientv3.WithRange(clientv3.GetPrefixRangeEnd(s.auditPrefix())),
		clientv3.WithKeysOnly())
	if err != nil {
		return
	}
	for _, kv := range audit.Kvs {
		committed[s.auditID(string(kv.Key))] = true
	}
	now := time.Now()
	var doomed []string
	kept, total := 0, int64(0)
	for i := len(records) - 1; i >= 0; i-- {
		r := records[i]
		if !committed[r.id] {
			if nanos, err := strconv.ParseInt(strings.SplitN(r.id, ".", 2)[0], 16, 64); err == nil && now.Sub(time.Unix(0, nanos)) > s.history.orphanAge {
				doomed = append(doomed, r.id)
			}
			continue
		}
		kept++
		total += r.bytes
		if kept > s.history.maxRecords || kept > s.history.minRecords && total > s.history.maxBytes {
			doomed = append(doomed, r.id)
		}
	}
	for len(doomed) > 0 {
		n := min(len(doomed), maxTxnOps)
		ops := make([]clientv3.Op, 0, n)
		for _, id := range doomed[:n] {
			ops = append(ops, clientv3.OpDelete(s.historyPrefix()+id+"/", clientv3.WithPrefix()))
		}
		if _, err := s.cli.Txn(ctx).Then(ops...).Commit(); err != nil {
			s.log.Warn("cannot prune history", "err", err)
			return
		}
		doomed = doomed[n:]
	}
}

// HistoryUsage is what the kept history costs in etcd.
type HistoryUsage struct {
	Records int   // writes whose history is kept
	Bytes   int64 // their compressed chunks, keys included
}

// HistoryUsage measures the history kept (a keys-only read).
func (s *Store) HistoryUsage(ctx context.Context) (HistoryUsage, error) {
	cctx, cancel := context.WithTimeout(ctx, s.opTimeout)
	defer cancel()
	resp, err := s.cli.Get(cctx, s.historyPrefix(), clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		return HistoryUsage{}, s.etcdError("read history", err)
	}
	var u HistoryUsage
	last := ""
	for _, kv := range resp.Kvs {
		rest := strings.TrimPrefix(string(kv.Key), s.historyPrefix())
		id, chunk, _ := strings.Cut(rest, "/")
		if id != last {
			u.Records++
			last = id
		}
		_, sizeHex, _ := strings.Cut(chunk, ".")
		size, _ := strconv.ParseInt(sizeHex, 16, 64)
		u.Bytes += size + int64(len(kv.Key))
	}
	return u, nil
}
