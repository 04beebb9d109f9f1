package api

import (
	_ "embed"
	"fmt"
	"net/http"
)

//go:embed openapi.yaml
var openAPISpec []byte

// OpenAPISpec returns the OpenAPI 3 description served at /v1/openapi.yaml.
func OpenAPISpec() []byte { return append([]byte(nil), openAPISpec...) }

func (s *server) openAPI(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Content-Type", "application/yaml")
	_, err := w.Write(openAPISpec)
	return err
}

// healthz is liveness: the process serves HTTP. It deliberately ignores
// etcd, so an etcd outage does not get healthy replicas restarted (they
// keep enforcing the last desired state).
func (s *server) healthz(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	return nil
}

// readyz is readiness: etcd reachable and the desired state loaded, and
// etcd not out of space (its NOSPACE alarm refuses every write).
func (s *server) readyz(w http.ResponseWriter, r *http.Request) error {
	if e := noSpaceError(s.cfg.Etcd); e != nil {
		return e
	}
	if s.cfg.Cache != nil {
		if err := s.cfg.Cache.Healthy(); err != nil {
			return newError(http.StatusServiceUnavailable, CodeUnavailable, "", "not ready: "+err.Error())
		}
		writeJSON(w, http.StatusOK, map[string]any{"status": "ready", "revision": s.cfg.Cache.Current().Revision})
		return nil
	}
	ctx, cancel := s.storeContext(r)
	defer cancel()
	_, rev, err := s.cfg.Store.Load(ctx)
	if err != nil {
		return newError(http.StatusServiceUnavailable, CodeUnavailable, "", fmt.Sprintf("not ready: %v", err))
	}
	writeJSON(w, http.StatusOK, map[string]any{"status": "ready", "revision": rev})
	return nil
}
