package topology

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func TestCloneIsDeep(t *testing.T) {
	doc := validDoc()
	c := doc.Clone()
	if !reflect.DeepEqual(doc, c) {
		t.Fatal("clone differs")
	}
	c.Ports[0] = 587
	c.Pools[0].Prefix = "10.9.0.0/16"
	c.Destinations[0].Prefixes[0] = "203.0.113.0/24"
	c.Services[0].Phases[0].Block.Sets[0] = "x"
	c.Services[0].Phases[1].Pops[0] = "x"
	*c.Services[0].Phases[0].Relays = false
	c.Bridges[0].Pop = "x"
	c.Exemptions[0].Until = "x"
	c.Quarantines[0].Ticket = "x"
	if !reflect.DeepEqual(doc, validDoc()) {
		t.Errorf("changing the clone changed the original: %+v", doc)
	}
	if (*Document)(nil).Clone() != nil {
		t.Error("nil clone")
	}
	empty := &Document{Pools: []Pool{}}
	if c := empty.Clone(); c.Pools == nil || c.Relays != nil {
		t.Error("clone must keep nil and empty slices apart")
	}
}

func TestReferences(t *testing.T) {
	doc := validDoc()
	doc.Pools = append(doc.Pools, Pool{Name: "osaka-dyn", Prefix: "10.2.0.0/16", Kind: KindDynamic, Service: "ftth"})
	doc.Services[1].Phases[0].Block = Block{Sets: []string{"mobile-carriers"}}
	for _, tc := range []struct {
		kind, name string
		want       []string
	}{
		{ItemServices, "ftth", []string{"pools[0].service", "pools[3].service"}},
		{ItemServices, "v6plus", []string{"pools[2].service"}},
		{ItemServices, "nothing", nil},
		{ItemDestinations, "mobile-carriers", []string{"services[0].phases[0].block[0]", "services[1].phases[0].block[0]"}},
		{ItemPools, "tokyo-dyn", nil},
		{ItemRelays, "msa", nil},
		{ItemBridges, "0000000000000001", nil},
		{ItemExemptions, "ticket-4711", nil},
		{ItemQuarantines, "bot-10-1-9-9", nil},
	} {
		k, _ := ItemKindNamed(tc.kind)
		if got := k.References(doc, tc.name); !slices.Equal(got, tc.want) {
			t.Errorf("References(%s, %s) = %q, want %q", tc.kind, tc.name, got, tc.want)
		}
	}
}

// TestItemKindsCoverDocument: every list of Document is one row of
// ItemKinds, named as its JSON key, in document order; a kind added to
// Document without its row (or the reverse) fails here.
func TestItemKindsCoverDocument(t *testing.T) {
	var lists []string
	dt := reflect.TypeFor[Document]()
	for i := 0; i < dt.NumField(); i++ {
		f := dt.Field(i)
		if f.Type.Kind() == reflect.Slice && f.Type.Elem().Kind() == reflect.Struct {
			lists = append(lists, strings.Split(f.Tag.Get("json"), ",")[0])
		}
	}
	var names []string
	for _, k := range ItemKinds {
		names = append(names, k.Name)
		if got, ok := ItemKindNamed(k.Name); !ok || got != k {
			t.Errorf("ItemKindNamed(%q) = %v, %v", k.Name, got, ok)
		}
		doc := validDoc()
		if k.Len(doc) == 0 {
			t.Errorf("%s: validDoc has no item of this kind", k.Name)
			continue
		}
		// Each item's JSON key field holds its key.
		var fields map[string]any
		data, _ := json.Marshal(k.Item(doc, 0))
		_ = json.Unmarshal(data, &fields)
		if fields[k.KeyField] != k.Key(doc, 0) {
			t.Errorf("%s: field %q = %v, key %q", k.Name, k.KeyField, fields[k.KeyField], k.Key(doc, 0))
		}
	}
	if !slices.Equal(lists, names) {
		t.Errorf("Document lists %v, ItemKinds %v", lists, names)
	}
	if _, ok := ItemKindNamed("widgets"); ok {
		t.Error("ItemKindNamed(widgets) found a kind")
	}
}

// TestItemKindEdits: one item at a time, per kind, through the table the
// store and the API use: decode, key, put (create, replace), search,
// delete, sort, references; the document stays valid and the original is
// never touched.
func TestItemKindEdits(t *testing.T) {
	bodies := map[string][]string{ // a new item, then a replacement of it
		ItemPools:        {`{"name": "osaka-dyn", "prefix": "10.9.0.0/16", "kind": "dynamic", "service": "ftth"}`, `{"name": "osaka-dyn", "prefix": "10.9.0.0/17", "kind": "static"}`},
		ItemRelays:       {`{"name": "msa2", "prefix": "192.0.2.26/32"}`, `{"name": "msa2", "prefix": "192.0.2.27/32"}`},
		ItemDestinations: {`{"name": "carrier-b", "prefixes": ["203.0.113.0/24"]}`, `{"name": "carrier-b", "prefixes": ["203.0.113.0/25"]}`},
		ItemServices:     {`{"name": "business", "phases": [{"block": "all"}]}`, `{"name": "business", "phases": [{"block": []}]}`},
		ItemBridges:      {`{"dpid": "00000000000000B2", "name": "osaka-1-sub-a", "pop": "osaka-1"}`, `{"dpid": "00000000000000b2", "name": "osaka-1-sub-a", "pop": ""}`},
		ItemExemptions: {`{"name": "ticket-4712", "prefix": "10.1.3.8/32", "until": "2026-12-01T00:00:00Z", "reason": "mail server", "ticket": "4712"}`,
			`{"name": "ticket-4712", "prefix": "10.1.3.8/32", "until": "2026-12-15T00:00:00Z", "reason": "mail server, extended", "ticket": "4712"}`},
		ItemQuarantines: {`{"name": "bot-2001-db8-1--9", "prefix": "2001:db8:1::9/128", "until": "2026-11-30T12:00:00+09:00", "reason": "abuse report", "ticket": "AB-89"}`,
			`{"name": "bot-2001-db8-1--9", "prefix": "2001:db8:1::9/128", "until": "2026-12-30T12:00:00+09:00", "reason": "still infected", "ticket": "AB-89"}`},
	}
	for _, k := range ItemKinds {
		t.Run(k.Name, func(t *testing.T) {
			orig := validDoc()
			doc := orig.Clone()
			n := k.Len(doc)
			var key string
			for round, body := range bodies[k.Name] {
				item, err := k.Decode([]byte(body))
				if err != nil {
					t.Fatalf("Decode(%s): %v", body, err)
				}
				key = k.ItemKey(item)
				if created := k.Put(doc, item); created != (round == 0) {
					t.Fatalf("round %d: created = %v", round, created)
				}
				if k.Len(doc) != n+1 {
					t.Fatalf("round %d: %d items, want %d", round, k.Len(doc), n+1)
				}
				if err := Validate(doc); err != nil {
					t.Fatalf("round %d: %v", round, err)
				}
			}
			i := k.Index(doc, strings.ToUpper(key))
			if k.Name == ItemBridges && i != n || k.Name != ItemBridges && i != -1 {
				t.Errorf("Index(upper-case key) = %d (only a dpid is case-blind)", i)
			}
			if i := k.Index(doc, key); i != n {
				t.Fatalf("Index(%q) = %d, want %d", key, i, n)
			}
			if k.Path(n) != fmt.Sprintf("%s[%d]", k.Name, n) {
				t.Errorf("Path = %q", k.Path(n))
			}
			k.SortByKey(doc)
			for j := 1; j < k.Len(doc); j++ {
				if k.Key(doc, j-1) > k.Key(doc, j) {
					t.Fatalf("not sorted: %q before %q", k.Key(doc, j-1), k.Key(doc, j))
				}
			}
			j, found := k.Search(doc, key)
			if !found || k.Key(doc, j) != key {
				t.Fatalf("Search(%q) = %d, %v", key, j, found)
			}
			if _, found := k.Search(doc, "zzz-not-there"); found {
				t.Error("Search found a missing key")
			}
			k.Delete(doc, j)
			if k.Len(doc) != n || k.Index(doc, key) != -1 {
				t.Fatalf("after Delete: %d items, Index %d", k.Len(doc), k.Index(doc, key))
			}
			if !reflect.DeepEqual(orig, validDoc()) {
				t.Error("editing the clone changed the original")
			}
		})
	}
}

func TestItemKindKeys(t *testing.T) {
	bridges, _ := ItemKindNamed(ItemBridges)
	pools, _ := ItemKindNamed(ItemPools)
	// A body without its key takes the URL's, in canonical form.
	item, err := bridges.Decode([]byte(`{"name": "b", "pop": "p"}`))
	if err != nil {
		t.Fatal(err)
	}
	if got := bridges.ItemKey(bridges.WithKey(item, "00000000000000AB")); got != "00000000000000ab" {
		t.Errorf("WithKey(upper-case dpid) = %q", got)
	}
	// What is not a dpid stays as it is, for Validate to report.
	if got := bridges.CanonicalKey("not-a-dpid"); got != "not-a-dpid" {
		t.Errorf("CanonicalKey(not-a-dpid) = %q", got)
	}
	if got := pools.CanonicalKey("Tokyo-Dyn"); got != "Tokyo-Dyn" {
		t.Errorf("CanonicalKey(name) = %q", got)
	}
	// Decode is ParseJSON's strict decoder, with paths inside the item.
	if _, err := pools.Decode([]byte(`{"name": "p", "prefx": "10.0.0.0/8"}`)); err == nil || !strings.Contains(err.Error(), "prefx") {
		t.Errorf("Decode(unknown field) = %v", err)
	}
	// List is never nil; MakeNonNil fills a nil list.
	empty := &Document{}
	if l, ok := pools.List(empty).([]Pool); !ok || l == nil {
		t.Errorf("List(empty) = %#v", pools.List(empty))
	}
	pools.MakeNonNil(empty)
	if empty.Pools == nil || empty.Relays != nil {
		t.Errorf("MakeNonNil: %+v", empty)
	}
}
