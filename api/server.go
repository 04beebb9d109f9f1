package api

import (
	"context"
	"fmt"
	"net/http"
	"runtime/debug"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/op25b/op25b/api/ui"
	"github.com/op25b/op25b/internal/connlimit"
	"github.com/op25b/op25b/topology"
)

// server holds the wired dependencies; its methods are the handlers.
type server struct {
	cfg    Config
	router *mux.Router
	// writeTurn lets one store write of this replica run at a time (see
	// retryUnconditional).
	writeTurn chan struct{}
	// page serves the rollout page at /ui/ (package ui); nil on the
	// metrics listener.
	page http.Handler
}

// handlerFunc is a handler that reports failure by returning an error,
// which serve turns into the contract's error body.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// New builds the API handler: every route of docs/rest-api.md plus /metrics,
// /healthz, /readyz and /v1/openapi.yaml.
func New(cfg Config) (http.Handler, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	s := &server{cfg: cfg, router: mux.NewRouter(), writeTurn: make(chan struct{}, 1), page: ui.Handler()}
	s.probeRoutes()
	s.routes()
	s.watchSources()
	return s, nil
}

// NewMetricsOnly builds the handler of op25bd's second listener
// (--metrics-listen): /metrics, /healthz and /readyz, without tokens, so a
// Prometheus on another host can scrape a replica whose API is on loopback
// or needs tokens and client certificates. Every other path is 404: none
// of the document, status or audit log is served there. cfg is New's
// (pass the same Metrics); its Tokens are not used.
func NewMetricsOnly(cfg Config) (http.Handler, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	cfg.Tokens = nil
	s := &server{cfg: cfg, router: mux.NewRouter()}
	s.probeRoutes()
	s.watchSources()
	return s, nil
}

// watchSources points the metrics' scrape-time collectors at the
// configured sources (the same whichever listener serves them).
func (s *server) watchSources() {
	m := s.cfg.Metrics
	m.collectSwitchState(s.cfg.Switches, s.cfg.Cache, s.cfg.Pipeline, s.cfg.Now, s.cfg.Logger)
	m.watchEtcd(s.cfg.Etcd)
	m.watchReplica(s.cfg.Replica, s.cfg.Certificates, s.cfg.Now)
	m.collectOffenders(s.cfg.Offenders, s.cfg.Cache)
	m.explainDisagree.watch(s.cfg.Cache)
}

// probeRoutes are the routes without authentication: probes and metrics.
func (s *server) probeRoutes() {
	r := s.router
	r.NotFoundHandler = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		writeError(w, req, s.cfg.Logger, newError(http.StatusNotFound, CodeNotFound, "", "no such route: "+req.URL.Path))
	})
	r.MethodNotAllowedHandler = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		writeError(w, req, s.cfg.Logger, newError(http.StatusMethodNotAllowed, CodeMethodNotAllowed, "", req.Method+" is not allowed on "+req.URL.Path))
	})
	r.Use(recordRoute)

	r.Handle("/healthz", s.serve(s.healthz)).Methods(http.MethodGet)
	r.Handle("/readyz", s.serve(s.readyz)).Methods(http.MethodGet)
	r.Handle("/metrics", s.cfg.Metrics.handler()).Methods(http.MethodGet)
}

func (s *server) routes() {
	r := s.router
	r.Handle("/v1/openapi.yaml", s.serve(s.openAPI)).Methods(http.MethodGet)
	r.Handle("/v1/config", s.serve(s.getConfig)).Methods(http.MethodGet)
	r.Handle("/v1/config", s.serve(s.putConfig)).Methods(http.MethodPut)
	r.Handle("/v1/config/rollback", s.serve(s.rollback)).Methods(http.MethodPost)
	for _, k := range topology.ItemKinds {
		registerItems(s, k)
	}
	r.Handle("/v1/status", s.serve(s.status)).Methods(http.MethodGet)
	r.Handle("/v1/rollout", s.serve(s.rollout)).Methods(http.MethodGet)
	r.Handle("/v1/bridges/{dpid}/flows", s.serve(s.bridgeFlows)).Methods(http.MethodGet)
	r.Handle("/v1/audit", s.serve(s.audit)).Methods(http.MethodGet)
	r.Handle("/v1/explain", s.serve(s.explain)).Methods(http.MethodGet)
	r.Handle("/v1/offenders", s.serve(s.offenders)).Methods(http.MethodGet)
}

// ServeHTTP authenticates /v1 requests, then routes, and counts every
// answer by route and status code (contract: "API requests by code").
func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	info := &requestInfo{route: "unmatched", who: anonymous}
	rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
	r = r.WithContext(context.WithValue(r.Context(), requestInfoKey{}, info))
	defer func() {
		s.cfg.Metrics.observeRequest(r.Method, info.route, rec.status)
		s.cfg.Logger.Debug("api request", "method", r.Method, "path", r.URL.Path,
			"status", rec.status, "who", info.who, "duration", time.Since(start))
	}()
	// A handler bug answers 500 with the usual error body and is logged with
	// its stack; net/http would otherwise just drop the connection. A write
	// that panicked mid-way has stored nothing: etcd writes are single
	// conditional transactions at the end of a handler.
	defer func() {
		p := recover()
		if p == nil || p == http.ErrAbortHandler {
			if p != nil {
				panic(p)
			}
			return
		}
		s.cfg.Logger.Error("bug: panic in API handler", "method", r.Method, "path", r.URL.Path,
			"panic", fmt.Sprint(p), "stack", string(debug.Stack()))
		if rec.wrote {
			rec.status = http.StatusInternalServerError
			return
		}
		writeError(rec, r, s.cfg.Logger, newError(http.StatusInternalServerError, CodeInternal, "", "internal error (a bug, logged by the server)"))
	}()
	if connlimit.Reserved(r.Context()) {
		// A connection beyond the listener's caps: answer the probes,
		// turn everything else away at once, and close after one answer.
		rec.Header().Set("Connection", "close")
		if !reservedPath(r.URL.Path) {
			rec.Header().Set("Retry-After", "1")
			writeError(rec, r, s.cfg.Logger, newError(http.StatusServiceUnavailable, CodeUnavailable, "",
				"too many connections (from this client or in total): only /healthz, /readyz and /metrics are answered now; retry shortly"))
			return
		}
	}
	if s.page != nil && isPagePath(r.URL.Path) {
		// The page's assets are public (they hold no data); what it shows
		// comes from /v1 with the user's token.
		info.route = ui.Prefix
		s.servePage(rec, r)
		return
	}
	if needsToken(r.URL.Path) {
		who, err := s.cfg.Tokens.authorize(r, roleNeeded(r))
		if err != nil {
			writeError(rec, r, s.cfg.Logger, err)
			return
		}
		info.who = who
	}
	s.router.ServeHTTP(rec, r)
}

func isPagePath(path string) bool { return path == "/ui" || strings.HasPrefix(path, ui.Prefix) }

// servePage serves the rollout page's assets: GET and HEAD only, /ui
// redirected to /ui/.
func (s *server) servePage(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		writeError(w, r, s.cfg.Logger, newError(http.StatusMethodNotAllowed, CodeMethodNotAllowed, "", r.Method+" is not allowed on "+r.URL.Path))
		return
	}
	if r.URL.Path == "/ui" {
		http.Redirect(w, r, ui.Prefix, http.StatusMovedPermanently)
		return
	}
	s.page.ServeHTTP(w, r)
}

// reservedPath: what a connection beyond the caps is served (see
// internal/connlimit): liveness, readiness and metrics, cheap answers a
// monitoring system needs most when the API is saturated.
func reservedPath(path string) bool {
	return path == "/healthz" || path == "/readyz" || path == "/metrics"
}

// needsToken: every /v1 route, and /metrics, which shows dpids,
// mastership and flow counts per bridge. /healthz and /readyz stay open
// for probes (they say ok/ready and a revision number). With a token file,
// Prometheus scrapes the API port with a read token (its
// authorization.credentials_file); a separate metrics listener is the place
// for tokenless scraping. Without a token file the API serves loopback
// only and nothing needs a token.
func needsToken(path string) bool {
	return path == "/v1" || strings.HasPrefix(path, "/v1/") || path == "/metrics"
}

// roleNeeded: anything that can change state needs "write". A dry run
// stores nothing, so a read-only NOC token may preview a change.
func roleNeeded(r *http.Request) Role {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return RoleRead
	}
	if r.Method == http.MethodPut && r.URL.Path == "/v1/config" && isDryRun(r) {
		return RoleRead
	}
	return RoleWrite
}

func isDryRun(r *http.Request) bool {
	dry, err := dryRunParam(r)
	return dry && err == nil
}

// dryRunParam is strict: a typo such as dry_run=yes must not fall through
// to a real write.
func dryRunParam(r *http.Request) (bool, error) {
	switch v := r.URL.Query().Get("dry_run"); v {
	case "", "false", "0":
		return false, nil
	case "true", "1":
		return true, nil
	default:
		return false, newError(http.StatusBadRequest, CodeBadRequest, "dry_run", fmt.Sprintf("dry_run must be true or false, got %q", v))
	}
}

type requestInfoKey struct{}

// requestInfo carries what the outer ServeHTTP needs back from the router
// (the matched route template for metrics) and what handlers need from auth.
type requestInfo struct {
	route string
	who   string
}

func infoFrom(ctx context.Context) *requestInfo {
	if info, ok := ctx.Value(requestInfoKey{}).(*requestInfo); ok {
		return info
	}
	return &requestInfo{who: anonymous}
}

// recordRoute stores the route template (not the raw path, whose names
// and dpids would explode the metric's cardinality).
func recordRoute(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if route := mux.CurrentRoute(r); route != nil {
			if tpl, err := route.GetPathTemplate(); err == nil {
				infoFrom(r.Context()).route = tpl
			}
		}
		next.ServeHTTP(w, r)
	})
}

type statusRecorder struct {
	http.ResponseWriter
	status int
	wrote  bool
}

// Unwrap lets http.ResponseController reach the connection (body read
// deadlines).
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

func (s *statusRecorder) WriteHeader(code int) {
	if !s.wrote {
		s.status, s.wrote = code, true
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	s.wrote = true
	return s.ResponseWriter.Write(b)
}

func (s *server) serve(h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			writeError(w, r, s.cfg.Logger, err)
		}
	})
}

// storeContext bounds one etcd round trip of a request.
func (s *server) storeContext(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), s.cfg.StoreTimeout)
}
