// Package textdist measures how far apart two short strings are, for the
// "did you mean" hints of the policy parser and the daemon's environment
// variables.
package textdist

// MaxLen bounds the work: a string longer than this is reported as MaxLen
// edits away from anything, so a hostile key or variable name costs
// nothing (the hints only ever concern short names).
const MaxLen = 64

// Levenshtein is the edit distance of a and b (insertions, deletions and
// substitutions of bytes), or MaxLen when either is longer than MaxLen.
func Levenshtein(a, b string) int {
	if len(a) > MaxLen || len(b) > MaxLen {
		return MaxLen
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
