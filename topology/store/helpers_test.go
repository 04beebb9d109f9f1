package store_test

import (
	"encoding/json"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"
)

func mustJSON(t testing.TB, v any) string {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func equalJSON(t testing.TB, a, b any) bool {
	return mustJSON(t, a) == mustJSON(t, b)
}

func clientPrefixCount() []clientv3.OpOption {
	return []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithCountOnly()}
}
