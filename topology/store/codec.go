package store

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"

	"github.com/op25b/op25b/topology"
)

// itemKind describes one list of the document stored one item per key
// (config/g/<gen>/<name>/<item name>).
type itemKind struct {
	name   string
	names  func(*topology.Document) []string
	encode func(*topology.Document, func(name string, v any))
	// decode appends one item decoded from data (strictly) and returns its name.
	decode func(doc *topology.Document, data []byte) (string, error)
}

// portsKey is the single key that holds the document's "ports" list.
const portsKey = "ports"

var itemKinds = []itemKind{
	{
		name: "pools",
		names: func(d *topology.Document) []string {
			out := make([]string, len(d.Pools))
			for i, p := range d.Pools {
				out[i] = p.Name
			}
			return out
		},
		encode: func(d *topology.Document, put func(string, any)) {
			for _, p := range d.Pools {
				put(p.Name, p)
			}
		},
		decode: func(d *topology.Document, data []byte) (string, error) {
			var p topology.Pool
			err := decodeStrict(data, &p)
			d.Pools = append(d.Pools, p)
			return p.Name, err
		},
	},
	{
		name: "relays",
		names: func(d *topology.Document) []string {
			out := make([]string, len(d.Relays))
			for i, r := range d.Relays {
				out[i] = r.Name
			}
			return out
		},
		encode: func(d *topology.Document, put func(string, any)) {
			for _, r := range d.Relays {
				put(r.Name, r)
			}
		},
		decode: func(d *topology.Document, data []byte) (string, error) {
			var r topology.Relay
			err := decodeStrict(data, &r)
			d.Relays = append(d.Relays, r)
			return r.Name, err
		},
	},
	{
		name: "destinations",
		names: func(d *topology.Document) []string {
			out := make([]string, len(d.Destinations))
			for i, s := range d.Destinations {
				out[i] = s.Name
			}
			return out
		},
		encode: func(d *topology.Document, put func(string, any)) {
			for _, s := range d.Destinations {
				put(s.Name, s)
			}
		},
		decode: func(d *topology.Document, data []byte) (string, error) {
			var s topology.DestinationSet
			err := decodeStrict(data, &s)
			d.Destinations = append(d.Destinations, s)
			return s.Name, err
		},
	},
	{
		name: "services",
		names: func(d *topology.Document) []string {
			out := make([]string, len(d.Services))
			for i, s := range d.Services {
				out[i] = s.Name
			}
			return out
		},
		encode: func(d *topology.Document, put func(string, any)) {
			for _, s := range d.Services {
				put(s.Name, s)
			}
		},
		decode: func(d *topology.Document, data []byte) (string, error) {
			var s topology.Service
			err := decodeStrict(data, &s)
			d.Services = append(d.Services, s)
			return s.Name, err
		},
	},
	{
		name: "bridges",
		names: func(d *topology.Document) []string {
			out := make([]string, len(d.Bridges))
			for i, b := range d.Bridges {
				out[i] = string(b.DPID)
			}
			return out
		},
		encode: func(d *topology.Document, put func(string, any)) {
			for _, b := range d.Bridges {
				put(string(b.DPID), b)
			}
		},
		decode: func(d *topology.Document, data []byte) (string, error) {
			var b topology.Bridge
			err := decodeStrict(data, &b)
			d.Bridges = append(d.Bridges, b)
			return string(b.DPID), err
		},
	},
}

func kindByName(name string) (itemKind, bool) {
	for _, k := range itemKinds {
		if k.name == name {
			return k, true
		}
	}
	return itemKind{}, false
}

// encodedItem is one document item as stored: its key relative to the
// generation prefix ("pools/tokyo-dyn", "ports") and its JSON value.
type encodedItem struct {
	key   string
	value []byte
}

// encodeDocument turns a validated document into its per-item keys, sorted
// by key so that batches and summaries are deterministic.
func encodeDocument(doc *topology.Document) ([]encodedItem, error) {
	var items []encodedItem
	var encErr error
	if doc.Ports != nil {
		data, err := json.Marshal(doc.Ports)
		if err != nil {
			return nil, fmt.Errorf("encode ports: %w", err)
		}
		items = append(items, encodedItem{key: portsKey, value: data})
	}
	for _, k := range itemKinds {
		k.encode(doc, func(name string, v any) {
			data, err := json.Marshal(v)
			if err != nil && encErr == nil {
				encErr = fmt.Errorf("encode %s/%s: %w", k.name, name, err)
			}
			items = append(items, encodedItem{key: k.name + "/" + name, value: data})
		})
	}
	if encErr != nil {
		return nil, encErr
	}
	sort.Slice(items, func(i, j int) bool { return items[i].key < items[j].key })
	return items, nil
}

// newEmptyDocument is what Load returns when nothing was ever stored: empty
// (not null) lists, so the API shows "pools": [] rather than null.
func newEmptyDocument() *topology.Document {
	return &topology.Document{
		Pools:        []topology.Pool{},
		Relays:       []topology.Relay{},
		Destinations: []topology.DestinationSet{},
		Services:     []topology.Service{},
		Bridges:      []topology.Bridge{},
	}
}

// documentDecoder rebuilds a Document from the keys of one generation, in
// key order. It checks that every key is one the store writes and that the
// name inside each value matches its key, so a hand-written value cannot
// smuggle in a second item under another name.
type documentDecoder struct {
	doc *topology.Document
}

func newDocumentDecoder() *documentDecoder {
	return &documentDecoder{doc: newEmptyDocument()}
}

func (d *documentDecoder) add(relKey string, value []byte) error {
	if relKey == portsKey {
		var ports []int
		if err := decodeStrict(value, &ports); err != nil {
			return fmt.Errorf("%s: %w", relKey, err)
		}
		if ports == nil {
			ports = []int{}
		}
		d.doc.Ports = ports
		return nil
	}
	kindName, itemName, ok := strings.Cut(relKey, "/")
	if !ok {
		return fmt.Errorf("unexpected key %q", relKey)
	}
	k, ok := kindByName(kindName)
	if !ok {
		return fmt.Errorf("unexpected key %q", relKey)
	}
	got, err := k.decode(d.doc, value)
	if err != nil {
		return fmt.Errorf("%s: %w", relKey, err)
	}
	if kindName == topology.ItemBridges {
		// Stored by an older op25b under the dpid as written (either
		// case); decoding made the value's dpid canonical.
		if dpid, err := topology.ParseDPID(itemName); err == nil {
			itemName = string(dpid)
		}
	}
	if got != itemName {
		return fmt.Errorf("%s: value names %q, not %q", relKey, got, itemName)
	}
	return nil
}

// decodeStrict rejects unknown fields and trailing data: a stored value is
// either exactly what the store wrote or it is reported as invalid.
func decodeStrict(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("trailing data after JSON value")
	}
	return nil
}

func sortStrings(l []string) { sort.Strings(l) }

// sortDocument sorts every list by the name its items are keyed by, the
// order in which a read from etcd returns them.
func sortDocument(d *topology.Document) {
	slices.SortFunc(d.Pools, func(a, b topology.Pool) int { return strings.Compare(a.Name, b.Name) })
	slices.SortFunc(d.Relays, func(a, b topology.Relay) int { return strings.Compare(a.Name, b.Name) })
	slices.SortFunc(d.Destinations, func(a, b topology.DestinationSet) int { return strings.Compare(a.Name, b.Name) })
	slices.SortFunc(d.Services, func(a, b topology.Service) int { return strings.Compare(a.Name, b.Name) })
	slices.SortFunc(d.Bridges, func(a, b topology.Bridge) int { return strings.Compare(string(a.DPID), string(b.DPID)) })
}
