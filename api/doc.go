// Package api is op25b's REST interface (docs/rest-api.md): the NOC reads and
// writes the policy document, watches rollout status, inspects a bridge's
// flows, reads the audit log, and Prometheus scrapes /metrics.
//
// It is the "expose" end of the pipeline policy → flows → switch → status.
// Handlers depend only on the narrow interfaces declared in config.go
// (ConfigStore, DocSource, StatusSource, SwitchSource), which
// *store.Store, *store.Cache and *controller.Controller satisfy; tests run
// them against a real embedded etcd or in-memory fakes without sockets.
//
// Every replica serves the same cluster-wide view: documents, audit and
// status records come from etcd; only installed flows and drop counters are
// local to the replica whose controller is connected to the bridge (other
// replicas forward GET /v1/bridges/{dpid}/flows to the master's API).
//
// Error bodies are always {"error":{"code","message","field"}}; bad input
// is a 4xx and never changes anything, an unreachable etcd is a 503.
package api
