package topology

import (
	"encoding/json"
	"errors"
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
		{"bogus", "x", nil},
	} {
		if got := doc.References(tc.kind, tc.name); !slices.Equal(got, tc.want) {
			t.Errorf("References(%s, %s) = %q, want %q", tc.kind, tc.name, got, tc.want)
		}
	}
}

func TestItem(t *testing.T) {
	doc := validDoc()
	for _, tc := range []struct {
		kind, key string
		want      any
	}{
		{ItemPools, "tokyo-fixed", doc.Pools[1]},
		{ItemRelays, "msa", doc.Relays[0]},
		{ItemDestinations, "mobile-carriers", doc.Destinations[0]},
		{ItemServices, "v6plus", doc.Services[1]},
		{ItemBridges, "0000000000000001", doc.Bridges[0]},
	} {
		got, ok := doc.Item(tc.kind, tc.key)
		if !ok || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Item(%s, %s) = %+v, %v", tc.kind, tc.key, got, ok)
		}
	}
	doc.Bridges[0].DPID = "00000000000000AB"
	if _, ok := doc.Item(ItemBridges, "00000000000000ab"); !ok {
		t.Error("bridges are found by dpid in any case")
	}
	if b, ok := doc.Item(ItemBridges, "tokyo-1-sub-a"); !ok || b.(Bridge).DPID != "00000000000000AB" {
		t.Error("bridges are found by name too")
	}
	if _, ok := doc.Item(ItemPools, "nope"); ok {
		t.Error("found a missing pool")
	}
	if _, ok := doc.Item("bogus", "x"); ok {
		t.Error("found an item of an unknown kind")
	}
	// The item shares no memory with the document.
	s, _ := doc.Item(ItemServices, "ftth")
	s.(Service).Phases[0].Block.Sets[0] = "changed"
	if doc.Services[0].Phases[0].Block.Sets[0] != "mobile-carriers" {
		t.Error("Item shares memory with the document")
	}

	for _, kind := range ItemKinds {
		items, err := (&Document{}).Items(kind)
		if err != nil {
			t.Fatal(err)
		}
		data, _ := json.Marshal(items)
		if string(data) != "[]" {
			t.Errorf("empty %s encodes as %s", kind, data)
		}
	}
	if _, err := doc.Items("bogus"); !errors.Is(err, ErrUnknownKind) {
		t.Errorf("Items(bogus) = %v", err)
	}
	pools, _ := doc.Items(ItemPools)
	if !reflect.DeepEqual(pools, doc.Pools) {
		t.Errorf("Items(pools) = %+v", pools)
	}
}

func TestPutItem(t *testing.T) {
	for _, tc := range []struct {
		name, kind, key, body string
		created               bool
		wantErr               string // substring; "" = success
		wantField             string // ParseError.Field
		check                 func(d *Document) bool
	}{
		{name: "replace a pool", kind: ItemPools, key: "tokyo-fixed", body: `{"name":"tokyo-fixed","prefix":"10.1.201.0/29","kind":"static"}`,
			check: func(d *Document) bool { return len(d.Pools) == 3 && d.Pools[1].Prefix == "10.1.201.0/29" }},
		{name: "create a pool", kind: ItemPools, key: "osaka-dyn", body: `{"prefix":"10.2.0.0/16","kind":"dynamic","service":"ftth"}`, created: true,
			check: func(d *Document) bool { return len(d.Pools) == 4 && d.Pools[3].Name == "osaka-dyn" }},
		{name: "create a relay", kind: ItemRelays, key: "msa6", body: `{"name":"msa6","prefix":"2001:db8::25/128"}`, created: true,
			check: func(d *Document) bool { return d.Relays[1].Prefix == "2001:db8::25/128" }},
		{name: "replace a destination set", kind: ItemDestinations, key: "mobile-carriers", body: `{"prefixes":["203.0.113.0/24"]}`,
			check: func(d *Document) bool { return d.Destinations[0].Prefixes[0] == "203.0.113.0/24" }},
		{name: "replace a service", kind: ItemServices, key: "v6plus", body: `{"phases":[{"block":[]}]}`,
			check: func(d *Document) bool { return !d.Services[1].Phases[0].Block.All }},
		{name: "replace a bridge by dpid in another case", kind: ItemBridges, key: "0000000000000001", body: `{"dpid":"0000000000000001","name":"t1","pop":"tokyo-2"}`,
			check: func(d *Document) bool { return len(d.Bridges) == 1 && d.Bridges[0].Pop == "tokyo-2" }},
		{name: "create a bridge, dpid from the path", kind: ItemBridges, key: "00000000000000ab", body: `{"name":"osaka","pop":"osaka-1"}`, created: true,
			check: func(d *Document) bool { return d.Bridges[1].DPID == "00000000000000ab" }},
		{name: "replace a bridge by name", kind: ItemBridges, key: "tokyo-1-sub-a", body: `{"dpid":"0000000000000001","pop":"tokyo-2"}`,
			check: func(d *Document) bool {
				return len(d.Bridges) == 1 && d.Bridges[0].Pop == "tokyo-2" && d.Bridges[0].Name == "tokyo-1-sub-a"
			}},
		{name: "name mismatch", kind: ItemPools, key: "a", body: `{"name":"b"}`, wantErr: "does not match", wantField: "name"},
		{name: "dpid mismatch", kind: ItemBridges, key: "0000000000000001", body: `{"dpid":"0000000000000002"}`, wantErr: "does not match", wantField: "dpid"},
		{name: "unknown field", kind: ItemPools, key: "a", body: `{"prefx":"10.0.0.0/8"}`, wantErr: "unknown field", wantField: "prefx"},
		{name: "wrong type", kind: ItemServices, key: "s", body: `{"phases":[{"relays":"no"}]}`, wantErr: "true or false", wantField: "phases[0].relays"},
		{name: "two items", kind: ItemPools, key: "a", body: `{"name":"a"},{"name":"b"}`, wantErr: "not valid JSON"},
		{name: "null", kind: ItemPools, key: "a", body: `null`, wantErr: "not null"},
		{name: "list", kind: ItemPools, key: "a", body: `[]`, wantErr: "must be an object"},
		{name: "unknown kind", kind: "ports", key: "25", body: `{}`, wantErr: "unknown item kind"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			doc := validDoc()
			created, err := doc.PutItem(tc.kind, tc.key, []byte(tc.body))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("PutItem = %v, want an error containing %q", err, tc.wantErr)
				}
				var pe *ParseError
				if tc.wantField != "" && (!errors.As(err, &pe) || pe.Field != tc.wantField) {
					t.Errorf("field = %+v, want %q", pe, tc.wantField)
				}
				if !reflect.DeepEqual(doc, validDoc()) {
					t.Error("a failed PutItem changed the document")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if created != tc.created || !tc.check(doc) {
				t.Errorf("created=%v doc=%+v", created, doc)
			}
			if err := Validate(doc); err != nil {
				t.Errorf("result does not validate: %v", err)
			}
		})
	}
}

func TestDeleteItem(t *testing.T) {
	doc := validDoc()
	for _, tc := range []struct {
		kind, key string
		existed   bool
	}{
		{ItemPools, "tokyo-fixed", true},
		{ItemPools, "tokyo-fixed", false},
		{ItemRelays, "msa", true},
		{ItemBridges, "0000000000000001", true},
	} {
		ok, err := doc.DeleteItem(tc.kind, tc.key)
		if err != nil || ok != tc.existed {
			t.Errorf("DeleteItem(%s, %s) = %v, %v", tc.kind, tc.key, ok, err)
		}
	}
	if len(doc.Pools) != 2 || doc.Pools[1].Name != "tokyo-v6" || len(doc.Relays) != 0 || len(doc.Bridges) != 0 {
		t.Errorf("after deletes: %+v", doc)
	}
	if _, err := doc.DeleteItem("bogus", "x"); !errors.Is(err, ErrUnknownKind) {
		t.Errorf("DeleteItem(bogus) = %v", err)
	}
	// Deleting a referenced service leaves a document that fails
	// validation: the API checks References first and answers 409.
	if refs := doc.References(ItemServices, "v6plus"); len(refs) == 0 {
		t.Fatal("v6plus is referenced")
	}
	c := doc.Clone()
	c.DeleteItem(ItemServices, "v6plus")
	if Validate(c) == nil {
		t.Error("deleting a referenced service must not validate")
	}
}
