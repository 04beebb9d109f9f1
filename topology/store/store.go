package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/op25b/op25b/topology"
)

// Errors callers branch on.
var (
	// ErrConflict: the document changed since the revision the write was
	// based on (If-Match mismatch or a lost race). The API answers 409.
	ErrConflict = errors.New("revision conflict")
	// ErrNotFound is for callers (the API's per-item endpoints) to return
	// from an Update mutation; the store passes it through unchanged.
	ErrNotFound = errors.New("not found")
	// ErrUnavailable wraps every failure to reach etcd (no endpoint, no
	// quorum, timeout). Nothing was written. The API answers 503.
	ErrUnavailable = errors.New("etcd unavailable")
	// ErrInvalidStored: what is in etcd does not decode or validate (a
	// value written by hand, say). Replace still works and repairs it.
	ErrInvalidStored = errors.New("stored document is invalid")
)

// DefaultPrefix is the etcd key prefix of one op25b cluster.
const DefaultPrefix = "/op25b/"

// DocumentKey is the commit record under the prefix. Its ModRevision is
// the document revision (see doc.go): a replica compares it with the
// revision of its own snapshot before it takes over a bridge.
const DocumentKey = "config/current"

// etcd's defaults (--max-txn-ops 128, --max-request-bytes 1.5 MiB) bound
// every request the store sends; it stays well inside them so that it
// works on any cluster left at default settings.
const (
	maxTxnOps = 128
	// maxTxnBytes leaves headroom under 1.5 MiB for protobuf framing.
	maxTxnBytes = 1 << 20
	// maxItemBytes: a single item bigger than this cannot be stored.
	maxItemBytes = topology.MaxStoredItemBytes
	// readPageSize keeps each range response a few MiB at most.
	readPageSize = 5000
	// writeParallelism: concurrent batch transactions while writing a new
	// generation; etcd batches concurrent proposals into one fsync (8
	// rather than 4: a 100k-pool replace a quarter faster on an embedded
	// etcd, BenchmarkReplace100k).
	writeParallelism = 8
	// summaryLimit caps each list of an audit summary so that the audit
	// record of a 100k-pool replace still fits in one request.
	summaryLimit = 100
)

// Store reads and writes the policy document, the audit log and the
// status records under one prefix. It is safe for concurrent use. Besides
// its configuration it remembers the last document it read in full or
// wrote (last), so that a read finding etcd unchanged costs one small
// transaction instead of a full read; etcd stays the only source of truth.
type Store struct {
	cli    *clientv3.Client
	prefix string
	log    *slog.Logger
	// opTimeout bounds each etcd request (when the caller's context allows
	// longer) so that an unreachable etcd turns into ErrUnavailable rather
	// than a hang; batchTimeout is the same for the big transactions of a
	// new generation, which a loaded etcd may take seconds to apply.
	opTimeout    time.Duration
	batchTimeout time.Duration
	history      historyLimits

	// last is the most recent state this Store read in full or wrote,
	// known valid. A read whose commit record and generation are unchanged
	// since then reuses it instead of reading ~10 MiB again (see read).
	// It is never mutated, only replaced.
	mu   sync.Mutex
	last *state
	// written are told of every commit (onWritten).
	written []func(*state)
	// flipping is closed once the commit record write in flight (a new
	// generation's flip) has been answered and its state remembered and
	// told; nil when none is (awaitFlip).
	flipping chan struct{}
	flipWait time.Duration
}

// New returns a Store using cli under prefix (DefaultPrefix if empty; a
// trailing "/" is added when missing).
func New(cli *clientv3.Client, prefix string, logger *slog.Logger) *Store {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	if !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Store{cli: cli, prefix: prefix, log: logger, opTimeout: 10 * time.Second, batchTimeout: 30 * time.Second,
		history: defaultHistoryLimits, flipWait: 2 * time.Second}
}

// Client returns the etcd client the store uses.
func (s *Store) Client() *clientv3.Client { return s.cli }

// KeyPrefix returns the full etcd key prefix for sub, e.g.
// KeyPrefix("masters/") → "/op25b/masters/". Other packages keep their keys
// under the same prefix so that one cluster is one subtree.
func (s *Store) KeyPrefix(sub string) string { return s.prefix + sub }

func (s *Store) currentKey() string            { return s.prefix + DocumentKey }
func (s *Store) configPrefix() string          { return s.prefix + "config/" }
func (s *Store) generationsRoot() string       { return s.prefix + "config/g/" }
func (s *Store) generationKey(g string) string { return s.generationsRoot() + g + "/" }
func (s *Store) auditPrefix() string           { return s.prefix + "audit/" }

// commitRecord is the value of config/current.
type commitRecord struct {
	Generation string    `json:"generation"`
	Time       time.Time `json:"time"`
	Who        string    `json:"who,omitempty"`
}

// WriteOptions qualify a write.
type WriteOptions struct {
	// IfRevision, when not 0, makes the write fail with ErrConflict unless
	// the document revision is still exactly this (HTTP If-Match).
	IfRevision int64
	// Who is recorded in the audit log (the API token's name).
	Who string
}

// state is one consistent read of the stored document.
type state struct {
	rev     int64  // ModRevision of config/current (0: never written)
	readRev int64  // etcd revision the read was made at
	gen     string // current generation ("" if none)
	doc     *topology.Document
	// items is the stored form, key relative to the generation → value,
	// used to write only what changed.
	items map[string][]byte
	// decodeErr is set when the stored document does not decode; doc and
	// items are then unusable.
	decodeErr error
	// valid: doc is known to pass topology.Validate.
	valid bool
}

// read loads the whole document at one etcd revision. Only etcd failures
// are returned as errors; a document that does not decode is reported in
// state.decodeErr.
//
// The result may be shared with other callers: never modify it.
func (s *Store) read(ctx context.Context) (*state, error) {
	if st, err := s.readRemembered(ctx); err != nil || st != nil {
		return st, err
	}
	st, err := s.readFull(ctx)
	if err == nil && st.usable() == nil {
		st.valid = true
		s.remember(st)
	}
	return st, err
}

// readRemembered returns the remembered state if, at the current etcd
// revision, the commit record is the one it was read or written at and its
// generation holds the same number of keys, none modified since (which
// would be an edit by hand). One read-only transaction, answered by etcd
// from its in-memory index. It returns nil, nil when a full read is needed.
func (s *Store) readRemembered(ctx context.Context) (*state, error) {
	s.mu.Lock()
	last := s.last
	s.mu.Unlock()
	if last == nil || last.gen == "" {
		return nil, nil
	}
	genPrefix := s.generationKey(last.gen)
	end := clientv3.GetPrefixRangeEnd(genPrefix)
	cctx, cancel := context.WithTimeout(ctx, s.opTimeout)
	defer cancel()
	resp, err := s.cli.Txn(cctx).Then(
		clientv3.OpGet(s.currentKey()),
		clientv3.OpGet(genPrefix, clientv3.WithRange(end), clientv3.WithCountOnly()),
		clientv3.OpGet(genPrefix, clientv3.WithRange(end), clientv3.WithKeysOnly(), clientv3.WithMinModRev(last.readRev+1)),
	).Commit()
	if err != nil {
		return nil, s.etcdError("read document", err)
	}
	cur := resp.Responses[0].GetResponseRange()
	count := resp.Responses[1].GetResponseRange()
	modified := resp.Responses[2].GetResponseRange()
	if len(cur.Kvs) != 1 || cur.Kvs[0].ModRevision != last.rev ||
		count.Count != int64(len(last.items)) || len(modified.Kvs) != 0 {
		return nil, nil
	}
	st := *last
	st.readRev = resp.Header.Revision
	return &st, nil
}

// remember makes st the state later reads may reuse.
func (s *Store) remember(st *state) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.last == nil || st.readRev >= s.last.readRev {
		s.last = st
	}
}

// writtenState prepares the state a successful write of doc (items) will
// produce: a private copy of doc, lists sorted by name as Load returns
// them. Built before the commit, so that what follows etcd's answer
// (rememberWritten, and the cache's adoption) costs next to nothing.
func writtenState(doc *topology.Document, items []encodedItem) *state {
	doc = doc.Clone()
	sortDocument(doc)
	makeNonNil(doc) // a read returns empty lists, never null ones (newEmptyDocument)
	m := make(map[string][]byte, len(items))
	for _, it := range items {
		m[it.key] = it.value
	}
	return &state{doc: doc, items: m, valid: true}
}

// rememberWritten records st (from writtenState, not yet shared) as what
// generation gen holds at revision rev, and tells the onWritten callbacks.
func (s *Store) rememberWritten(st *state, gen string, rev int64) {
	st.rev, st.readRev, st.gen = rev, rev, gen
	s.remember(st)
	s.mu.Lock()
	written := s.written
	s.mu.Unlock()
	for _, f := range written {
		f(st)
	}
}

// startFlip marks a commit record write of this Store in flight; the
// returned func (idempotent) ends it.
func (s *Store) startFlip() func() {
	ch := make(chan struct{})
	s.mu.Lock()
	s.flipping = ch
	s.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			if s.flipping == ch {
				s.flipping = nil
			}
			s.mu.Unlock()
			close(ch)
		})
	}
}

// awaitFlip waits for the commit record write of this Store in flight, if
// any, to be answered and its document told to onWritten, for at most
// flipWait. A replica's watch can report the new commit record before the
// write's own answer arrives; waiting that one round trip saves reading
// back the whole document (100k items) the cache is about to adopt. An
// answer slower than flipWait means etcd is struggling: reading is then no
// worse than waiting longer.
func (s *Store) awaitFlip(ctx context.Context) {
	s.mu.Lock()
	ch := s.flipping
	s.mu.Unlock()
	if ch == nil {
		return
	}
	t := time.NewTimer(s.flipWait)
	defer t.Stop()
	select {
	case <-ch:
	case <-t.C:
	case <-ctx.Done():
	}
}

// onWritten registers f to be told, synchronously, of every document this
// Store commits, before the write returns (NewCache: a replica's cache need
// not wait for its own watch to rebuild what it just wrote). st is shared:
// never modify it.
func (s *Store) onWritten(f func(st *state)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.written = append(s.written, f)
}

func (s *Store) readFull(ctx context.Context) (*state, error) {
	var lastErr error
	// A compaction between reading config/current and ranging its
	// generation makes the second read fail; a fresh attempt succeeds.
	for attempt := 0; attempt < 3; attempt++ {
		st, err := s.readOnce(ctx)
		if err == nil {
			return st, nil
		}
		if !errors.Is(err, rpctypes.ErrCompacted) {
			return nil, s.etcdError("read document", err)
		}
		lastErr = err
	}
	return nil, s.etcdError("read document", lastErr)
}

func (s *Store) readOnce(ctx context.Context) (*state, error) {
	cctx, cancel := context.WithTimeout(ctx, s.opTimeout)
	resp, err := s.cli.Get(cctx, s.currentKey())
	cancel()
	if err != nil {
		return nil, err
	}
	st := &state{readRev: resp.Header.Revision}
	if len(resp.Kvs) == 0 {
		st.doc = newEmptyDocument()
		st.items = map[string][]byte{}
		return st, nil
	}
	kv := resp.Kvs[0]
	st.rev = kv.ModRevision
	var rec commitRecord
	if err := decodeStrict(kv.Value, &rec); err != nil || rec.Generation == "" || strings.Contains(rec.Generation, "/") {
		st.decodeErr = fmt.Errorf("%s: bad commit record %q", s.currentKey(), kv.Value)
		return st, nil
	}
	st.gen = rec.Generation
	dec := newDocumentDecoder()
	st.items = map[string][]byte{}
	genPrefix := s.generationKey(st.gen)
	end := clientv3.GetPrefixRangeEnd(genPrefix)
	from := genPrefix
	for {
		cctx, cancel := context.WithTimeout(ctx, s.opTimeout)
		page, err := s.cli.Get(cctx, from, clientv3.WithRange(end), clientv3.WithRev(st.readRev),
			clientv3.WithLimit(readPageSize))
		cancel()
		if err != nil {
			return nil, err
		}
		for _, kv := range page.Kvs {
			rel := strings.TrimPrefix(string(kv.Key), genPrefix)
			if st.decodeErr == nil {
				if err := dec.add(rel, kv.Value); err != nil {
					st.decodeErr = fmt.Errorf("generation %s: %w", st.gen, err)
				}
			}
			st.items[rel] = kv.Value
		}
		if !page.More || len(page.Kvs) == 0 {
			break
		}
		from = string(page.Kvs[len(page.Kvs)-1].Key) + "\x00"
	}
	st.doc = dec.doc
	return st, nil
}

// Load returns the whole document as of one etcd revision, with the
// document revision (the ModRevision of the last committed write; 0 and an
// empty document if nothing was ever stored). A stored document that does
// not decode or validate is an error wrapping ErrInvalidStored.
func (s *Store) Load(ctx context.Context) (*topology.Document, int64, error) {
	st, err := s.read(ctx)
	if err != nil {
		return nil, 0, err
	}
	if err := st.usable(); err != nil {
		return nil, st.rev, err
	}
	return st.doc.Clone(), st.rev, nil
}

// usable reports whether the stored document can be served and enforced.
func (st *state) usable() error {
	if st.decodeErr != nil {
		return fmt.Errorf("%w at revision %d: %v", ErrInvalidStored, st.rev, st.decodeErr)
	}
	if st.rev == 0 || st.valid {
		return nil // nothing stored yet (the empty document is the desired state), or known valid
	}
	if err := topology.Validate(st.doc); err != nil {
		return fmt.Errorf("%w at revision %d: %v", ErrInvalidStored, st.rev, err)
	}
	return nil
}

// Replace validates doc and atomically replaces the whole stored document
// with it: readers see the old document or the new one, never a mix. It
// returns the new document revision (the current one if nothing changed).
// Errors: the validation error unchanged (nothing stored), ErrConflict,
// ErrUnavailable (wrapped).
func (s *Store) Replace(ctx context.Context, doc *topology.Document, opts WriteOptions) (int64, error) {
	if err := topology.Validate(doc); err != nil {
		return 0, err
	}
	st, err := s.read(ctx)
	if err != nil {
		return 0, err
	}
	if opts.IfRevision != 0 && opts.IfRevision != st.rev {
		return 0, fmt.Errorf("replace: %w", &ConflictError{Current: st.rev, Based: opts.IfRevision})
	}
	return s.commit(ctx, st, doc, opts, writeKind{op: OpReplace})
}

// Update loads the document, lets mutate change a copy, validates the
// result and writes only what changed, conditioned on the revision it
// loaded (and on opts.IfRevision when set): a concurrent write makes it
// fail with ErrConflict rather than merge. Errors returned by mutate are
// returned unchanged and nothing is written.
func (s *Store) Update(ctx context.Context, opts WriteOptions, mutate func(*topology.Document) error) (int64, error) {
	st, err := s.read(ctx)
	if err != nil {
		return 0, err
	}
	if opts.IfRevision != 0 && opts.IfRevision != st.rev {
		return 0, fmt.Errorf("update: %w", &ConflictError{Current: st.rev, Based: opts.IfRevision})
	}
	if err := st.usable(); err != nil {
		return 0, fmt.Errorf("update: %w (replace the whole document to repair it)", err)
	}
	doc := st.doc.Clone()
	if err := mutate(doc); err != nil {
		return 0, err
	}
	if err := topology.Validate(doc); err != nil {
		return 0, err
	}
	return s.commit(ctx, st, doc, opts, writeKind{op: OpUpdate})
}

// writeKind is what the audit log says a write was.
type writeKind struct {
	op         string // OpReplace, OpUpdate, OpRollback
	rollbackOf int64
}

// pendingWrite is the audit and history side of one commit.
type pendingWrite struct {
	auditKey string
	audit    []byte
	// historyOps go into the commit transaction (a small record); a big
	// one was written before the commit under historyID (prewritten).
	historyOps []clientv3.Op
	historyID  string
	prewritten bool
	who        string
	now        time.Time
}

// abandon removes a history record written for a commit that did not
// happen.
func (s *Store) abandon(w *pendingWrite) {
	if w.prewritten {
		s.deleteHistory(w.historyID)
	}
}

// commit writes doc over the state st was read as, conditioned on st.rev.
func (s *Store) commit(ctx context.Context, st *state, doc *topology.Document, opts WriteOptions, kind writeKind) (int64, error) {
	items, err := encodeDocument(doc)
	if err != nil {
		return 0, err
	}
	if err := s.checkItemSizes(doc, items); err != nil {
		return 0, err
	}
	var old map[string][]byte
	if st.decodeErr == nil {
		old = st.items
	}
	puts, dels, summary := diffItems(old, items)
	if len(puts) == 0 && len(dels) == 0 && st.rev != 0 {
		return st.rev, nil // nothing changed: no write, no audit record
	}
	size := 0
	for _, it := range puts {
		size += len(it.key) + len(it.value) + 64
	}
	inPlace := st.gen != "" && old != nil && len(puts)+len(dels)+2 <= maxTxnOps && size < maxTxnBytes-8192
	// A write too big for one transaction (a whole replace, typically)
	// fills a new generation: its batches go to etcd while the history
	// record is encoded and written, not after. The goroutine is owned by
	// this call, which waits for it on every path (fill).
	var fill *generationFill
	if !inPlace {
		fill = s.startFill(ctx, st, items)
		defer fill.wait()
	}
	fail := func(err error) (int64, error) {
		if fill != nil {
			s.abortFill(fill)
		}
		return 0, err
	}

	now := time.Now().UTC()
	w := &pendingWrite{who: opts.Who, now: now, historyID: fmt.Sprintf("%016x.%s", now.UnixNano(), randomHex(4))}
	w.auditKey = s.auditPrefix() + w.historyID
	av := auditValue{Time: now, Who: opts.Who, Summary: summary, Op: kind.op, RollbackOf: kind.rollbackOf, Base: st.rev}
	var historyBytes int
	if old != nil {
		// The stored document is known, so is every item's old value.
		changes := itemChanges(old, puts, dels)
		chunks, err := encodeHistory(changes, s.history.chunkBytes)
		if err != nil {
			return fail(err)
		}
		av.Changes, av.ChangesTotal, av.HistoryChunks = inlineChanges(changes), len(changes), len(chunks)
		if len(chunks) == 1 && len(chunks[0]) <= s.history.inlineBytes {
			w.historyOps = s.historyOps(w.historyID, chunks)
			historyBytes = len(chunks[0])
		} else {
			if err := s.writeHistory(ctx, w.historyID, chunks); err != nil {
				s.deleteHistory(w.historyID)
				return fail(err)
			}
			w.prewritten = true
		}
	}
	audit, err := json.Marshal(av)
	if err != nil {
		s.abandon(w)
		return fail(fmt.Errorf("encode audit record: %w", err))
	}
	w.audit = audit

	next := writtenState(doc, items)
	if inPlace && len(puts)+len(dels)+2+len(w.historyOps) <= maxTxnOps && size+len(audit)+historyBytes < maxTxnBytes-8192 {
		return s.commitInPlace(ctx, st, next, puts, dels, w)
	}
	if fill == nil {
		// Small enough for one transaction, but not with its history.
		fill = s.startFill(ctx, st, items)
		defer fill.wait()
	}
	return s.commitNewGeneration(ctx, st, next, w, fill)
}

// generationFill is a new generation being written (writeBatches) in a
// goroutine of its own, alongside the rest of a commit.
type generationFill struct {
	gen    string
	cancel context.CancelFunc
	done   chan struct{}
	err    error
}

// startFill starts writing items under a fresh generation.
func (s *Store) startFill(ctx context.Context, st *state, items []encodedItem) *generationFill {
	ctx, cancel := context.WithCancel(ctx)
	f := &generationFill{gen: fmt.Sprintf("%016x.%s", st.readRev, randomHex(4)), cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(f.done)
		f.err = s.writeBatches(ctx, s.generationKey(f.gen), items)
	}()
	return f
}

// wait returns the fill's outcome once its goroutine has finished.
func (f *generationFill) wait() error {
	<-f.done
	f.cancel()
	return f.err
}

// abortFill stops f, waits for it and removes what it wrote (the commit
// will not happen).
func (s *Store) abortFill(f *generationFill) {
	f.cancel()
	<-f.done
	s.deleteGeneration(f.gen)
}

// commitInPlace is one conditional transaction: the changed items of the
// current generation, the commit record and the audit record.
func (s *Store) commitInPlace(ctx context.Context, st, next *state, puts []encodedItem, dels []string,
	w *pendingWrite) (int64, error) {
	who := w.who
	rec, _ := json.Marshal(commitRecord{Generation: st.gen, Time: w.now, Who: who})
	genPrefix := s.generationKey(st.gen)
	ops := make([]clientv3.Op, 0, len(puts)+len(dels)+2)
	for _, it := range puts {
		ops = append(ops, clientv3.OpPut(genPrefix+it.key, string(it.value)))
	}
	for _, k := range dels {
		ops = append(ops, clientv3.OpDelete(genPrefix+k))
	}
	ops = append(ops, clientv3.OpPut(s.currentKey(), string(rec)), clientv3.OpPut(w.auditKey, string(w.audit)))
	ops = append(ops, w.historyOps...)
	cctx, cancel := context.WithTimeout(ctx, s.opTimeout)
	defer cancel()
	resp, err := s.cli.Txn(cctx).
		If(clientv3.Compare(clientv3.ModRevision(s.currentKey()), "=", st.rev)).
		Then(ops...).Commit()
	if err != nil {
		return 0, s.etcdError("commit", err)
	}
	if !resp.Succeeded {
		s.abandon(w)
		return 0, fmt.Errorf("commit: document changed since revision %d: %w", st.rev, ErrConflict)
	}
	s.log.Info("document committed", "revision", resp.Header.Revision, "generation", st.gen,
		"who", who, "puts", len(puts), "deletes", len(dels))
	s.rememberWritten(next, st.gen, resp.Header.Revision)
	s.trimAudit(ctx)
	s.pruneHistory(ctx)
	return resp.Header.Revision, nil
}

// commitNewGeneration waits for fill to have written every item under a
// fresh generation in batches that respect etcd's limits, then flips
// config/current to it in one conditional transaction, then deletes the
// generations it replaced.
func (s *Store) commitNewGeneration(ctx context.Context, st, next *state, w *pendingWrite, fill *generationFill) (int64, error) {
	who := w.who
	gen := fill.gen
	if err := fill.wait(); err != nil {
		s.deleteGeneration(gen)
		s.abandon(w)
		return 0, err
	}
	rec, _ := json.Marshal(commitRecord{Generation: gen, Time: w.now, Who: who})
	ops := append([]clientv3.Op{clientv3.OpPut(s.currentKey(), string(rec)), clientv3.OpPut(w.auditKey, string(w.audit))}, w.historyOps...)
	flipped := s.startFlip()
	defer flipped()
	cctx, cancel := context.WithTimeout(ctx, s.opTimeout)
	resp, err := s.cli.Txn(cctx).
		If(clientv3.Compare(clientv3.ModRevision(s.currentKey()), "=", st.rev)).
		Then(ops...).
		Commit()
	cancel()
	if err != nil {
		// The flip may or may not have happened (a timeout after the
		// request reached etcd): leave the generation in place; if it was
		// not flipped, the next successful replace deletes it.
		return 0, s.etcdError("commit", err)
	}
	if !resp.Succeeded {
		s.deleteGeneration(gen)
		s.abandon(w)
		return 0, fmt.Errorf("commit: document changed since revision %d: %w", st.rev, ErrConflict)
	}
	flip := resp.Header.Revision
	s.log.Info("document committed", "revision", flip, "generation", gen, "who", who, "items", len(next.items))
	// Before the clean-up's round trip: the replica's cache adopts the
	// document from here (onWritten), ahead of its own watch.
	s.rememberWritten(next, gen, flip)
	flipped()
	s.deleteOlderGenerations(gen, flip)
	s.trimAudit(ctx)
	s.pruneHistory(ctx)
	return flip, nil
}

// writeBatches puts items under genPrefix, several transactions at once.
func (s *Store) writeBatches(ctx context.Context, genPrefix string, items []encodedItem) error {
	var batches [][]clientv3.Op
	var cur []clientv3.Op
	size := 0
	for _, it := range items {
		n := len(genPrefix) + len(it.key) + len(it.value) + 64
		if len(cur) == maxTxnOps || (len(cur) > 0 && size+n > maxTxnBytes) {
			batches = append(batches, cur)
			cur, size = nil, 0
		}
		cur = append(cur, clientv3.OpPut(genPrefix+it.key, string(it.value)))
		size += n
	}
	if len(cur) > 0 {
		batches = append(batches, cur)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	work := make(chan []clientv3.Op)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	for w := 0; w < writeParallelism; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ops := range work {
				err := s.writeBatch(ctx, ops)
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = s.etcdError("write generation", err)
					}
					mu.Unlock()
					cancel()
				}
			}
		}()
	}
feed:
	for _, b := range batches {
		select {
		case work <- b:
		case <-ctx.Done():
			break feed
		}
	}
	close(work)
	wg.Wait()
	if firstErr == nil && ctx.Err() != nil {
		firstErr = s.etcdError("write generation", ctx.Err())
	}
	return firstErr
}

// writeBatch puts one batch of a new generation. Puts into a generation
// nobody reads yet are idempotent, so a batch that etcd itself gave up on
// (its internal request timeout, a leader change: an overloaded or
// electing cluster, not an unreachable one) is simply sent again.
func (s *Store) writeBatch(ctx context.Context, ops []clientv3.Op) error {
	var err error
	for attempt := 0; attempt < 4; attempt++ {
		cctx, cancel := context.WithTimeout(ctx, s.batchTimeout)
		_, err = s.cli.Txn(cctx).Then(ops...).Commit()
		cancel()
		if err == nil || !retryableEtcdError(err) || ctx.Err() != nil {
			return err
		}
		s.log.Debug("retrying generation batch", "attempt", attempt+1, "err", err)
	}
	return err
}

func retryableEtcdError(err error) bool {
	for _, target := range []error{
		rpctypes.ErrTimeout, rpctypes.ErrTimeoutDueToLeaderFail, rpctypes.ErrTimeoutDueToConnectionLost,
		rpctypes.ErrLeaderChanged, rpctypes.ErrTooManyRequests, rpctypes.ErrNoLeader,
	} {
		if errors.Is(err, target) {
			return true
		}
	}
	return false
}

// deleteGeneration removes an unflipped generation, best effort: if etcd
// is gone, the next successful replace removes it (see doc.go).
func (s *Store) deleteGeneration(gen string) {
	ctx, cancel := context.WithTimeout(context.Background(), s.opTimeout)
	defer cancel()
	if _, err := s.cli.Delete(ctx, s.generationKey(gen), clientv3.WithPrefix()); err != nil {
		s.log.Warn("cannot delete unused generation", "generation", gen, "err", err)
	}
}

// deleteOlderGenerations deletes every generation read before revision
// flip except gen itself (see "Why generations" in doc.go).
func (s *Store) deleteOlderGenerations(gen string, flip int64) {
	ctx, cancel := context.WithTimeout(context.Background(), s.opTimeout)
	defer cancel()
	root := s.generationsRoot()
	own := s.generationKey(gen)
	limit := root + fmt.Sprintf("%016x", flip)
	_, err := s.cli.Txn(ctx).Then(
		clientv3.OpDelete(root, clientv3.WithRange(own)),
		clientv3.OpDelete(clientv3.GetPrefixRangeEnd(own), clientv3.WithRange(limit)),
	).Commit()
	if err != nil {
		s.log.Warn("cannot delete replaced generations", "generation", gen, "revision", flip, "err", err)
	}
}

// etcdError wraps an etcd client error: request-shape errors are bugs and
// an unknown lease means the caller's lease expired (a master that lost
// its mastership must learn that, not retry as if etcd were down); they
// stay as they are. Everything else means etcd could not be reached or
// did not answer in time.
func (s *Store) etcdError(op string, err error) error {
	switch {
	case errors.Is(err, rpctypes.ErrTooManyOps), errors.Is(err, rpctypes.ErrRequestTooLarge),
		errors.Is(err, rpctypes.ErrGRPCTooManyOps), errors.Is(err, rpctypes.ErrGRPCRequestTooLarge),
		errors.Is(err, rpctypes.ErrLeaseNotFound), errors.Is(err, rpctypes.ErrGRPCLeaseNotFound):
		return fmt.Errorf("%s: %w", op, err)
	case isNoSpace(err):
		return fmt.Errorf("%s: %w (%w: %v)", op, ErrNoSpace, ErrUnavailable, err)
	}
	return fmt.Errorf("%s: %w: %w", op, ErrUnavailable, err)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go ≥ 1.24)
	return hex.EncodeToString(b)
}

// checkItemSizes rejects, as a validation error naming the item, a single
// item too big for one etcd request (e.g. a destination set with tens of
// thousands of prefixes): it could never be stored on a default cluster.
func (s *Store) checkItemSizes(doc *topology.Document, items []encodedItem) error {
	overhead := len(s.generationKey("0123456789abcdef.01234567"))
	var verr topology.ValidationError
	for _, it := range items {
		if n := overhead + len(it.key) + len(it.value); n > maxItemBytes {
			verr.Errors = append(verr.Errors, topology.FieldError{
				Field:   itemField(doc, it.key),
				Message: fmt.Sprintf("item is %d bytes encoded, more than the %d etcd accepts in one request; split it", n, maxItemBytes),
			})
		}
	}
	if len(verr.Errors) > 0 {
		return &verr
	}
	return nil
}

// itemField turns a stored key ("destinations/mobile") back into the JSON
// path of the item in doc ("destinations[3]").
func itemField(doc *topology.Document, key string) string {
	k, itemKey, err := splitItemKey(key)
	if err != nil {
		return key
	}
	if i := k.Index(doc, itemKey); i >= 0 {
		return k.Path(i)
	}
	return k.Name
}
