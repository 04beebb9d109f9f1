package cluster

import (
	"testing"
	"time"
)

// The phase timer sleeps until the earliest boundary, never longer than
// maxPhaseSleep (a year-9999 boundary must not overflow or sleep forever),
// and never negatively.
func TestPhaseSleep(t *testing.T) {
	now := time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC)
	far, _ := time.Parse(time.RFC3339, "9999-12-31T23:59:59Z")
	tests := []struct {
		name   string
		bounds []time.Time
		want   time.Duration
	}{
		{"no boundary", nil, maxPhaseSleep},
		{"zero means none", []time.Time{{}}, maxPhaseSleep},
		{"far future is capped", []time.Time{far}, maxPhaseSleep},
		{"earliest wins", []time.Time{now.Add(10 * time.Minute), now.Add(3 * time.Second), far}, 3*time.Second + 5*time.Millisecond},
		{"already passed", []time.Time{now.Add(-time.Minute)}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &Replica{cfg: Config{Now: func() time.Time { return now }}}
			st := newLoop()
			for i, b := range tt.bounds {
				st.bridges[dpidN(i)] = &bridgeState{validUntil: b}
			}
			if got := r.phaseSleep(st); got != tt.want {
				t.Errorf("phaseSleep = %s, want %s", got, tt.want)
			}
		})
	}
}
