package flows

// maxPipelineSteps bounds Simulate on flow sets that are not op25b's (OVS
// rejects a goto that does not move forward, Simulate treats it as a drop).
const maxPipelineSteps = 256

// Simulate runs a packet through fs with OpenFlow 1.3 table semantics
// (§5.1, §5.9): start at opts.FirstTable with metadata 0; in each table the
// matching flow with the highest priority wins (equal priorities: the first
// in fs); write-metadata applies under its mask; goto-table continues in a
// later table. No matching flow is a drop (the OF1.3 table-miss default,
// which OVS keeps for OpenFlow 1.3 bridges); a flow without instructions is
// a drop; reaching opts.Continue, or any output, is Forward.
//
// It is linear in len(fs) per table visited, written for tests and dry
// runs, not for the datapath.
func Simulate(fs []Flow, opts Options, p Packet) Verdict {
	eth, ok := p.ethType()
	if !ok {
		return Forward
	}
	table, metadata := opts.FirstTable, uint64(0)
	for step := 0; step < maxPipelineSteps; step++ {
		best := -1
		for i := range fs {
			f := &fs[i]
			if f.Table != table || (best >= 0 && f.Priority <= fs[best].Priority) {
				continue
			}
			if matches(f.Match, eth, metadata, p) {
				best = i
			}
		}
		if best < 0 {
			return Drop
		}
		a := fs[best].Actions
		if a == opts.Continue {
			return Forward
		}
		metadata = metadata&^a.WriteMetadataMask | a.WriteMetadata&a.WriteMetadataMask
		switch {
		case a.Output != 0:
			return Forward
		case !a.Goto:
			return Drop
		case opts.Continue.Goto && a.GotoTable == opts.Continue.GotoTable:
			return Forward
		case a.GotoTable <= table:
			return Drop
		}
		table = a.GotoTable
	}
	return Drop
}

// matches applies OpenFlow's match semantics for the fields op25b uses; a
// zero field is a wildcard.
func matches(m Match, eth uint16, metadata uint64, p Packet) bool {
	switch {
	case m.EthType != 0 && m.EthType != eth,
		m.IPProto != 0 && m.IPProto != p.Proto,
		m.TCPDst != 0 && (p.Proto != IPProtoTCP || m.TCPDst != p.DstPort),
		metadata&m.MetadataMask != m.Metadata&m.MetadataMask,
		m.Src.IsValid() && !m.Src.Contains(p.Src),
		m.Dst.IsValid() && !m.Dst.Contains(p.Dst):
		return false
	}
	return true
}
