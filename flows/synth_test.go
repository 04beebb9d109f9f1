package flows

import (
	"fmt"

	"github.com/op25b/op25b/topology"
)

// syntheticDoc is an ISP-sized document: n pools (every fourth static, the
// others spread over services), 4 relays, 8 mobile-carrier prefixes.
func syntheticDoc(n, services int) *topology.Document {
	doc := &topology.Document{
		Relays: []topology.Relay{
			{Name: "msa1", Prefix: "192.0.2.25/32"}, {Name: "msa2", Prefix: "192.0.2.26/32"},
			{Name: "msa6a", Prefix: "2001:db8:25::/64"}, {Name: "msa6b", Prefix: "2001:db8:26::/64"},
		},
	}
	set := topology.DestinationSet{Name: "mobile-carriers"}
	for i := range 8 {
		set.Prefixes = append(set.Prefixes, fmt.Sprintf("198.51.%d.0/24", 100+i))
	}
	doc.Destinations = []topology.DestinationSet{set}
	for i := range services {
		block := topology.Block{All: true}
		if i%2 == 1 {
			block = topology.Block{Sets: []string{"mobile-carriers"}}
		}
		doc.Services = append(doc.Services, topology.Service{
			Name:   fmt.Sprintf("svc-%d", i),
			Phases: []topology.Phase{{Block: block}},
		})
	}
	for i := range n {
		p := topology.Pool{Name: fmt.Sprintf("pool-%06d", i), Kind: topology.KindDynamic}
		if i%2 == 0 {
			p.Prefix = fmt.Sprintf("10.%d.%d.0/24", i>>8&0xff, i&0xff)
			if i>>16 > 0 {
				p.Prefix = fmt.Sprintf("11.%d.%d.0/24", i>>8&0xff, i&0xff)
			}
		} else {
			p.Prefix = fmt.Sprintf("2001:db8:%x:%x::/64", i>>16, i&0xffff)
		}
		if i%4 == 0 {
			p.Kind = topology.KindStatic
		} else {
			p.Service = fmt.Sprintf("svc-%d", i%services)
		}
		doc.Pools = append(doc.Pools, p)
	}
	return doc
}
