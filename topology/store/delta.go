package store

import (
	"fmt"
	"strings"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/op25b/op25b/topology"
)

// applyDelta returns doc with the item events of one in-place commit
// applied, without re-reading the whole document: a one-pool change to a
// 100k-pool document then costs a watch event, not a 10 MiB read. Lists
// stay sorted by name, exactly as Load returns them. Any event it does not
// understand is an error; the caller then re-reads everything.
func applyDelta(doc *topology.Document, genPrefix string, events []*clientv3.Event) (*topology.Document, error) {
	out := doc.Clone()
	for _, ev := range events {
		rel, ok := strings.CutPrefix(string(ev.Kv.Key), genPrefix)
		if !ok {
			return nil, fmt.Errorf("event outside generation: %s", ev.Kv.Key)
		}
		del := ev.Type == mvccpb.DELETE
		if rel == portsKey {
			if del {
				out.Ports = nil
				continue
			}
			dec := &documentDecoder{doc: &topology.Document{}}
			if err := dec.add(rel, ev.Kv.Value); err != nil {
				return nil, err
			}
			out.Ports = dec.doc.Ports
			continue
		}
		k, key, err := splitItemKey(rel)
		if err != nil {
			return nil, err
		}
		if err := applyItem(out, k, key, del, ev.Kv.Value); err != nil {
			return nil, fmt.Errorf("%s: %w", rel, err)
		}
	}
	return out, nil
}

// applyItem puts (decoded strictly from value) or deletes the item with
// this key in a list sorted by key.
func applyItem(doc *topology.Document, k *topology.ItemKind, key string, del bool, value []byte) error {
	i, found := k.Search(doc, key)
	if del {
		if !found {
			return fmt.Errorf("delete of an item that is not there")
		}
		k.Delete(doc, i)
		return nil
	}
	item, err := decodeItem(k, key, value)
	if err != nil {
		return err
	}
	if found {
		k.Set(doc, i, item)
	} else {
		k.Insert(doc, i, item)
	}
	return nil
}
