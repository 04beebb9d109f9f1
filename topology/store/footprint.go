package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// ErrNoSpace: etcd raised its NOSPACE alarm (the backend database reached
// its quota) and refuses every write until space is reclaimed and the
// alarm disarmed. It is also wrapped with ErrUnavailable; the API answers
// 503 with its own code so that automation does not retry blindly.
var ErrNoSpace = errors.New("etcd is out of space (NOSPACE alarm): writes are refused until it is compacted, defragmented and the alarm disarmed")

func isNoSpace(err error) bool {
	return errors.Is(err, rpctypes.ErrNoSpace) || errors.Is(err, rpctypes.ErrGRPCNoSpace)
}

// Footprint is etcd's size and alarms as last seen by a Keeper.
type Footprint struct {
	// DBSize is the backend file's size, DBSizeInUse the part holding
	// data; the rest is free pages that only a defragmentation returns.
	DBSize, DBSizeInUse int64
	// Revision is etcd's current revision, Compacted the revision the
	// Keeper last compacted to (0: none by this Keeper).
	Revision, Compacted int64
	// Alarms are the active alarms of any member ("NOSPACE", "CORRUPT").
	Alarms []string
	// NoSpace is true while a NOSPACE alarm is active.
	NoSpace bool
	// Compactions and Defrags count what this Keeper did.
	Compactions, Defrags, Disarms uint64
	// LastDefragDuration is how long the last defragmentation blocked etcd.
	LastDefragDuration time.Duration
	CheckedAt          time.Time
	// Err is the last check's failure (etcd unreachable), nil otherwise.
	Err error
}

// KeeperConfig tunes a Keeper. Maintain is only for an etcd op25b owns
// (the embedded one): compaction and defragmentation of a shared external
// cluster are its operators' business (docs: README "etcd footprint").
type KeeperConfig struct {
	// Interval between checks; default 5s. Each check compacts the MVCC
	// history up to the revision the previous check saw, so about one
	// Interval of history is kept: enough for a read or a watcher in
	// progress (which re-read after a compaction anyway). Counting
	// revisions instead would not work: one 100k-pool replace uses ~800.
	// op25b reads only current state; nothing relies on older revisions
	// (a document history, if kept, is kept as data, not as etcd history).
	Interval time.Duration
	// Maintain compacts and defragments; without it the Keeper only
	// watches sizes and alarms.
	Maintain bool
	// DefragFreeBytes: defragment when at least this many bytes of the
	// file are free pages and they are at least half of it; default 64 MiB.
	DefragFreeBytes int64
	// QuotaBytes is the member's --quota-backend-bytes (0: etcd's 2 GiB
	// default). After maintenance the Keeper disarms a NOSPACE alarm once
	// the file is below 80% of it.
	QuotaBytes int64
	Logger     *slog.Logger
}

// DefaultQuotaBytes is etcd's default backend quota.
const DefaultQuotaBytes = 2 << 30

func (c *KeeperConfig) setDefaults() {
	if c.Interval <= 0 {
		c.Interval = 5 * time.Second
	}
	if c.DefragFreeBytes <= 0 {
		c.DefragFreeBytes = 64 << 20
	}
	if c.QuotaBytes <= 0 {
		c.QuotaBytes = DefaultQuotaBytes
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Keeper watches etcd's database size and alarms and, for an etcd op25b
// owns, keeps it small: it compacts MVCC history older than KeepRevisions
// and defragments when most of the file is free pages. Without that,
// every 100k-pool replace leaves ~50 MB of history and freed pages: the
// probe saw 123 → 656 MB over a dozen replaces and start-up going from 4
// to 14 s, and etcd's 2 GiB quota would raise NOSPACE after a few dozen.
type Keeper struct {
	cli *clientv3.Client
	cfg KeeperConfig
	log *slog.Logger

	mu   sync.Mutex
	last Footprint
	// seen is the revision the previous check observed: the next
	// compaction's target.
	seen int64
}

// NewKeeper returns a Keeper for cli's cluster.
func NewKeeper(cli *clientv3.Client, cfg KeeperConfig) *Keeper {
	cfg.setDefaults()
	return &Keeper{cli: cli, cfg: cfg, log: cfg.Logger.With("part", "etcd-footprint")}
}

// Current returns what the last check saw.
func (k *Keeper) Current() Footprint {
	k.mu.Lock()
	defer k.mu.Unlock()
	f := k.last
	f.Alarms = append([]string(nil), f.Alarms...)
	return f
}

// NoSpace reports an active NOSPACE alarm as ErrNoSpace (for readiness).
func (k *Keeper) NoSpace() error {
	if k.Current().NoSpace {
		return ErrNoSpace
	}
	return nil
}

// Run checks (and maintains) every Interval until ctx is done.
func (k *Keeper) Run(ctx context.Context) error {
	t := time.NewTicker(k.cfg.Interval)
	defer t.Stop()
	for {
		k.Check(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Check runs one round: sizes and alarms of every endpoint, then, with
// Maintain, compaction, defragmentation and disarming as needed.
func (k *Keeper) Check(ctx context.Context) Footprint {
	f := k.observe(ctx)
	if f.Err == nil && k.cfg.Maintain {
		k.maintain(ctx, &f)
	}
	k.mu.Lock()
	prev := k.last
	f.Compactions += prev.Compactions
	f.Defrags += prev.Defrags
	f.Disarms += prev.Disarms
	if f.Compacted == 0 {
		f.Compacted = prev.Compacted
	}
	if f.LastDefragDuration == 0 {
		f.LastDefragDuration = prev.LastDefragDuration
	}
	k.last = f
	k.mu.Unlock()
	if f.NoSpace && !prev.NoSpace {
		k.log.Error("etcd raised its NOSPACE alarm: every write is refused until space is reclaimed", "db_size", f.DBSize, "quota", k.cfg.QuotaBytes)
	}
	if !f.NoSpace && prev.NoSpace {
		k.log.Info("etcd NOSPACE alarm cleared", "db_size", f.DBSize)
	}
	return f
}

// observe reads the largest member's sizes and the cluster's alarms.
func (k *Keeper) observe(ctx context.Context) Footprint {
	f := Footprint{CheckedAt: time.Now()}
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	for _, ep := range k.cli.Endpoints() {
		st, err := k.cli.Status(cctx, ep)
		if err != nil {
			f.Err = fmt.Errorf("etcd status of %s: %w", ep, err)
			continue
		}
		if st.DbSize > f.DBSize {
			f.DBSize, f.DBSizeInUse = st.DbSize, st.DbSizeInUse
		}
		if st.Header.Revision > f.Revision {
			f.Revision = st.Header.Revision
		}
	}
	if f.Revision > 0 {
		f.Err = nil // one member answering is enough to know the footprint
	}
	alarms, err := k.cli.AlarmList(cctx)
	if err != nil {
		if f.Err == nil {
			f.Err = fmt.Errorf("etcd alarms: %w", err)
		}
		return f
	}
	for _, a := range alarms.Alarms {
		if a.Alarm == pb.AlarmType_NONE {
			continue
		}
		f.Alarms = append(f.Alarms, a.Alarm.String())
		if a.Alarm == pb.AlarmType_NOSPACE {
			f.NoSpace = true
		}
	}
	return f
}

// maintain compacts, defragments and disarms as the policy says, and
// updates f with the result.
func (k *Keeper) maintain(ctx context.Context, f *Footprint) {
	k.mu.Lock()
	compacted, target := k.last.Compacted, k.seen
	k.seen = f.Revision
	k.mu.Unlock()
	if f.NoSpace {
		// Out of space: reclaim everything the current state does not
		// need; readers and watchers re-read after a compaction.
		target = f.Revision
	}
	if target > compacted && target > 0 {
		cctx, cancel := context.WithTimeout(ctx, time.Minute)
		_, err := k.cli.Compact(cctx, target, clientv3.WithCompactPhysical())
		cancel()
		switch {
		case err == nil || errors.Is(err, rpctypes.ErrCompacted):
			f.Compacted = target
			f.Compactions++
			k.log.Debug("etcd history compacted", "revision", target, "current", f.Revision)
		default:
			k.log.Warn("etcd compaction failed; retrying at the next check", "revision", target, "err", err)
			return
		}
		if again := k.observe(ctx); again.Err == nil {
			again.Compacted, again.Compactions = f.Compacted, f.Compactions
			*f = again
		}
	}
	free := f.DBSize - f.DBSizeInUse
	if free >= k.cfg.DefragFreeBytes && free*2 >= f.DBSize || f.NoSpace && free > 0 {
		k.defragment(ctx, f)
	}
	if f.NoSpace && f.DBSize < k.cfg.QuotaBytes/10*8 {
		if err := k.disarmNoSpace(ctx); err != nil {
			k.log.Warn("cannot disarm etcd's NOSPACE alarm", "err", err)
			return
		}
		f.Disarms++
		k.log.Info("etcd NOSPACE alarm disarmed after compaction and defragmentation", "db_size", f.DBSize, "quota", k.cfg.QuotaBytes)
		if again := k.observe(ctx); again.Err == nil {
			again.Compacted, again.Compactions, again.Defrags, again.Disarms, again.LastDefragDuration =
				f.Compacted, f.Compactions, f.Defrags, f.Disarms, f.LastDefragDuration
			*f = again
		}
	}
}

// disarmNoSpace deactivates the NOSPACE alarm of every member that has it.
func (k *Keeper) disarmNoSpace(ctx context.Context) error {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	alarms, err := k.cli.AlarmList(cctx)
	if err != nil {
		return err
	}
	for _, a := range alarms.Alarms {
		if a.Alarm != pb.AlarmType_NOSPACE {
			continue
		}
		if _, err := k.cli.AlarmDisarm(cctx, &clientv3.AlarmMember{MemberID: a.MemberID, Alarm: a.Alarm}); err != nil {
			return fmt.Errorf("member %x: %w", a.MemberID, err)
		}
	}
	return nil
}

// defragment rewrites each member's backend file without its free pages.
// It blocks that member's reads and writes while it runs (well under a
// second for op25b's tens of MB), which is why it only runs when at least
// half the file is free.
func (k *Keeper) defragment(ctx context.Context, f *Footprint) {
	before := f.DBSize
	start := time.Now()
	for _, ep := range k.cli.Endpoints() {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		_, err := k.cli.Defragment(cctx, ep)
		cancel()
		if err != nil {
			k.log.Warn("etcd defragmentation failed; retrying at the next check", "endpoint", ep, "err", err)
			return
		}
	}
	f.Defrags++
	f.LastDefragDuration = time.Since(start)
	if again := k.observe(ctx); again.Err == nil {
		again.Compacted, again.Compactions, again.Defrags, again.Disarms, again.LastDefragDuration =
			f.Compacted, f.Compactions, f.Defrags, f.Disarms, f.LastDefragDuration
		*f = again
	}
	k.log.Info("etcd defragmented", "db_size_before", before, "db_size", f.DBSize, "duration", f.LastDefragDuration.Round(time.Millisecond))
}
