package api

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/op25b/op25b/controller"
	"github.com/op25b/op25b/flows"
	"github.com/op25b/op25b/topology"
	"github.com/op25b/op25b/topology/store"
)

// ConfigStore is the durable policy document and its audit log.
// *store.Store satisfies it. Writes are all-or-nothing: an error means
// nothing was stored (store.ErrConflict for a failed IfRevision,
// store.ErrUnavailable when etcd cannot be reached).
type ConfigStore interface {
	Load(ctx context.Context) (*topology.Document, int64, error)
	Replace(ctx context.Context, doc *topology.Document, opts store.WriteOptions) (int64, error)
	// Update calls mutate on a private copy of the current document and
	// stores the result conditionally on the revision it loaded; errors
	// returned by mutate are returned unchanged and store nothing.
	Update(ctx context.Context, opts store.WriteOptions, mutate func(*topology.Document) error) (int64, error)
	Audit(ctx context.Context, limit int, before int64) ([]store.AuditRecord, error)
	// LoadAt returns the document as it was at revision rev and the
	// revision of the write that made it; *store.PrunedError when that
	// history is no longer kept.
	LoadAt(ctx context.Context, rev int64) (*topology.Document, int64, error)
	// Rollback stores the document of revision rev again, conditioned on
	// opts.IfRevision, audited as a rollback.
	Rollback(ctx context.Context, rev int64, opts store.WriteOptions) (int64, error)
}

// DocSource is the replica's watch-fed copy of the document (*store.Cache).
// Status and metrics read it instead of loading 100k pools from etcd on
// every poll; Healthy drives /readyz.
type DocSource interface {
	Current() store.Snapshot
	Healthy() error
}

// StatusSource is the cluster-wide view written by the masters
// (*store.Store): one status record per bridge, one record per replica.
type StatusSource interface {
	BridgeStatuses(ctx context.Context) ([]store.BridgeStatus, error)
	Replicas(ctx context.Context) ([]store.ReplicaInfo, error)
}

// SwitchSource is this replica's OpenFlow controller
// (*controller.Controller). Only it can dump flows and read counters.
type SwitchSource interface {
	Status() []controller.BridgeStatus
	Installed(ctx context.Context, dpid topology.DPID) ([]flows.Flow, []controller.FlowCounter, error)
	DropCounters(dpid topology.DPID) []controller.FlowCounter
}

// Config wires the API. Store is required; everything else is optional
// (a nil source makes the endpoints that need it report what is missing).
type Config struct {
	Store    ConfigStore
	Cache    DocSource
	Cluster  StatusSource
	Switches SwitchSource
	// Etcd, when set, adds etcd's size and alarms to /v1/status, /readyz
	// (not ready under NOSPACE) and the metrics (etcd.go).
	Etcd EtcdSource
	// Replica and Certificates, when set, add etcd reachability, the
	// lease and certificate expiry times to the metrics (replica.go).
	Replica      ReplicaSource
	Certificates CertificateSource
	// Tokens enables bearer-token auth on every /v1 route; nil disables
	// auth (the daemon then binds loopback only and warns).
	Tokens *TokenFile
	// NodeID is this replica's id, to recognise itself in status records.
	NodeID string
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Metrics defaults to NewMetrics(nil); pass the same value whose
	// ObserveEvent is wired to controller.Config.Events.
	Metrics *Metrics
	// Now is the clock used to compile desired flows (phases, docs/semantics.md);
	// defaults to time.Now.
	Now func() time.Time
	// HTTPClient forwards flow dumps to the master replica's API; defaults
	// to a client with a 10 s timeout.
	HTTPClient *http.Client
	// StoreTimeout bounds every etcd call of a request, so an unreachable
	// etcd is a prompt 503 rather than a hung client; default 10 s.
	StoreTimeout time.Duration
	// MaxBodyBytes limits request bodies (413 above); default 16 MiB.
	MaxBodyBytes int64
	// BodyReadTimeout is how long a request body may take to arrive, plus
	// one second per MiB its Content-Length announces; default 10 s. It is
	// set on the connection when the handler starts reading and cleared
	// when the body is in, so it bounds slow clients, not slow handlers.
	BodyReadTimeout time.Duration
	// Offenders is this replica's offender tracker (GET /v1/offenders and
	// the op25b_offender* metrics); nil: the endpoint answers 503.
	Offenders OffenderSource
	// Pipeline is how the replicas compile flows (op25bd --first-table,
	// --continue); dry runs, desired flows and per-pool metrics must use the
	// same. The zero value means flows.DefaultOptions().
	Pipeline flows.Options
}

// DefaultMaxBodyBytes is the request body limit: a 100k-pool document is
// about 8 MiB of JSON.
const DefaultMaxBodyBytes = 16 << 20

// DefaultBodyReadTimeout is Config.BodyReadTimeout's default.
const DefaultBodyReadTimeout = 10 * time.Second

func (c *Config) setDefaults() error {
	if c.Store == nil {
		return fmt.Errorf("api: Config.Store is required")
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Metrics == nil {
		c.Metrics = NewMetrics(nil)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if c.StoreTimeout <= 0 {
		c.StoreTimeout = 10 * time.Second
	}
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.BodyReadTimeout <= 0 {
		c.BodyReadTimeout = DefaultBodyReadTimeout
	}
	if c.Pipeline == (flows.Options{}) {
		c.Pipeline = flows.DefaultOptions()
	}
	if err := c.Pipeline.Validate(); err != nil {
		return fmt.Errorf("api: Config.Pipeline: %w", err)
	}
	return nil
}
