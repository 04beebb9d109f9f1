package store

import (
	"fmt"
	"slices"
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
		kindName, name, ok := strings.Cut(rel, "/")
		if !ok {
			return nil, fmt.Errorf("unexpected key %q", rel)
		}
		var err error
		switch kindName {
		case topology.ItemPools:
			out.Pools, err = applyItem(out.Pools, name, del, ev.Kv.Value, func(p topology.Pool) string { return p.Name })
		case topology.ItemRelays:
			out.Relays, err = applyItem(out.Relays, name, del, ev.Kv.Value, func(r topology.Relay) string { return r.Name })
		case topology.ItemDestinations:
			out.Destinations, err = applyItem(out.Destinations, name, del, ev.Kv.Value, func(d topology.DestinationSet) string { return d.Name })
		case topology.ItemServices:
			out.Services, err = applyItem(out.Services, name, del, ev.Kv.Value, func(s topology.Service) string { return s.Name })
		case topology.ItemBridges:
			out.Bridges, err = applyItem(out.Bridges, name, del, ev.Kv.Value, func(b topology.Bridge) string { return string(b.DPID) })
		default:
			err = fmt.Errorf("unexpected key %q", rel)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", rel, err)
		}
	}
	return out, nil
}

// applyItem puts (decoded strictly from value) or deletes the item called
// name in a list sorted by name.
func applyItem[T any](list []T, name string, del bool, value []byte, nameOf func(T) string) ([]T, error) {
	i, found := slices.BinarySearchFunc(list, name, func(item T, n string) int { return strings.Compare(nameOf(item), n) })
	if del {
		if !found {
			return nil, fmt.Errorf("delete of an item that is not there")
		}
		return slices.Delete(list, i, i+1), nil
	}
	var item T
	if err := decodeStrict(value, &item); err != nil {
		return nil, err
	}
	if got := nameOf(item); got != name {
		return nil, fmt.Errorf("value names %q, not %q", got, name)
	}
	if found {
		list[i] = item
		return list, nil
	}
	return slices.Insert(list, i, item), nil
}
