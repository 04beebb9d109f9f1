package flows

import (
	"errors"
	"fmt"
)

// OpenFlow 1.3 reserved ports (§7.2.1) that Render prints by name.
const (
	portInPort     uint32 = 0xfffffff8
	portTable      uint32 = 0xfffffff9
	portFlood      uint32 = 0xfffffffb
	portAll        uint32 = 0xfffffffc
	portController uint32 = 0xfffffffd
	portLocal      uint32 = 0xfffffffe
	portAny        uint32 = 0xffffffff

	// maxTable is OFPTT_MAX; 0xff (OFPTT_ALL) is not a table.
	maxTable = 0xfe
	// pipelineTables is how many consecutive tables op25b uses.
	pipelineTables = 4
)

// Options place op25b's four tables inside a switch's pipeline.
type Options struct {
	// FirstTable is the classifier table; op25b uses FirstTable ..
	// FirstTable+3.
	FirstTable uint8
	// Continue is what "forward" means: by default output to NORMAL, or a
	// goto to a table after op25b's (an existing pipeline). It must be
	// exactly one output or one goto, without write-metadata. Note that a
	// packet continuing from the destination table still carries the
	// metadata op25b wrote in the source table.
	Continue Actions
}

// DefaultOptions: tables 0..3, forwarding with NORMAL.
func DefaultOptions() Options {
	return Options{FirstTable: 0, Continue: Actions{Output: PortNormal}}
}

// Validate reports whether the options describe a pipeline OpenFlow 1.3
// accepts: goto-table must point forward (OF1.3 §5.9) and table 255 is not a
// table.
func (o Options) Validate() error {
	last := int(o.FirstTable) + pipelineTables - 1
	if last > maxTable {
		return fmt.Errorf("options: first table %d leaves no room for op25b's %d tables (last table is %d)",
			o.FirstTable, pipelineTables, maxTable)
	}
	c := o.Continue
	switch {
	case c.WriteMetadataMask != 0 || c.WriteMetadata != 0:
		return errors.New("options: continue must not write metadata (op25b owns the metadata it writes)")
	case c.Goto && c.Output != 0:
		return errors.New("options: continue must be either an output or a goto, not both")
	case !c.Goto && c.Output == 0:
		return errors.New("options: continue must output to a port (e.g. NORMAL) or goto a table")
	case c.Goto && int(c.GotoTable) <= last:
		return fmt.Errorf("options: continue goto table %d must be after op25b's tables %d..%d (OpenFlow goto only moves forward)",
			c.GotoTable, o.FirstTable, last)
	case c.Goto && c.GotoTable > maxTable:
		return fmt.Errorf("options: continue goto table %d is not a table", c.GotoTable)
	case !c.Goto && c.Output == portAny:
		return errors.New("options: continue cannot output to ANY")
	}
	return nil
}

func (o Options) table(r Role) uint8 { return o.FirstTable + uint8(r) }
