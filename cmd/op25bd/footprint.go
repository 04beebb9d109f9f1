package main

import (
	"log/slog"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/op25b/op25b/topology/store"
)

// etcdKeeper watches etcd's size and alarms for /readyz, /v1/status and
// the metrics. For the embedded etcd, which op25bd owns, it also compacts
// and defragments it (store.Keeper); an external cluster is left to its
// operators (README "etcd footprint"), whose NOSPACE alarm is reported all
// the same.
func etcdKeeper(cli *clientv3.Client, o options, logger *slog.Logger) *store.Keeper {
	embedded := len(o.EtcdEndpoints) == 0
	interval := 15 * time.Second
	if embedded {
		interval = 5 * time.Second
	}
	return store.NewKeeper(cli, store.KeeperConfig{Interval: interval, Maintain: embedded, Logger: logger})
}
