package soak

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/op25b/op25b/topology"
)

// TestMutateStaysValid: a long chain of the writer's changes, each on the
// result of the one before, validates at every step and covers every kind
// of change.
func TestMutateStaysValid(t *testing.T) {
	doc := labDoc("")
	doc.Services = append(doc.Services, topology.Service{Name: "v6plus", Phases: []topology.Phase{{Block: topology.Block{All: true}}}})
	doc.Pools = append(doc.Pools, topology.Pool{Name: "lab-fixed", Prefix: "10.1.200.0/29", Kind: "static"})
	doc.Pools = append(doc.Pools[:1], doc.Pools[2:]...) // "fixed" renamed lab-fixed as in lab/policy.json
	doc.Destinations[0].Name = "mobile-carriers"
	doc.Services[1].Phases[0].Block.Sets = []string{"mobile-carriers"}
	doc.Bridges = append(doc.Bridges, topology.Bridge{DPID: mustDPID("0000000000000b01"), Name: "b", Pop: "osaka-1"})
	if err := topology.Validate(doc); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	now := t0
	seen := map[string]bool{}
	for i := 0; i < 2000; i++ {
		ch := Mutate(rng, doc, now)
		if err := topology.Validate(ch.Result); err != nil {
			t.Fatalf("step %d, %s: %v", i, ch.Op, err)
		}
		switch {
		case ch.Delete:
			seen["delete"] = true
		case ch.Kind != "":
			seen["put "+ch.Kind] = true
		default:
			seen["replace"] = true
		}
		doc = ch.Result
		now = now.Add(3 * time.Second)
	}
	for _, want := range []string{"delete", "put exemptions", "put quarantines", "put services", "put pools", "replace"} {
		if !seen[want] {
			t.Errorf("2000 changes and no %q", want)
		}
	}
}
