package store

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/op25b/op25b/topology"
)

// portsKey is the single key that holds the document's "ports" list; every
// other key is <kind>/<item key> for a kind of topology.ItemKinds.
const portsKey = "ports"

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
	if doc.Ports != nil {
		data, err := json.Marshal(doc.Ports)
		if err != nil {
			return nil, fmt.Errorf("encode ports: %w", err)
		}
		items = append(items, encodedItem{key: portsKey, value: data})
	}
	for _, k := range topology.ItemKinds {
		for i, n := 0, k.Len(doc); i < n; i++ {
			key := k.Name + "/" + k.Key(doc, i)
			data, err := json.Marshal(k.Item(doc, i))
			if err != nil {
				return nil, fmt.Errorf("encode %s: %w", key, err)
			}
			items = append(items, encodedItem{key: key, value: data})
		}
	}
	sort.Slice(items, func(i, j int) bool { return items[i].key < items[j].key })
	return items, nil
}

// newEmptyDocument is what Load returns when nothing was ever stored: empty
// (not null) lists, so the API shows "pools": [] rather than null.
func newEmptyDocument() *topology.Document {
	d := &topology.Document{}
	makeNonNil(d)
	return d
}

func makeNonNil(d *topology.Document) {
	for _, k := range topology.ItemKinds {
		k.MakeNonNil(d)
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
	k, key, err := splitItemKey(relKey)
	if err != nil {
		return err
	}
	item, err := decodeItem(k, key, value)
	if err != nil {
		return fmt.Errorf("%s: %w", relKey, err)
	}
	k.Insert(d.doc, k.Len(d.doc), item)
	return nil
}

// splitItemKey splits "pools/tokyo-dyn" into its kind and the item's key,
// in canonical form: an older op25b stored a bridge under its dpid as
// written, in either case.
func splitItemKey(relKey string) (*topology.ItemKind, string, error) {
	kindName, key, ok := strings.Cut(relKey, "/")
	k, known := topology.ItemKindNamed(kindName)
	if !ok || !known {
		return nil, "", fmt.Errorf("unexpected key %q", relKey)
	}
	return k, k.CanonicalKey(key), nil
}

// decodeItem decodes a stored item as strictly as the API decodes a body
// (topology's single-pass decoder) and checks that it is the item its key
// names.
func decodeItem(k *topology.ItemKind, key string, value []byte) (any, error) {
	item, err := k.Decode(value)
	if err != nil {
		return nil, err
	}
	if got := k.ItemKey(item); got != key {
		return nil, fmt.Errorf("value names %q, not %q", got, key)
	}
	return item, nil
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

// sortDocument sorts every list by the key its items are stored under, the
// order in which a read from etcd returns them.
func sortDocument(d *topology.Document) {
	for _, k := range topology.ItemKinds {
		k.SortByKey(d)
	}
}
