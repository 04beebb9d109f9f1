package store

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

// StartEmbedded starts a single-node etcd member on loopback with its data
// in dataDir (created if needed; an existing one is reused, so the
// document survives restarts). It returns the client endpoints and a stop
// function that shuts the member down and waits for it. Used by op25bd when
// no --etcd-endpoints are given, and by tests.
//
// embed cannot listen on port 0 (it advertises the URL it was given), so
// free ports are picked by binding 127.0.0.1:0 and closing; another process
// could grab one in between, hence a few attempts.
func StartEmbedded(ctx context.Context, dataDir string, logger *slog.Logger) ([]string, func(), error) {
	return startEmbedded(ctx, dataDir, logger, EmbeddedOptions{})
}

// EmbeddedTLS makes StartEmbeddedTLS's member serve clients over TLS:
// CertFile and KeyFile are its server certificate (SAN 127.0.0.1), and
// every client must present a certificate signed by TrustedCAFile
// (etcd's --client-cert-auth). Peer traffic stays on loopback, plain.
type EmbeddedTLS struct {
	CertFile, KeyFile, TrustedCAFile string
}

// StartEmbeddedTLS is StartEmbedded with an https:// client endpoint and
// client-certificate authentication (op25bd --etcd-cert/--etcd-key/--etcd-ca
// without --etcd-endpoints).
func StartEmbeddedTLS(ctx context.Context, dataDir string, logger *slog.Logger, tlsFiles EmbeddedTLS) ([]string, func(), error) {
	return StartEmbeddedWith(ctx, dataDir, logger, EmbeddedOptions{TLS: &tlsFiles})
}

// EmbeddedOptions are the less common settings of the embedded member.
type EmbeddedOptions struct {
	// TLS, when set, serves clients as StartEmbeddedTLS does.
	TLS *EmbeddedTLS
	// QuotaBytes is the backend quota (etcd's --quota-backend-bytes);
	// 0 is etcd's default, DefaultQuotaBytes. Past it etcd raises NOSPACE.
	QuotaBytes int64
}

// StartEmbeddedWith is StartEmbedded with options.
func StartEmbeddedWith(ctx context.Context, dataDir string, logger *slog.Logger, opts EmbeddedOptions) ([]string, func(), error) {
	return startEmbedded(ctx, dataDir, logger, opts)
}

func startEmbedded(ctx context.Context, dataDir string, logger *slog.Logger, opts EmbeddedOptions) ([]string, func(), error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		endpoints, stop, err := startEmbeddedOnce(ctx, dataDir, logger, opts)
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

func startEmbeddedOnce(ctx context.Context, dataDir string, logger *slog.Logger, opts EmbeddedOptions) ([]string, func(), error) {
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
	// A backstop only: op25bd's Keeper (footprint.go) compacts and
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
