package cluster

import (
	"testing"

	"github.com/op25b/op25b/topology"
)

func TestAssign(t *testing.T) {
	tests := []struct {
		name       string
		candidates []string
		want       string
	}{
		{"none", nil, ""},
		{"one", []string{"a"}, "a"},
		{"duplicates", []string{"a", "a"}, "a"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Assign("0000000000000001", tt.candidates); got != tt.want {
				t.Errorf("Assign = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestAssignIsOrderIndependent(t *testing.T) {
	for i := 0; i < 200; i++ {
		dpid := topology.DPIDFromUint64(uint64(i))
		a := Assign(dpid, []string{"r1", "r2", "r3"})
		b := Assign(dpid, []string{"r3", "r1", "r2"})
		if a != b {
			t.Fatalf("%s: %q vs %q depending on order", dpid, a, b)
		}
	}
}

// Balanced within ±20% over 3000 bridges, and removing a replica moves only
// the bridges it had.
func TestAssignBalancedAndStable(t *testing.T) {
	replicas := []string{"op25b-1", "op25b-2", "op25b-3"}
	const n = 3000
	count := map[string]int{}
	before := map[topology.DPID]string{}
	for i := 0; i < n; i++ {
		dpid := topology.DPIDFromUint64(uint64(i))
		w := Assign(dpid, replicas)
		count[w]++
		before[dpid] = w
	}
	for _, r := range replicas {
		if c := count[r]; c < n/3*8/10 || c > n/3*12/10 {
			t.Errorf("replica %s has %d of %d bridges: not balanced (%v)", r, c, n, count)
		}
	}
	for dpid, w := range before {
		after := Assign(dpid, replicas[:2])
		if w != "op25b-3" && after != w {
			t.Errorf("%s moved from %s to %s although its replica stayed", dpid, w, after)
		}
	}
}
