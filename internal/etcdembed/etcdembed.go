// Package etcdembed starts the single-node etcd member op25bd runs when it
// is given no --etcd-endpoints, and that tests use as a real etcd.
//
// It is the only package of op25b that links the etcd server (raft, bbolt,
// grpc-gateway ...): package topology/store speaks to etcd as a client
// only, so a program that reads or writes the policy document does not
// carry a database server with it. The member is tuned for one op25bd:
// loopback only, snapshots every 100 entries with two spare WAL files
// (start-up replays little), compaction in large batches (it keeps up with
// a run of 100k-pool replaces), and etcd's own logs forwarded to slog.
package etcdembed

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	"go.etcd.io/etcd/server/v3/embed"

	"github.com/op25b/op25b/internal/freeport"
)

// TLS makes the member serve clients over TLS: CertFile and KeyFile are its
// server certificate (SAN 127.0.0.1), and every client must present a
// certificate signed by TrustedCAFile (etcd's --client-cert-auth). Peer
// traffic stays on loopback, plain.
type TLS struct {
	CertFile, KeyFile, TrustedCAFile string
}

// Options are the less common settings of the member; the zero value is a
// plain-HTTP member with etcd's default quota.
type Options struct {
	// TLS, when set, serves clients on an https:// endpoint with
	// client-certificate authentication (op25bd --etcd-cert/--etcd-key/
	// --etcd-ca without --etcd-endpoints).
	TLS *TLS
	// QuotaBytes is the backend quota (etcd's --quota-backend-bytes); 0 is
	// etcd's default of 2 GiB. Past it etcd raises NOSPACE.
	QuotaBytes int64
}

// Start starts a single-node etcd member on loopback with its data in
// dataDir (created if needed; an existing one is reused, so the document
// survives restarts). It returns the client endpoints and a stop function
// that shuts the member down and waits for it.
//
// embed cannot listen on port 0 (it advertises the URL it was given), so
// free ports are picked by binding 127.0.0.1:0 and closing; another process
// could grab one in between, hence a few attempts.
func Start(ctx context.Context, dataDir string, logger *slog.Logger, opts Options) ([]string, func(), error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		endpoints, stop, err := startOnce(ctx, dataDir, logger, opts)
		if err == nil {
			logger.Info("embedded etcd started", "endpoints", endpoints, "data_dir", dataDir)
			return endpoints, stop, nil
		}
		lastErr = err
		if ctx.Err() != nil {
			break
		}
	}
	return nil, nil, fmt.Errorf("start embedded etcd in %s: %w", dataDir, lastErr)
}

func startOnce(ctx context.Context, dataDir string, logger *slog.Logger, opts Options) ([]string, func(), error) {
	tlsFiles := opts.TLS
	ports, err := freeport.Loopback(2)
	if err != nil {
		return nil, nil, err
	}
	clientURL := url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", ports[0])}
	peerURL := url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", ports[1])}

	cfg := embed.NewConfig()
	if tlsFiles != nil {
		clientURL.Scheme = "https"
		cfg.ClientTLSInfo = transport.TLSInfo{CertFile: tlsFiles.CertFile, KeyFile: tlsFiles.KeyFile,
			TrustedCAFile: tlsFiles.TrustedCAFile, ClientCertAuth: true}
	}
	cfg.Name = "op25b"
	cfg.Dir = dataDir
	cfg.ListenClientUrls = []url.URL{clientURL}
	cfg.AdvertiseClientUrls = []url.URL{clientURL}
	cfg.ListenPeerUrls = []url.URL{peerURL}
	cfg.AdvertisePeerUrls = []url.URL{peerURL}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	cfg.LogLevel = "warn"
	var stopping atomic.Bool
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(newEtcdZapLogger(logger, &stopping))
	// A backstop only: op25bd's store.Keeper compacts and
	// defragments the embedded member within seconds of a large write.
	cfg.AutoCompactionMode = embed.CompactorModePeriodic
	cfg.AutoCompactionRetention = "1h"
	cfg.QuotaBackendBytes = opts.QuotaBytes
	// Start-up replays the WAL since the last snapshot, and WAL files are
	// only released by snapshots. One 100k-pool replace is ~800 entries of
	// up to 1 MiB, so etcd's default of a snapshot every 10,000 entries
	// left gigabytes to replay and to keep on disk. A snapshot of a single
	// member costs little (the backend file is the snapshot; what is
	// written is a small .snap of metadata), and there are no followers
	// to catch up. Two spare WAL files (64 MiB each) instead of five.
	cfg.SnapshotCount = 100
	cfg.SnapshotCatchUpEntries = 50
	cfg.MaxWalFiles = 2
	// etcd compacts in batches of 1000 revisions with a 10 ms pause
	// between them, to spare a busy cluster; a 100k-pool replace leaves
	// ~200k revisions of keys, so at that pace compaction falls behind a
	// run of replaces. Bigger batches, shorter pauses: each batch holds
	// the backend for tens of milliseconds.
	cfg.CompactionBatchLimit = 20000
	cfg.CompactionSleepInterval = time.Millisecond

	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return nil, nil, err
	}
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		stopping.Store(true)
		closeUnready(e, logger)
		return nil, nil, fmt.Errorf("embedded etcd failed while starting: %w", err)
	case <-time.After(60 * time.Second):
		stopping.Store(true)
		closeUnready(e, logger)
		return nil, nil, fmt.Errorf("embedded etcd not ready after 60s")
	case <-ctx.Done():
		stopping.Store(true)
		closeUnready(e, logger)
		return nil, nil, ctx.Err()
	}
	stop := func() {
		stopping.Store(true)
		e.Close()
	}
	return []string{clientURL.String()}, stop, nil
}

// closeUnready closes a member that never became ready, giving up after a
// few seconds: embed's Close waits for client servers that are only
// handed over once the member is ready, so on a member that never was
// (a data directory from an incompatible etcd version, say) it blocks
// forever, and a SIGTERM during such a start would never end the daemon.
// What is left open is released when the process exits; etcd's files are
// crash-safe.
func closeUnready(e *embed.Etcd, logger *slog.Logger) {
	closed := make(chan struct{})
	go func() {
		e.Close()
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		logger.Warn("embedded etcd that never became ready did not close within 5s; leaving it to the process exit")
	}
}
