package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/op25b/op25b/api"
	"github.com/op25b/op25b/controller"
	"github.com/op25b/op25b/controller/cluster"
	"github.com/op25b/op25b/internal/buildinfo"
	"github.com/op25b/op25b/internal/connlimit"
	"github.com/op25b/op25b/internal/etcdembed"
	"github.com/op25b/op25b/offenders"
	"github.com/op25b/op25b/topology/store"
)

// process connects run to what surrounds the daemon.
type process struct {
	// hup delivers SIGHUP: re-read the token file and the certificates.
	// main registers it before anything else, so an early SIGHUP (systemd
	// reload while starting) cannot kill the process.
	hup <-chan os.Signal
	// notify reports state to systemd (sd_notify "READY=1", "STOPPING=1",
	// "STATUS=..."); a no-op outside a Type=notify unit.
	notify func(state string)
}

// Stages of the stop (supervisor): leave the cluster first, while etcd and
// the switch sessions are still there, so another replica takes over at
// once; then stop serving the API; then close the switch sessions (flows
// stay: fail-mode secure); then the document cache. The etcd client and the
// embedded etcd close last, after every stage.
const (
	stageCluster = iota
	stageAPI
	stageSwitches
	stageCache
	stages
)

// run is the daemon's life: start every part under one supervisor, wait
// for ctx or a failure, stop them in the order that never opens a hole.
// It returns nil after a signal and the failing part's error otherwise.
func run(ctx context.Context, o options, logger *slog.Logger, proc process) error {
	err := runParts(ctx, o, logger, proc)
	if err != nil && ctx.Err() != nil && errors.Is(err, context.Canceled) {
		// Stopped while starting (embedded etcd, first connections): a
		// clean stop, not a failure.
		logger.Info("op25bd stopped while starting")
		return nil
	}
	return err
}

func runParts(ctx context.Context, o options, logger *slog.Logger, proc process) error {
	// Certificates first: a bad key or CA stops the daemon before it
	// touches etcd or a switch.
	certs, err := loadCertificates(o)
	if err != nil {
		return err
	}
	endpoints := o.EtcdEndpoints
	if len(endpoints) == 0 {
		var embedOpts etcdembed.Options
		if certs.etcd != nil {
			// The member serves op25bd's own etcd certificate and asks
			// clients (this replica) for one signed by --etcd-ca.
			embedOpts.TLS = &etcdembed.TLS{CertFile: o.EtcdTLS.Cert, KeyFile: o.EtcdTLS.Key, TrustedCAFile: o.EtcdTLS.CA}
		}
		eps, stopEtcd, err := etcdembed.Start(ctx, o.DataDir, logger, embedOpts)
		if err != nil {
			return fmt.Errorf("embedded etcd in %s: %w", o.DataDir, err)
		}
		defer stopEtcd()
		endpoints = eps
	}
	etcdCfg := clientv3.Config{
		Endpoints: endpoints, DialTimeout: 5 * time.Second,
		DialKeepAliveTime: 5 * time.Second, DialKeepAliveTimeout: 5 * time.Second,
		Logger: zap.NewNop(), // its failures surface through our own logs
	}
	if certs.etcd != nil {
		etcdCfg.TLS = certs.etcd.ClientConfig()
	}
	cli, err := clientv3.New(etcdCfg)
	if err != nil {
		return fmt.Errorf("etcd client for %v: %w", endpoints, err)
	}
	defer cli.Close()

	st := store.New(cli, store.DefaultPrefix, logger)
	keeper := etcdKeeper(cli, o, logger) // etcd size, alarms, maintenance (footprint.go)
	cache := store.NewCache(st, logger)
	metrics := api.NewMetrics(nil)
	tracker, err := offenders.NewTracker(o.Offenders)
	if err != nil {
		return fmt.Errorf("offenders: %w", err)
	}
	recorder := &offenderRecorder{tracker: tracker, cache: cache}

	var replica *cluster.Replica // set before any switch can connect
	ctrl := controller.New(controller.Config{
		AuditInterval:    o.AuditInterval,
		AuditSweep:       o.AuditSweep,
		HandshakeTimeout: o.HandshakeTimeout,
		MaxConnections:   o.OpenFlowMaxConns,
		// Under TLS, a certificate may claim only the dpids its bridge's
		// "cert" allows (identity.go).
		AuthorizeDatapath: datapathClaims(cache),
		Logger:            logger,
		Events: func(e controller.Event) {
			metrics.ObserveEvent(e)
			replica.ControllerEvent(e)
		},
		Offenders: recorder.record,
	})

	ofLn, err := net.Listen("tcp", o.OpenFlowListen)
	if err != nil {
		return fmt.Errorf("openflow listen %s: %w", o.OpenFlowListen, err)
	}
	defer ofLn.Close()
	// The TLS listener only wraps accepted connections; the controller
	// runs each handshake in the connection's goroutine under
	// --handshake-timeout. A plain-TCP switch fails that handshake.
	ofServe := openFlowListener(ofLn, o, logger)
	if certs.openflow != nil {
		ofServe = tls.NewListener(ofServe, certs.openflow.ServerConfig())
	} else {
		logger.Warn("OpenFlow over plain TCP: switches are not authenticated and flows travel in clear; " +
			"set --openflow-tls-cert, --openflow-tls-key and --openflow-tls-ca outside a lab")
	}

	tokens, apiAddr, err := apiAuth(o, logger)
	if err != nil {
		return err
	}
	apiLn, err := net.Listen("tcp", apiAddr)
	if err != nil {
		return fmt.Errorf("api listen %s: %w", apiAddr, err)
	}
	defer apiLn.Close()
	apiServe := apiListener(apiLn, o, logger)
	if certs.api != nil {
		// net/http runs the handshake in the connection's goroutine,
		// bounded by the server's read timeouts.
		apiServe = tls.NewListener(apiServe, certs.api.ServerConfig())
	}
	var metricsLn net.Listener
	if o.MetricsListen != "" {
		if metricsLn, err = net.Listen("tcp", o.MetricsListen); err != nil {
			return fmt.Errorf("metrics listen %s: %w", o.MetricsListen, err)
		}
		defer metricsLn.Close()
	}

	bi := buildinfo.Read()
	replica, err = cluster.New(cluster.Config{
		NodeID: o.NodeID, Client: cli, Prefix: store.DefaultPrefix,
		Switches: cluster.ControllerSwitches(ctrl), Policy: cluster.CachePolicy(cache),
		Compile: cluster.CompileWith(o.Pipeline), LeaseTTL: o.LeaseTTL, Logger: logger,
		Records: cluster.StoreRecords(st, store.ReplicaInfo{
			ID: o.NodeID, APIAddr: apiLn.Addr().String(), OpenFlowAddr: ofLn.Addr().String(),
			Version: bi.Version, Started: time.Now().UTC(),
		}),
	})
	if err != nil {
		return err
	}
	ready := readiness{cache, replica}
	apiCfg := api.Config{
		Store: st, Cache: ready, Cluster: st, Switches: ctrl,
		Tokens: tokens, NodeID: o.NodeID, Logger: logger, Metrics: metrics, Pipeline: o.Pipeline,
		BodyReadTimeout: o.Limits.APIBodyTimeout, Etcd: keeper, Offenders: tracker,
		Replica: replicaHealth{replica}, Certificates: certs,
	}
	handler, err := api.New(apiCfg)
	if err != nil {
		return fmt.Errorf("api: %w", err)
	}
	httpSrv := newHTTPServer(handler, o, logger)
	var metricsSrv *http.Server
	if metricsLn != nil {
		probes, err := api.NewMetricsOnly(apiCfg)
		if err != nil {
			return fmt.Errorf("metrics listener: %w", err)
		}
		metricsSrv = newHTTPServer(probes, o, logger)
	}

	// Nothing below returns before sup.Wait: once a part runs, only the
	// supervisor ends it.
	sup := newSupervisor(ctx, stages, logger)
	sup.Go(stageCache, "watch cache", cache.Run)
	sup.Go(stageCache, "etcd footprint", keeper.Run)
	sup.Go(stageSwitches, "openflow controller", func(c context.Context) error { return ctrl.Serve(c, ofServe) })
	sup.Go(stageCluster, "cluster", replica.Run)
	sup.Go(stageAPI, "api", func(c context.Context) error { return serveHTTP(c, httpSrv, apiServe) })
	if metricsSrv != nil {
		// Few connections: a Prometheus and a load balancer or two.
		sup.Go(stageAPI, "metrics listener", func(c context.Context) error {
			return serveHTTP(c, metricsSrv, metricsListener(metricsLn, logger))
		})
	}
	reload := certs.reloaders(tokens)
	sup.Go(stageCluster, "reload", func(c context.Context) error { return reloadOnHUP(c, proc.hup, reload, logger) })
	sup.Go(stageCluster, "readiness", func(c context.Context) error { return reportReadiness(c, ready.Healthy, proc.notify, logger) })

	running := []any{"openflow", ofLn.Addr().String(), "api", apiLn.Addr().String(),
		"etcd", endpoints, "openflow_tls", certs.openflow != nil, "api_tls", certs.api != nil,
		"api_client_certs", o.APITLS.CA != "", "etcd_tls", certs.etcd != nil, "version", bi.Version}
	if metricsLn != nil {
		running = append(running, "metrics", metricsLn.Addr().String())
	}
	logger.Info("op25bd running", running...)

	err = sup.Wait(func(cause error) {
		proc.notify("STOPPING=1")
		logger.Info("shutting down: releasing mastership, flows stay on the switches", "cause", cause)
	})
	if err != nil {
		return err
	}
	logger.Info("op25bd stopped")
	return nil
}

// newHTTPServer is the API's (and the metrics listener's) http.Server.
func newHTTPServer(h http.Handler, o options, logger *slog.Logger) *http.Server {
	return &http.Server{
		Handler: h,
		// Slow-loris bounds: headers (and the TLS handshake, which
		// net/http bounds by the smallest of these) within
		// --handshake-timeout, a whole request (PUT bodies up to tens of
		// MiB) within a minute, an idle keep-alive connection two. The
		// write timeout frees a slot held by a client that never reads;
		// no endpoint long-polls, and a 100k-pool PUT takes seconds.
		ReadHeaderTimeout: o.HandshakeTimeout,
		ReadTimeout:       time.Minute,
		WriteTimeout:      2 * time.Minute,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelDebug),
		ConnContext:       connlimit.ConnContext, // reserved connections serve health only
	}
}

// apiDrain is how long requests in flight may take to finish at stop; then
// their connections are closed. Short, so a stop stays well within
// systemd's TimeoutStopSec: a client whose write was cut off finds the
// document unchanged or changed (etcd writes are single transactions) and
// retries against another replica.
const apiDrain = 3 * time.Second

// serveHTTP serves ln until ctx is done, then stops accepting, lets
// requests in flight finish for up to apiDrain and closes the rest.
func serveHTTP(ctx context.Context, srv *http.Server, ln net.Listener) error {
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return err // never nil: Serve only returns on failure here
	case <-ctx.Done():
	}
	drain, cancel := context.WithTimeout(context.Background(), apiDrain)
	defer cancel()
	if err := srv.Shutdown(drain); err != nil {
		_ = srv.Close()
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// apiAuth loads the token file. Without one the API has no
// authentication, so it is only served on loopback.
func apiAuth(o options, logger *slog.Logger) (*api.TokenFile, string, error) {
	if o.APITokenFile != "" {
		t, err := api.LoadTokenFile(o.APITokenFile)
		if err != nil {
			return nil, "", err
		}
		return t, o.APIListen, nil
	}
	host, port, _ := net.SplitHostPort(o.APIListen)
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() || host == "localhost" {
		logger.Warn("no --api-token-file: the API has no authentication (loopback only)")
		return nil, o.APIListen, nil
	}
	addr := net.JoinHostPort("127.0.0.1", port)
	logger.Warn("no --api-token-file: serving the API on loopback only instead of the requested address",
		"requested", o.APIListen, "serving", addr)
	return nil, addr, nil
}

// reloadable is something SIGHUP re-reads.
type reloadable struct {
	name   string // for logs: "token file", "openflow certificates", ...
	reload func() error
}

// reloadOnHUP re-reads every part on SIGHUP; a part that fails to load
// keeps its previous contents (and says so), the others still reload.
func reloadOnHUP(ctx context.Context, hup <-chan os.Signal, parts []reloadable, logger *slog.Logger) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-hup:
			if len(parts) == 0 {
				logger.Info("SIGHUP: nothing to reload (no token file, no certificates)")
			}
			for _, p := range parts {
				if err := p.reload(); err != nil {
					logger.Error(p.name+" reload failed; keeping the previous one", "err", err)
				} else {
					logger.Info(p.name+" reloaded", "part", p.name)
				}
			}
		}
	}
}

// reportReadiness tells systemd READY=1 the first time the replica is
// ready (/readyz: document loaded, etcd answers, lease held), so that
// `systemctl start` and a rolling restart wait for a replica that can
// serve, and keeps systemd's STATUS= line current afterwards.
func reportReadiness(ctx context.Context, healthy func() error, notify func(string), logger *slog.Logger) error {
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	readySent, last := false, ""
	for {
		status := "ready"
		if err := healthy(); err != nil {
			status = "not ready: " + err.Error()
		}
		switch {
		case status == "ready" && !readySent:
			notify("READY=1\nSTATUS=ready")
			logger.Info("ready")
			readySent = true
		case status != last:
			notify("STATUS=" + status)
		}
		last = status
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// replicaHealth adapts the cluster replica for the metrics (api imports
// no cluster code).
type replicaHealth struct{ r *cluster.Replica }

func (h replicaHealth) Health() api.ReplicaHealth {
	c := h.r.Health()
	return api.ReplicaHealth{EtcdErr: c.EtcdErr, LeaseHeld: c.LeaseHeld, LeaseExpires: c.LeaseExpires}
}

// readiness is /readyz: the cache has the document and etcd answers, and
// this replica holds its lease.
type readiness struct {
	cache   *store.Cache
	replica *cluster.Replica
}

func (r readiness) Current() store.Snapshot { return r.cache.Current() }

func (r readiness) Healthy() error {
	if err := r.cache.Healthy(); err != nil {
		return err
	}
	return r.replica.Ready()
}
