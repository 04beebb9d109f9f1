package soak

import (
	"reflect"
	"testing"
	"time"
)

func TestPlanIsReproducible(t *testing.T) {
	for _, d := range []time.Duration{3 * time.Minute, 30 * time.Minute} {
		a, err := Plan(42, d, DefaultLab)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := Plan(42, d, DefaultLab)
		if !reflect.DeepEqual(a, b) {
			t.Errorf("%v: the same seed gave two plans", d)
		}
		c, _ := Plan(43, d, DefaultLab)
		if reflect.DeepEqual(a, c) {
			t.Errorf("%v: seeds 42 and 43 gave the same plan", d)
		}
	}
}

func TestPlanKeepsItsRules(t *testing.T) {
	for seed := int64(1); seed <= 200; seed++ {
		for _, d := range []time.Duration{3 * time.Minute, 30 * time.Minute} {
			plan, err := Plan(seed, d, DefaultLab)
			if err != nil {
				t.Fatal(err)
			}
			kinds := map[Kind]bool{}
			overlaps := 0
			for i, f := range plan {
				kinds[f.Kind] = true
				if f.Start < Warmup || f.Start+f.span() > d-Tail {
					t.Fatalf("seed %d %v: %+v outside [%v, %v]", seed, d, f, Warmup, d-Tail)
				}
				if f.Target == "" && f.Kind != RollingRestart && f.Kind != RestartVswitchd && f.Kind != RotateCerts {
					t.Fatalf("seed %d: %+v has no target", seed, f)
				}
				for _, g := range plan[i+1:] {
					if conflicts(f, g) {
						t.Fatalf("seed %d %v: %+v and %+v may not overlap", seed, d, f, g)
					}
					if g.Start < f.Start+f.span() {
						overlaps++
					}
				}
			}
			if d == 30*time.Minute {
				if len(kinds) != len(Kinds) {
					t.Errorf("seed %d: 30 minutes without every kind: %v", seed, kinds)
				}
				if overlaps == 0 {
					t.Errorf("seed %d: 30 minutes and no two faults overlap", seed)
				}
			}
		}
	}
}

func TestPlanTooShort(t *testing.T) {
	if _, err := Plan(1, time.Minute, DefaultLab); err == nil {
		t.Error("a 1-minute soak was planned")
	}
}

func TestThreeMinutePlanHasEveryKind(t *testing.T) {
	// What `make test` runs: every kind of fault at least once, whatever
	// the seed.
	for seed := int64(1); seed <= 200; seed++ {
		plan, _ := Plan(seed, 3*time.Minute, DefaultLab)
		kinds := map[Kind]bool{}
		for _, f := range plan {
			kinds[f.Kind] = true
		}
		if len(kinds) != len(Kinds) {
			t.Errorf("seed %d: 3 minutes with %d of %d kinds: %v", seed, len(kinds), len(Kinds), plan)
		}
	}
}
