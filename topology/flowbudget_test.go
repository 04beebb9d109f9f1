package topology

import (
	"fmt"
	"strings"
	"testing"
)

// TestFlowBudget: a document valid item by item can still multiply into
// more flows than a bridge may hold; Validate says so with a 400-ready
// message, and stays quiet right below the bound.
func TestFlowBudget(t *testing.T) {
	build := func(services, relays int) *Document {
		doc := &Document{}
		for i := range relays {
			doc.Relays = append(doc.Relays, Relay{Name: fmt.Sprintf("r%d", i), Prefix: fmt.Sprintf("192.%d.%d.%d/32", i/65536, i/256%256, i%256)})
		}
		for i := range services {
			name := fmt.Sprintf("svc-%d", i)
			doc.Services = append(doc.Services, Service{Name: name, Phases: []Phase{{Block: Block{All: true}}}})
			doc.Pools = append(doc.Pools, Pool{Name: "p" + name, Prefix: fmt.Sprintf("10.%d.%d.0/24", i/256, i%256), Kind: KindDynamic, Service: name})
		}
		return doc
	}
	for _, tc := range []struct {
		name             string
		services, relays int
		wantProblem      bool
	}{
		{"small", 10, 100, false},
		{"large but within", 99, 10_000, false},
		{"product too large", 1_000, 1_100, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			doc := build(tc.services, tc.relays)
			n := worstCaseFlows(doc)
			err := Validate(doc)
			got := err != nil && strings.Contains(err.Error(), "flows on one bridge")
			if got != tc.wantProblem {
				t.Fatalf("worst case %d flows: Validate = %v, want flow-budget problem %v", n, err, tc.wantProblem)
			}
			if got {
				fe := err.(*ValidationError).Errors[0]
				if fe.Field != "services" {
					t.Errorf("field = %q, want services", fe.Field)
				}
			}
		})
	}
}
