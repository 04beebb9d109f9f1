package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/op25b/op25b/topology"
)

// Snapshot is a replica's view of the document.
type Snapshot struct {
	// Doc is the last good (decoded and validated) document; never nil
	// once Loaded. Treat it as read-only: it is shared.
	Doc *topology.Document
	// Revision is Doc's document revision.
	Revision int64
	// Err is set while what etcd holds cannot be used (it does not decode
	// or validate); Doc and Revision are then still the last good ones.
	Err error
	// Loaded is false until a good document was read once.
	Loaded bool
}

// Cache keeps a replica's in-memory copy of the document, fed by an etcd
// watch. Only Run talks to etcd; Current, Changed and Healthy are cheap
// and safe from any goroutine.
type Cache struct {
	store *Store
	log   *slog.Logger
	// probeInterval: how often Run checks that etcd still answers.
	probeInterval time.Duration
	// beforeWatch, when set (tests only), runs just before follow opens its
	// watch, so a test can take etcd away at exactly that moment.
	beforeWatch func()

	mu      sync.Mutex
	snap    Snapshot
	changed chan struct{}
	// etcdErr is the last failure to reach etcd, nil once it answers.
	etcdErr error
	// gen is the generation Doc was read from ("" before the first read
	// or when nothing is stored).
	gen string
	// seen is the etcd revision of the last read, watch event or adopted
	// write; watch events at or below it are already reflected.
	seen int64
	// adopted: snap is a write of this replica's Store (adopt), not yet
	// confirmed by a read or the watch.
	adopted bool
}

// NewCache returns a cache over s; call Run to fill and follow it.
func NewCache(s *Store, logger *slog.Logger) *Cache {
	if logger == nil {
		logger = s.log
	}
	c := &Cache{
		store:         s,
		log:           logger,
		probeInterval: 5 * time.Second,
		changed:       make(chan struct{}),
		etcdErr:       errors.New("document not read yet"),
	}
	s.onWritten(c.adopt)
	return c
}

// adopt takes a document this replica's own Store just committed, without
// waiting for the watch to deliver and rebuild it: for a 100k-pool replace
// that is most of a second between the API's answer and the switches.
//
// It keeps the order of revisions. A write the cache has already seen
// (its watch or a read reached the write's revision, or a later one of
// another replica, or a bad value written after it) is not adopted: the
// cache never moves backwards. An adopted write makes the watch skip the
// events up to its revision (the write was conditioned on the revision it
// read, so at its own revision etcd holds exactly this document), and only
// those: every later write, of any replica, still arrives through the
// watch, and a read made before the adoption does not undo it (reload).
func (c *Cache) adopt(st *state) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if st.rev <= c.seen {
		return
	}
	c.snap = Snapshot{Doc: st.doc, Revision: st.rev, Loaded: true}
	c.gen = st.gen
	c.seen = st.rev
	c.adopted = true
	c.log.Info("document adopted", "revision", st.rev, "generation", st.gen, "pools", len(st.doc.Pools))
	c.notifyLocked()
}

// Current returns the latest snapshot.
func (c *Cache) Current() Snapshot {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.snap
}

// Changed returns a channel that is closed at the next change of the
// snapshot (document, revision or Err). Take it BEFORE reading Current so
// that no change can slip between the two:
//
//	ch := cache.Changed(); snap := cache.Current(); … <-ch
func (c *Cache) Changed() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.changed
}

// Healthy returns nil when etcd answered the last read or probe and a good
// document has been loaded; otherwise why not (for /readyz).
func (c *Cache) Healthy() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.etcdErr != nil {
		return c.etcdErr
	}
	if !c.snap.Loaded {
		if c.snap.Err != nil {
			return fmt.Errorf("no valid document loaded: %w", c.snap.Err)
		}
		return errors.New("document not loaded yet")
	}
	return nil
}

func (c *Cache) setEtcdErr(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.etcdErr = err
}

// notifyLocked wakes every waiter on Changed. c.mu must be held.
func (c *Cache) notifyLocked() {
	close(c.changed)
	c.changed = make(chan struct{})
}

// Run fills the cache and follows etcd until ctx is done. Watch loss and
// compaction lead to a fresh read and a new watch; etcd outages are
// retried with backoff while the last good snapshot stays current.
//
// The etcd probe runs in its own goroutine, owned and awaited by Run:
// clientv3's Watch blocks until its stream is set up, so an etcd that dies
// while a watch is being (re)created would otherwise stall the probe too and
// leave the cache reporting healthy for as long as etcd stays away.
func (c *Cache) Run(ctx context.Context) error {
	probeDone := make(chan struct{})
	go func() {
		defer close(probeDone)
		c.probeLoop(ctx)
	}()
	defer func() { <-probeDone }()
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		if err := c.reload(ctx); err != nil {
			if ctx.Err() != nil {
				break
			}
			c.log.Warn("cannot read document from etcd", "err", err, "retry_in", backoff)
			select {
			case <-ctx.Done():
			case <-time.After(backoff):
			}
			backoff = min(backoff*2, 5*time.Second)
			continue
		}
		backoff = 100 * time.Millisecond
		if err := c.follow(ctx); err != nil && ctx.Err() == nil {
			c.log.Warn("document watch interrupted, re-reading", "err", err)
		}
	}
	return nil
}

// probeLoop checks every probeInterval that etcd still answers: a watch
// stays silent, not failed, while all endpoints are down.
func (c *Cache) probeLoop(ctx context.Context) {
	tick := time.NewTicker(c.probeInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if err := c.probe(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			c.setEtcdErr(err)
			c.log.Warn("etcd probe failed", "err", err)
			continue
		}
		c.setEtcdErr(nil)
	}
}

// reload reads the whole document and publishes it if it is usable.
func (c *Cache) reload(ctx context.Context) error {
	st, err := c.store.read(ctx)
	if err != nil {
		c.setEtcdErr(err)
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.etcdErr = nil
	c.seen = max(c.seen, st.readRev)
	if c.adopted && st.readRev < c.snap.Revision {
		// A write of this replica was adopted while the read was under
		// way: the snapshot is newer than etcd was when it was read. (A
		// read made after it is not stale, whatever its document revision:
		// a commit record deleted by hand reads as revision 0.)
		return nil
	}
	c.adopted = false
	if err := st.usable(); err != nil {
		if c.snap.Err == nil || c.snap.Err.Error() != err.Error() {
			c.log.Error("stored document rejected, keeping the last good one",
				"revision", st.rev, "kept_revision", c.snap.Revision, "err", err)
			c.snap.Err = err
			c.notifyLocked()
		}
		c.gen = st.gen // follow edits of the bad generation too: a fix must be noticed
		return nil
	}
	if st.rev == 0 && c.snap.Loaded && c.snap.Revision != 0 {
		// The commit record vanished (deleted by hand?). An empty document
		// would make every master remove its flows: keep the last good one.
		err := fmt.Errorf("%w: commit record %s is missing", ErrInvalidStored, c.store.currentKey())
		if c.snap.Err == nil || c.snap.Err.Error() != err.Error() {
			c.log.Error("stored document rejected, keeping the last good one", "kept_revision", c.snap.Revision, "err", err)
			c.snap.Err = err
			c.notifyLocked()
		}
		c.gen = ""
		return nil
	}
	c.gen = st.gen
	if c.snap.Loaded && c.snap.Err == nil && c.snap.Revision == st.rev && st.rev != 0 {
		return nil // same document (a re-read after a watch restart)
	}
	if c.snap.Err != nil {
		c.log.Info("stored document is valid again", "revision", st.rev)
	}
	c.snap = Snapshot{Doc: st.doc, Revision: st.rev, Loaded: true}
	c.log.Info("document loaded", "revision", st.rev, "generation", st.gen, "pools", len(st.doc.Pools))
	c.notifyLocked()
	return nil
}

// follow watches config/ from just after the last read and re-reads the
// document whenever the commit record or an item of the current generation
// changes (the latter only happens by hand). It returns on watch loss,
// compaction, or when ctx is done.
func (c *Cache) follow(ctx context.Context) error {
	c.mu.Lock()
	from := c.seen + 1
	c.mu.Unlock()
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	if c.beforeWatch != nil {
		c.beforeWatch()
	}
	wch := c.store.cli.Watch(wctx, c.store.configPrefix(), clientv3.WithPrefix(), clientv3.WithRev(from))
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case resp, ok := <-wch:
			if !ok {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				return errors.New("watch channel closed")
			}
			if resp.CompactRevision != 0 {
				return fmt.Errorf("watch start revision %d compacted (now %d)", from, resp.CompactRevision)
			}
			if err := resp.Err(); err != nil {
				return fmt.Errorf("watch: %w", err)
			}
			if c.applyCommits(resp.Events) {
				continue
			}
			if c.relevant(resp.Events) {
				// Most likely this replica's own replace, whose answer the
				// watch overtook: let the cache adopt it rather than read
				// it back, then look again.
				c.store.awaitFlip(ctx)
				if !c.relevant(resp.Events) {
					continue
				}
				if err := c.reload(ctx); err != nil {
					return err
				}
			}
		}
	}
}

// relevant reports whether any event touches the commit record or the
// generation the snapshot was read from, after the last read.
func (c *Cache) relevant(events []*clientv3.Event) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	cur := c.store.currentKey()
	genPrefix := ""
	if c.gen != "" {
		genPrefix = c.store.generationKey(c.gen)
	}
	for _, ev := range events {
		if ev.Kv.ModRevision <= c.seen {
			continue
		}
		k := string(ev.Kv.Key)
		if k == cur || (genPrefix != "" && strings.HasPrefix(k, genPrefix)) {
			return true
		}
	}
	return false
}

// probe is a linearizable read of the commit record: it fails when etcd
// has no quorum or cannot be reached.
func (c *Cache) probe(ctx context.Context) error {
	cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if _, err := c.store.cli.Get(cctx, c.store.currentKey(), clientv3.WithKeysOnly()); err != nil {
		return c.store.etcdError("probe", err)
	}
	return nil
}

// applyCommits handles the common case of a watch response made only of
// in-place commits on the current generation (per-item writes) by applying
// their item events to the snapshot. It returns false, having changed
// nothing, for anything else — a new generation, a hand edit, a value that
// does not decode, a result that does not validate — and the caller then
// re-reads the whole document, which also reports errors properly.
func (c *Cache) applyCommits(events []*clientv3.Event) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.snap.Loaded || c.snap.Err != nil || c.gen == "" {
		return false
	}
	cur := c.store.currentKey()
	genPrefix := c.store.generationKey(c.gen)
	doc, rev, seen := c.snap.Doc, c.snap.Revision, c.seen
	// Events of one transaction share a revision and arrive in one
	// response (no WithFragment); walk them revision by revision.
	for start := 0; start < len(events); {
		end := start
		for end < len(events) && events[end].Kv.ModRevision == events[start].Kv.ModRevision {
			end++
		}
		group := events[start:end]
		start = end
		r := group[0].Kv.ModRevision
		if r <= seen {
			continue
		}
		seen = r
		var items []*clientv3.Event
		committed := false
		for _, ev := range group {
			k := string(ev.Kv.Key)
			switch {
			case k == cur:
				var rec commitRecord
				if ev.Type != clientv3.EventTypePut || decodeStrict(ev.Kv.Value, &rec) != nil || rec.Generation != c.gen {
					return false
				}
				committed = true
			case strings.HasPrefix(k, genPrefix):
				items = append(items, ev)
			}
			// Other keys under config/ belong to other generations (a
			// replace in progress, or a deletion of old ones): not ours.
		}
		if len(items) > 0 && !committed {
			return false // the current generation edited by hand
		}
		if !committed {
			continue
		}
		next, err := applyDelta(doc, genPrefix, items)
		if err != nil {
			c.log.Debug("cannot apply commit incrementally, re-reading", "revision", r, "err", err)
			return false
		}
		doc, rev = next, r
	}
	if rev == c.snap.Revision {
		c.seen = seen
		return true // only other generations' keys
	}
	if err := topology.Validate(doc); err != nil {
		return false
	}
	c.seen = seen
	c.snap = Snapshot{Doc: doc, Revision: rev, Loaded: true}
	c.adopted = false
	c.log.Info("document updated", "revision", rev, "generation", c.gen, "pools", len(doc.Pools))
	c.notifyLocked()
	return true
}
