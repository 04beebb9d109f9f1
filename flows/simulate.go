package flows

// maxPipelineSteps bounds Simulate on flow sets that are not op25b's (OVS
// rejects a goto that does not move forward, Simulate treats it as a drop).
const maxPipelineSteps = 256

// maxResubmitDepth is how deeply Simulate follows resubmits (OVS stops at 64
// nested resubmits and drops the packet; op25b nests one).
const maxResubmitDepth = 64

// Simulate runs a packet through fs with OpenFlow 1.3 table semantics
// (§5.1, §5.9): start at opts.FirstTable with metadata 0; in each table the
// matching flow with the highest priority wins (equal priorities: the first
// in fs); write-metadata applies under its mask; goto-table continues in a
// later table. No matching flow is a drop (the OF1.3 table-miss default,
// which OVS keeps for OpenFlow 1.3 bridges); a flow without instructions is
// a drop; reaching opts.Continue, or any output, is Forward.
//
// A resubmit runs the best match of its table first, as Open vSwitch
// does, and the flow's own actions afterwards: anything the resubmitted
// flow outputs (or continues to) forwards the packet too. A learn action
// has no effect on the packet. So a resubmit to op25b's offender table,
// whose flows only learn and count, never changes a verdict, and Simulate
// would show it if one did.
//
// It is linear in len(fs) per table visited, written for tests and dry
// runs, not for the datapath.
func Simulate(fs []Flow, opts Options, p Packet) Verdict {
	eth, ok := p.ethType()
	if !ok {
		return Forward
	}
	s := simulation{fs: fs, opts: opts, eth: eth, p: p}
	if s.pipeline(opts.FirstTable, 0, 0) {
		return Forward
	}
	return Drop
}

// simulation is one packet's walk through a flow set.
type simulation struct {
	fs          []Flow
	opts        Options
	eth         uint16
	p           Packet
	resubmitted []uint8
}

// lookup returns the index of the winning flow of table, or -1.
func (s *simulation) lookup(table uint8, metadata uint64) int {
	best := -1
	for i := range s.fs {
		f := &s.fs[i]
		if f.Table != table || (best >= 0 && f.Priority <= s.fs[best].Priority) {
			continue
		}
		if matches(f.Match, s.eth, metadata, s.p) {
			best = i
		}
	}
	return best
}

// pipeline processes the packet from table on and reports whether it was
// forwarded. depth counts nested resubmits.
func (s *simulation) pipeline(table uint8, metadata uint64, depth int) bool {
	for step := 0; step < maxPipelineSteps; step++ {
		best := s.lookup(table, metadata)
		if best < 0 {
			return false
		}
		a := s.fs[best].Actions
		forwarded := false
		if a.Resubmit && depth < maxResubmitDepth {
			s.resubmitted = append(s.resubmitted, a.ResubmitTable)
			// The resubmitted flow sees the metadata as it is now. op25b's
			// offender table writes none, so nothing is carried back out.
			forwarded = s.pipeline(a.ResubmitTable, metadata, depth+1)
		}
		a.Resubmit, a.ResubmitTable, a.Learn = false, 0, Learn{}
		if forwarded || a == s.opts.Continue {
			return true
		}
		metadata = metadata&^a.WriteMetadataMask | a.WriteMetadata&a.WriteMetadataMask
		switch {
		case a.Output != 0:
			return true
		case !a.Goto:
			return false
		case s.opts.Continue.Goto && a.GotoTable == s.opts.Continue.GotoTable:
			return true
		case a.GotoTable <= table:
			return false
		}
		table = a.GotoTable
	}
	return false
}

// matches applies OpenFlow's match semantics for the fields op25b uses; a
// zero field is a wildcard.
func matches(m Match, eth uint16, metadata uint64, p Packet) bool {
	switch {
	case m.EthType != 0 && m.EthType != eth,
		m.IPProto != 0 && m.IPProto != p.Proto,
		m.TCPDst != 0 && (p.Proto != IPProtoTCP || m.TCPDst != p.DstPort),
		m.TCPFlagsMask != 0 && (p.Proto != IPProtoTCP || p.TCPFlags&m.TCPFlagsMask != m.TCPFlags&m.TCPFlagsMask),
		m.TCPSrcMask != 0 && (p.Proto != IPProtoTCP || p.SrcPort&m.TCPSrcMask != m.TCPSrc&m.TCPSrcMask),
		metadata&m.MetadataMask != m.Metadata&m.MetadataMask,
		m.Src.IsValid() && !m.Src.Contains(p.Src),
		m.Dst.IsValid() && !m.Dst.Contains(p.Dst):
		return false
	}
	return true
}
