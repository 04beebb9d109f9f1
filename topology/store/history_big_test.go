package store_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/op25b/op25b/topology"
	"github.com/op25b/op25b/topology/store"
)

// shiftedDoc keeps bigDoc's pool names and changes every prefix and half
// the kinds: a replace where every item changes value.
func shiftedDoc(n int, tag string) *topology.Document {
	d := bigDoc(n, tag)
	for i := range d.Pools {
		d.Pools[i].Prefix = fmt.Sprintf("172.%d.%d.%d/32", 16+i>>16, (i>>8)&255, i&255)
		if i%2 == 0 {
			d.Pools[i].Kind, d.Pools[i].Service = topology.KindStatic, ""
		}
	}
	return d
}

// TestHistory100k: on an etcd at its default limits (1.5 MiB per request,
// 128 operations per transaction: a bigger request fails), full replaces
// of a 100k-pool document keep their history, a past revision comes back
// exactly, and the history costs a fraction of the document. The figures
// are logged (go test -v -run TestHistory100k ./topology/store/).
func TestHistory100k(t *testing.T) {
	if testing.Short() {
		t.Skip("100k-pool history skipped in -short mode")
	}
	s, _ := newStore(t)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	const n = topology.MaxPools - 3
	docA := bigDoc(n, "a")
	raw, _ := json.Marshal(docA)
	var revA int64
	first, _ := historyBytesOf(t, s, func() (err error) {
		revA, err = s.Replace(ctx, docA, store.WriteOptions{Who: "bulk"})
		return err
	})
	docA, _, _ = s.Load(ctx) // as stored: lists sorted

	var revOne int64
	onePool, _ := historyBytesOf(t, s, func() (err error) {
		revOne, err = s.Update(ctx, store.WriteOptions{Who: "noc"}, func(d *topology.Document) error {
			d.Pools[42].Prefix = "192.168.42.0/24"
			return nil
		})
		return err
	})
	docOne, _, _ := s.Load(ctx)

	shifted := shiftedDoc(n, "a")
	var revShift int64
	allChanged, _ := historyBytesOf(t, s, func() (err error) {
		revShift, err = s.Replace(ctx, shifted, store.WriteOptions{Who: "bulk"})
		return err
	})
	renamed, _ := historyBytesOf(t, s, func() (err error) {
		_, err = s.Replace(ctx, bigDoc(n, "b"), store.WriteOptions{Who: "bulk"})
		return err
	})

	t.Logf("history bytes per revision (document %d pools, %d bytes of JSON):", n, len(raw))
	t.Logf("  first store of the document (every pool added):  %9d bytes", first)
	t.Logf("  one-pool change:                                 %9d bytes", onePool)
	t.Logf("  full replace, every pool's value changed:        %9d bytes (%.1f%% of the document)", allChanged, 100*float64(allChanged)/float64(len(raw)))
	t.Logf("  full replace, every pool renamed (200k changes): %9d bytes (%.1f%% of the document)", renamed, 100*float64(renamed)/float64(len(raw)))
	if allChanged > int64(len(raw))/2 || renamed > int64(len(raw))/2 {
		t.Errorf("a full replace costs more than half an uncompressed document")
	}
	if onePool > 4096 {
		t.Errorf("a one-pool change costs %d bytes of history", onePool)
	}

	// Three full replaces back: exactly what was stored.
	for _, tc := range []struct {
		rev  int64
		want *topology.Document
	}{{revOne, docOne}, {revA, docA}} {
		got, gotRev, err := store.New(s.Client(), store.DefaultPrefix, nil).LoadAt(ctx, tc.rev)
		if err != nil {
			t.Fatalf("LoadAt(%d): %v", tc.rev, err)
		}
		if gotRev != tc.rev || !equalJSON(t, got, tc.want) {
			t.Fatalf("LoadAt(%d): revision %d, document differs", tc.rev, gotRev)
		}
	}
	_ = revShift
}
