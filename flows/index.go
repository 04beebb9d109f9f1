package flows

// flowIndex finds flows by Key. A map keyed by the 96-byte Key itself makes
// Diff of 100k flows memory-bound (every probe is a cache miss into large
// map groups), so the index maps a 64-bit hash of the key to a slice
// position and keeps the rare hash collision in a second, exact map.
type flowIndex struct {
	flows    []Flow
	hashes   []uint64 // keyHash of each flow, computed once
	byHash   map[uint64]int32
	overflow map[Key]int32
}

func keyHash(k Key) uint64 { return hashKey(k.Priority, k.Match) ^ uint64(k.Table)<<56 }

func newFlowIndex(fs []Flow) *flowIndex {
	ix := &flowIndex{flows: fs, hashes: make([]uint64, len(fs)), byHash: make(map[uint64]int32, len(fs))}
	for i := range fs {
		ix.hashes[i] = keyHash(fs[i].Key())
		ix.insert(int32(i))
	}
	return ix
}

// insert adds fs[i] unless a flow with the same key is already indexed
// (the first one wins) and reports whether it did.
func (ix *flowIndex) insert(i int32) bool {
	k, h := ix.flows[i].Key(), ix.hashes[i]
	j, ok := ix.byHash[h]
	if !ok {
		ix.byHash[h] = i
		return true
	}
	if ix.flows[j].Key() == k {
		return false
	}
	if ix.overflow == nil {
		ix.overflow = make(map[Key]int32)
	}
	if _, dup := ix.overflow[k]; dup {
		return false
	}
	ix.overflow[k] = i
	return true
}

// lookup returns the position of the flow with key k, whose keyHash is h.
func (ix *flowIndex) lookup(k Key, h uint64) (int32, bool) {
	if j, ok := ix.byHash[h]; ok && ix.flows[j].Key() == k {
		return j, true
	}
	j, ok := ix.overflow[k]
	return j, ok
}

// first reports whether fs[i] is the flow the index holds for its key (a
// later duplicate is not).
func (ix *flowIndex) first(i int32) bool {
	j, ok := ix.lookup(ix.flows[i].Key(), ix.hashes[i])
	return ok && j == i
}
