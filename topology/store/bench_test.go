package store_test

import (
	"context"
	"testing"

	"github.com/op25b/op25b/topology"
	"github.com/op25b/op25b/topology/store"
)

// BenchmarkReplace100k replaces a 100k-pool document with a different
// 100k-pool document (every item changes: a new generation, ~800
// transactions on default etcd limits) on an embedded etcd.
func BenchmarkReplace100k(b *testing.B) {
	s, _ := newStore(b)
	ctx := context.Background()
	const n = topology.MaxPools
	docs := []*topology.Document{bigDoc(n, "a"), bigDoc(n, "b")}
	if _, err := s.Replace(ctx, docs[1], store.WriteOptions{}); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := s.Replace(ctx, docs[i%2], store.WriteOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLoad100k is one full consistent read of a 100k-pool document
// (what a replica does at start and after a watch loss): a fresh Store
// each time, so nothing remembered is reused.
func BenchmarkLoad100k(b *testing.B) {
	s, _ := newStore(b)
	ctx := context.Background()
	if _, err := s.Replace(ctx, bigDoc(topology.MaxPools, "a"), store.WriteOptions{}); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		doc, _, err := store.New(s.Client(), "", nil).Load(ctx)
		if err != nil || len(doc.Pools) != topology.MaxPools {
			b.Fatalf("Load: %v", err)
		}
	}
}

// BenchmarkLoadUnchanged100k is a Load by the Store that wrote the
// document, with nothing changed since: one index-only transaction and a
// copy of the remembered document.
func BenchmarkLoadUnchanged100k(b *testing.B) {
	s, _ := newStore(b)
	ctx := context.Background()
	if _, err := s.Replace(ctx, bigDoc(topology.MaxPools, "a"), store.WriteOptions{}); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		doc, _, err := s.Load(ctx)
		if err != nil || len(doc.Pools) != topology.MaxPools {
			b.Fatalf("Load: %v", err)
		}
	}
}

// BenchmarkUpdateOnePool100k changes one pool of a 100k-pool document: one
// in-place transaction, based on the remembered state (no full read).
func BenchmarkUpdateOnePool100k(b *testing.B) {
	s, _ := newStore(b)
	ctx := context.Background()
	if _, err := s.Replace(ctx, bigDoc(topology.MaxPools, "a"), store.WriteOptions{}); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		_, err := s.Update(ctx, store.WriteOptions{}, func(d *topology.Document) error {
			if d.Pools[0].Kind == topology.KindStatic {
				d.Pools[0].Kind, d.Pools[0].Service = topology.KindDynamic, "ftth"
			} else {
				d.Pools[0].Kind, d.Pools[0].Service = topology.KindStatic, ""
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}
