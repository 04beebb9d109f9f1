package cluster

import (
	"hash/fnv"

	"github.com/op25b/op25b/topology"
)

// Assign picks the master of a bridge among candidate replica ids by
// rendezvous (highest random weight) hashing: every replica computes the same
// answer from the same inputs without coordination, bridges spread evenly,
// and when a replica joins or leaves only the bridges it wins or held move.
// It returns "" when there is no candidate. Candidates may be in any order
// and contain duplicates.
func Assign(dpid topology.DPID, candidates []string) string {
	best, bestScore := "", uint64(0)
	for _, id := range candidates {
		s := score(id, dpid)
		if best == "" || s > bestScore || (s == bestScore && id < best) {
			best, bestScore = id, s
		}
	}
	return best
}

// score hashes (replica, dpid) with FNV-1a and a splitmix64 finalizer: FNV
// alone is weak in its high bits for inputs sharing long prefixes, which
// dpids and replica names do.
func score(replica string, dpid topology.DPID) uint64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(replica))
	_, _ = h.Write([]byte{0})
	_, _ = h.Write([]byte(dpid))
	x := h.Sum64()
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}
