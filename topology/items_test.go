package topology

import (
	"reflect"
	"slices"
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
