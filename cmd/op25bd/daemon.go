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
	"os/signal"
	"sync"
	"syscall"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/op25b/op25b/api"
	"github.com/op25b/op25b/controller"
	"github.com/op25b/op25b/controller/cluster"
	"github.com/op25b/op25b/internal/connlimit"
	"github.com/op25b/op25b/topology/store"
)

// run is the daemon's life: start every part, wait for ctx, stop them in
// the order that never opens a hole.
func run(ctx context.Context, o options, logger *slog.Logger) error {
	// Certificates first: a bad key or CA stops the daemon before it
	// touches etcd or a switch.
	certs, err := loadCertificates(o)
	if err != nil {
		return err
	}
	endpoints := o.EtcdEndpoints
	if len(endpoints) == 0 {
		start := store.StartEmbedded
		if certs.etcd != nil {
			// The member serves op25bd's own etcd certificate and asks
			// clients (this replica) for one signed by --etcd-ca.
			start = func(ctx context.Context, dir string, l *slog.Logger) ([]string, func(), error) {
				return store.StartEmbeddedTLS(ctx, dir, l, store.EmbeddedTLS{
					CertFile: o.EtcdTLS.Cert, KeyFile: o.EtcdTLS.Key, TrustedCAFile: o.EtcdTLS.CA})
			}
		}
		eps, stopEtcd, err := start(ctx, o.DataDir, logger)
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

	var replica *cluster.Replica // set before any switch can connect
	ctrl := controller.New(controller.Config{
		AuditInterval:    o.AuditInterval,
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

	replica, err = cluster.New(cluster.Config{
		NodeID: o.NodeID, Client: cli, Prefix: store.DefaultPrefix,
		Switches: cluster.ControllerSwitches(ctrl), Policy: cluster.CachePolicy(cache),
		Compile: cluster.CompileWith(o.Pipeline), LeaseTTL: o.LeaseTTL, Logger: logger,
		Records: cluster.StoreRecords(st, store.ReplicaInfo{
			ID: o.NodeID, APIAddr: apiLn.Addr().String(), OpenFlowAddr: ofLn.Addr().String(),
			Version: version, Started: time.Now().UTC(),
		}),
	})
	if err != nil {
		return err
	}
	handler, err := api.New(api.Config{
		Store: st, Cache: readiness{cache, replica}, Cluster: st, Switches: ctrl,
		Tokens: tokens, NodeID: o.NodeID, Logger: logger, Metrics: metrics, Pipeline: o.Pipeline,
		BodyReadTimeout: o.Limits.APIBodyTimeout, Etcd: keeper,
	})
	if err != nil {
		return fmt.Errorf("api: %w", err)
	}
	httpSrv := &http.Server{
		Handler: handler,
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

	// Each part has its own context so shutdown can order them. A part
	// that fails stops the daemon (exit 1) through the same ordered path.
	ctx, fail := context.WithCancelCause(ctx)
	defer fail(nil)
	var wg sync.WaitGroup
	start := func(name string, f func(context.Context) error) context.CancelFunc {
		c, cancel := context.WithCancel(context.Background())
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(c); err != nil {
				fail(fmt.Errorf("%s: %w", name, err))
			}
		}()
		return cancel
	}
	stopCache := start("watch cache", cache.Run)
	stopKeeper := start("etcd footprint", keeper.Run)
	stopCtrl := start("openflow controller", func(c context.Context) error { return ctrl.Serve(c, ofServe) })
	replicaDone := make(chan struct{})
	stopReplica := start("cluster", func(c context.Context) error {
		defer close(replicaDone)
		return replica.Run(c)
	})
	start("api", func(context.Context) error {
		if err := httpSrv.Serve(apiServe); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})
	if reload := certs.reloaders(tokens); len(reload) > 0 {
		stopHUP := start("reload", func(c context.Context) error { return reloadOnHUP(c, reload, logger) })
		defer stopHUP()
	}
	logger.Info("op25bd running", "openflow", ofLn.Addr().String(), "api", apiLn.Addr().String(),
		"etcd", endpoints, "openflow_tls", certs.openflow != nil, "api_tls", certs.api != nil,
		"api_client_certs", o.APITLS.CA != "", "etcd_tls", certs.etcd != nil, "version", version)

	<-ctx.Done()
	logger.Info("shutting down: releasing mastership, flows stay on the switches", "cause", context.Cause(ctx))
	// 1. Leave the cluster first: tell the controller SLAVE and revoke the
	//    lease while etcd is still there, so others take over at once.
	stopReplica()
	<-replicaDone
	// 2. Stop serving the API, then the switches (closing an OpenFlow
	//    session does not touch flows; fail-mode secure keeps them).
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	_ = httpSrv.Shutdown(sctx)
	cancel()
	stopCtrl()
	stopCache()
	stopKeeper()
	wg.Wait()
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	logger.Info("op25bd stopped")
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
func reloadOnHUP(ctx context.Context, parts []reloadable, logger *slog.Logger) error {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-hup:
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
