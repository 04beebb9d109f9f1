package store

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/op25b/op25b/topology"
)

// FuzzDecodeStored feeds arbitrary keys and values, as an operator with
// etcdctl could write them, to the decoder of a generation: it must never
// panic, and whatever it accepts must round-trip through the encoder.
func FuzzDecodeStored(f *testing.F) {
	f.Add("pools/tokyo-dyn", []byte(`{"name":"tokyo-dyn","prefix":"10.1.0.0/16","kind":"dynamic","service":"ftth"}`))
	f.Add("services/ftth", []byte(`{"name":"ftth","phases":[{"from":"2006-11-01T00:00:00+09:00","block":"all","relays":true}]}`))
	f.Add("services/x", []byte(`{"name":"x","phases":[{"block":["a","b"],"pops":["osaka-1"]}]}`))
	f.Add("destinations/m", []byte(`{"name":"m","prefixes":["198.51.100.0/24"]}`))
	f.Add("bridges/0000000000000001", []byte(`{"dpid":"0000000000000001","name":"b","pop":"p"}`))
	f.Add("bridges/00000000000000AB", []byte(`{"dpid":"00000000000000AB","name":"b","pop":"p"}`))
	f.Add("relays/msa", []byte(`{"name":"msa","prefix":"192.0.2.25/32"}`))
	f.Add("ports", []byte(`[25,587]`))
	f.Add("ports", []byte(`null`))
	f.Add("pools/x", []byte(`{garbage`))
	f.Add("pools/x", []byte(`{"name":"x"} {}`))
	f.Add("nope", []byte(`{}`))
	f.Fuzz(func(t *testing.T, key string, value []byte) {
		dec := newDocumentDecoder()
		if err := dec.add(key, value); err != nil {
			return
		}
		_ = topology.Validate(dec.doc) // must not panic either
		items, err := encodeDocument(dec.doc)
		if err != nil {
			t.Fatalf("accepted %q=%q but cannot encode it: %v", key, value, err)
		}
		// A bridge stored under an upper-case dpid (by an older op25b)
		// comes back under its canonical key.
		if len(items) != 1 || items[0].key != canonicalItemKey(key) {
			t.Fatalf("accepted %q=%q, re-encodes as %+v", key, value, items)
		}
		// The re-encoded value decodes to the same item.
		again := newDocumentDecoder()
		if err := again.add(items[0].key, items[0].value); err != nil {
			t.Fatalf("re-encoded %q=%q does not decode: %v", items[0].key, items[0].value, err)
		}
		a, _ := json.Marshal(dec.doc)
		b, _ := json.Marshal(again.doc)
		if string(a) != string(b) {
			t.Fatalf("round trip differs: %s vs %s", a, b)
		}
	})
}

func canonicalItemKey(relKey string) string {
	if k, key, err := splitItemKey(relKey); err == nil {
		return k.Name + "/" + key
	}
	return relKey
}

// TestDecodeStoredKeys: keys and values a generation may hold, as the store
// or an operator with etcdctl wrote them.
func TestDecodeStoredKeys(t *testing.T) {
	for _, tc := range []struct {
		key, value string
		err        string // part of the error, "" = accepted
	}{
		{"bridges/00000000000000ab", `{"dpid":"00000000000000ab","name":"b","pop":"p"}`, ""},
		// Stored by an older op25b, which kept the dpid as written.
		{"bridges/00000000000000AB", `{"dpid":"00000000000000AB","name":"b","pop":"p"}`, ""},
		{"bridges/00000000000000AB", `{"dpid":"00000000000000ab","name":"b","pop":"p"}`, ""},
		{"bridges/00000000000000ac", `{"dpid":"00000000000000ab","name":"b","pop":"p"}`, `value names "00000000000000ab"`},
		{"pools/a", `{"name":"b","prefix":"10.0.0.0/8","kind":"static"}`, `value names "b", not "a"`},
		{"pools/a", `{"name":"a","prefix":"10.0.0.0/8","kind":"static","Kind":"static"}`, "Kind"},
		{"pools/a", `{"name":"a","prefix":"10.0.0.0/8","kind":"static"} {}`, "after"},
		{"widgets/a", `{}`, "unexpected key"},
		{"pools", `{}`, "unexpected key"},
	} {
		dec := newDocumentDecoder()
		err := dec.add(tc.key, []byte(tc.value))
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("%s=%s: %v", tc.key, tc.value, err)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%s=%s: %v, want an error containing %q", tc.key, tc.value, err, tc.err)
		case tc.err == "" && (len(dec.doc.Bridges) != 1 || dec.doc.Bridges[0].DPID != "00000000000000ab"):
			t.Errorf("%s=%s: bridges %+v", tc.key, tc.value, dec.doc.Bridges)
		}
	}
}

func TestDiffItems(t *testing.T) {
	old := map[string][]byte{"ports": []byte("[25]"), "pools/a": []byte("1"), "pools/b": []byte("2"), "relays/r": []byte("3")}
	items := []encodedItem{{"pools/a", []byte("1")}, {"pools/b", []byte("22")}, {"pools/c", []byte("4")}, {"ports", []byte("[25]")}}
	puts, dels, sum := diffItems(old, items)
	if len(puts) != 2 || puts[0].key != "pools/b" || puts[1].key != "pools/c" {
		t.Errorf("puts = %+v", puts)
	}
	if len(dels) != 1 || dels[0] != "relays/r" {
		t.Errorf("dels = %v", dels)
	}
	want := `{"added":["pools/c"],"changed":["pools/b"],"removed":["relays/r"]}`
	if got, _ := json.Marshal(sum); string(got) != want {
		t.Errorf("summary = %s, want %s", got, want)
	}
	// Unknown previous state: everything is added.
	_, _, sum = diffItems(nil, items)
	if len(sum.Added) != 4 || sum.Changed != nil || sum.Removed != nil {
		t.Errorf("summary without old state = %+v", sum)
	}
	var many []encodedItem
	for i := 0; i < 250; i++ {
		many = append(many, encodedItem{key: "pools/" + string(rune('a'+i%26)) + string(rune('a'+i/26)), value: []byte("x")})
	}
	_, _, sum = diffItems(nil, many)
	if len(sum.Added) != summaryLimit+1 || sum.Added[summaryLimit] != "… and 150 more" {
		t.Errorf("capped summary ends with %q (len %d)", sum.Added[len(sum.Added)-1], len(sum.Added))
	}
}
