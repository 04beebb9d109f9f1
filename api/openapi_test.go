package api

import (
	"net/http"
	"sort"
	"strings"
	"testing"

	"github.com/gorilla/mux"
	"gopkg.in/yaml.v3"
)

// The OpenAPI description and the router must describe the same API:
// every registered route and method is documented, and nothing documented
// is missing from the router.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	var spec struct {
		Paths map[string]map[string]any `yaml:"paths"`
	}
	if err := yaml.Unmarshal(OpenAPISpec(), &spec); err != nil {
		t.Fatalf("openapi.yaml: %v", err)
	}
	documented := map[string]bool{}
	for path, item := range spec.Paths {
		for method := range item {
			switch method {
			case "get", "put", "post", "delete", "patch", "head", "options":
				documented[strings.ToUpper(method)+" "+path] = true
			}
		}
	}
	e := newEnv(t, nil)
	registered := map[string]bool{}
	err := e.handler.(*server).router.Walk(func(route *mux.Route, _ *mux.Router, _ []*mux.Route) error {
		path, err := route.GetPathTemplate()
		if err != nil {
			return err
		}
		methods, err := route.GetMethods()
		if err != nil {
			return err
		}
		for _, m := range methods {
			registered[m+" "+path] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(registered) < 20 {
		t.Fatalf("only %d routes registered", len(registered))
	}
	var missing, extra []string
	for r := range registered {
		if !documented[r] {
			missing = append(missing, r)
		}
	}
	for d := range documented {
		if !registered[d] {
			extra = append(extra, d)
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	if len(missing)+len(extra) > 0 {
		t.Fatalf("routes not in openapi.yaml: %v\nopenapi.yaml paths not routed: %v", missing, extra)
	}
	// And it is served.
	rec := e.do(http.MethodGet, "/v1/openapi.yaml", "")
	e.expect(rec, http.StatusOK, nil)
	if !strings.HasPrefix(rec.Body.String(), "openapi: 3") {
		t.Fatalf("served spec: %.60s", rec.Body.String())
	}
}
