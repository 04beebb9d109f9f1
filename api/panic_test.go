package api

import (
	"context"
	"net/http"
	"testing"

	"github.com/op25b/op25b/topology"
)

// panickyStore is a ConfigStore with a bug in Load.
type panickyStore struct{ *memStore }

func (panickyStore) Load(context.Context) (*topology.Document, int64, error) {
	panic("injected bug")
}

// TestHandlerPanicIs500: a bug in a handler answers 500 with the usual error
// body (not a dropped connection) and the server goes on answering.
func TestHandlerPanicIs500(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Store = panickyStore{newMemStore()} })
	e.expectError(e.do(http.MethodGet, "/v1/config", ""), http.StatusInternalServerError, CodeInternal, "")
	e.expect(e.do(http.MethodGet, "/healthz", ""), http.StatusOK, nil)
}
