package textdist

import (
	"strings"
	"testing"
)

func TestLevenshtein(t *testing.T) {
	long := strings.Repeat("x", MaxLen+1)
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"", "", 0},
		{"", "pools", 5},
		{"pools", "pools", 0},
		{"pool", "pools", 1},
		{"pols", "pools", 1},
		{"sevice", "service", 1},
		{"metrics", "metrics-listen", 7},
		{"kitten", "sitting", 3},
		{"", "abc", 3},
		{"audit-interval", "audit-interval", 0},
		{"flaw", "lawn", 2},
		{long, "pools", MaxLen},
		{"pools", long, MaxLen},
	} {
		if got := Levenshtein(tc.a, tc.b); got != tc.want {
			t.Errorf("Levenshtein(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
		if got := Levenshtein(tc.b, tc.a); got != tc.want {
			t.Errorf("Levenshtein(%q, %q) = %d, want %d (symmetry)", tc.b, tc.a, got, tc.want)
		}
	}
}
