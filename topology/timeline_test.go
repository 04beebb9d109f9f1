package topology

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"
)

func TestTimeline(t *testing.T) {
	doc := validDoc()
	// ftth: [0] 11-01 (sets, everywhere), [1] 12-01 (all, osaka-1), [2] 12-15 (all, everywhere), all +09:00.
	dec15 := "2006-12-14T15:00:00Z"
	for _, tc := range []struct {
		name, service, pop, at string
		phases                 []int
		active, next           int
		nextAt                 string
	}{
		{"before any phase", "ftth", "tokyo-1", "2006-10-01T00:00:00Z", []int{0, 2}, -1, 0, "2006-10-31T15:00:00Z"},
		{"exactly at the first phase", "ftth", "tokyo-1", "2006-10-31T15:00:00Z", []int{0, 2}, 0, 2, dec15},
		{"1ns before the next boundary", "ftth", "tokyo-1", "2006-12-14T14:59:59.999999999Z", []int{0, 2}, 0, 2, dec15},
		{"tokyo at the global phase: nothing after it", "ftth", "tokyo-1", dec15, []int{0, 2}, 2, -1, ""},
		{"osaka sees its own phase next", "ftth", "osaka-1", "2006-11-15T00:00:00Z", []int{0, 1, 2}, 0, 1, "2006-11-30T15:00:00Z"},
		{"osaka in its own phase", "ftth", "osaka-1", "2006-12-05T00:00:00Z", []int{0, 1, 2}, 1, 2, dec15},
		{"pop \"\" gets only phases without pops", "ftth", "", "2006-12-05T00:00:00Z", []int{0, 2}, 0, 2, dec15},
		{"phase without from", "v6plus", "tokyo-1", "0001-01-01T00:00:00Z", []int{0}, 0, -1, ""},
		{"unknown service", "adsl", "tokyo-1", dec15, nil, -1, -1, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := doc.Timeline(tc.service, tc.pop, mustTime(t, tc.at))
			want := PopTimeline{Pop: tc.pop, Phases: tc.phases, Active: tc.active, Next: tc.next}
			if tc.nextAt != "" {
				want.NextAt = mustTime(t, tc.nextAt)
			}
			if got.Pop != want.Pop || !reflect.DeepEqual(got.Phases, want.Phases) || got.Active != want.Active ||
				got.Next != want.Next || !got.NextAt.Equal(want.NextAt) {
				t.Errorf("Timeline(%s, %q, %s) =\n %+v, want\n %+v", tc.service, tc.pop, tc.at, got, want)
			}
		})
	}
}

// Timeline agrees with ActivePhase and NextChange on random schedules: its
// active phase is ActivePhase's, its next boundary is where ActivePhase
// changes (and nothing changes before it), and no boundary is missed.
func TestTimelineAgreesWithActivePhase(t *testing.T) {
	rng := rand.New(rand.NewPCG(15, 1))
	base := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	pops := []string{"", "tokyo-1", "osaka-1", "nagoya-1"}
	for round := range 500 {
		var phases []Phase
		for range 1 + rng.IntN(6) {
			var ph Phase
			if rng.IntN(5) > 0 {
				ph.From = base.Add(time.Duration(rng.IntN(10)) * time.Hour).In(time.FixedZone("", 9*3600)).Format(time.RFC3339)
			}
			for _, p := range pops[1:] {
				if rng.IntN(3) == 0 {
					ph.Pops = append(ph.Pops, p)
				}
			}
			phases = append(phases, ph)
		}
		doc := &Document{Services: []Service{{Name: "s", Phases: phases}}}
		for _, pop := range pops {
			for h := -1; h <= 11; h++ {
				at := base.Add(time.Duration(h)*time.Hour - time.Duration(rng.IntN(2))*time.Nanosecond)
				tl := doc.Timeline("s", pop, at)
				ph, ok := doc.ActivePhase("s", pop, at)
				what := fmt.Sprintf("round %d pop %q at %s: %+v in %+v", round, pop, at, tl, phases)
				if ok != (tl.Active >= 0) || ok && !reflect.DeepEqual(ph, phases[tl.Active]) {
					t.Fatalf("%s: ActivePhase says %v %+v", what, ok, ph)
				}
				if tl.Next < 0 {
					if after, ok2 := doc.ActivePhase("s", pop, base.Add(1000*time.Hour)); ok2 != ok || ok && !reflect.DeepEqual(after, ph) {
						t.Fatalf("%s: no next boundary, yet the active phase changes later", what)
					}
					continue
				}
				before, _ := doc.ActivePhase("s", pop, tl.NextAt.Add(-time.Nanosecond))
				if ok && !reflect.DeepEqual(before, ph) {
					t.Fatalf("%s: the active phase changes before the next boundary", what)
				}
				at2, ok2 := doc.ActivePhase("s", pop, tl.NextAt)
				if !ok2 || !reflect.DeepEqual(at2, phases[tl.Next]) {
					t.Fatalf("%s: at the next boundary ActivePhase says %v %+v, want phase %d", what, ok2, at2, tl.Next)
				}
			}
		}
	}
}

func TestPops(t *testing.T) {
	doc := validDoc()
	doc.Bridges = append(doc.Bridges, Bridge{DPID: "0000000000000002", Name: "x", Pop: "tokyo-1"}, Bridge{DPID: "0000000000000003", Name: "y"})
	if got, want := doc.Pops(), []string{"osaka-1", "tokyo-1"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Pops() = %v, want %v", got, want)
	}
	var none *Document
	if got := none.Pops(); got != nil {
		t.Errorf("nil document Pops() = %v", got)
	}
}
