package flows

import (
	"errors"
	"fmt"
	"time"
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
	pipelineTables = 5
	// MaxFirstTable is the highest FirstTable that leaves room for all of
	// op25b's tables below OFPTT_MAX.
	MaxFirstTable = maxTable - (pipelineTables - 1)
)

// Defaults of the offender table (Options.OffenderFlows,
// Options.OffenderIdleTimeout).
const (
	// DefaultOffenderFlows bounds the learned (source, destination) flows
	// of one bridge. Each costs OVS about 1 KB (BENCHMARKS.md "offender
	// storm"), so the default keeps a storm below ~50 MB of switch memory.
	DefaultOffenderFlows = 50_000
	// DefaultOffenderIdleTimeout: a pair that sent nothing for this long is
	// forgotten by the switch. The controller reads the counters several
	// times within it, so a flow's last count is read before it expires.
	DefaultOffenderIdleTimeout = 60 * time.Second
)

// Options place op25b's five tables inside a switch's pipeline.
type Options struct {
	// FirstTable is the classifier table; op25b uses FirstTable ..
	// FirstTable+4 (at most MaxFirstTable).
	FirstTable uint8
	// Continue is what "forward" means: by default output to NORMAL, or a
	// goto to a table after op25b's (an existing pipeline). It must be
	// exactly one output or one goto, without write-metadata. Note that a
	// packet continuing from the destination table still carries the
	// metadata op25b wrote in the source table.
	Continue Actions
	// OffenderFlows bounds the offender table: at most this many (pool,
	// source, destination) counting flows per bridge, rounded up to a
	// multiple of OffenderBuckets (each bucket's learn limit is an equal
	// share); beyond it attempts are still counted in total but not per
	// source. 0 means DefaultOffenderFlows.
	OffenderFlows uint32
	// OffenderIdleTimeout is how long a counting flow outlives its last
	// packet, whole seconds from 1s to 65535s; 0 means
	// DefaultOffenderIdleTimeout.
	OffenderIdleTimeout time.Duration
}

// DefaultOptions: tables 0..4, forwarding with NORMAL, the offender
// table's defaults.
func DefaultOptions() Options {
	return Options{FirstTable: 0, Continue: Actions{Output: PortNormal},
		OffenderFlows: DefaultOffenderFlows, OffenderIdleTimeout: DefaultOffenderIdleTimeout}
}

// offenderFlows is OffenderFlows with its default applied.
func (o Options) offenderFlows() uint32 {
	if o.OffenderFlows == 0 {
		return DefaultOffenderFlows
	}
	return o.OffenderFlows
}

// OffenderIdle is OffenderIdleTimeout with its default applied.
func (o Options) OffenderIdle() time.Duration {
	if o.OffenderIdleTimeout == 0 {
		return DefaultOffenderIdleTimeout
	}
	return o.OffenderIdleTimeout
}

// OffenderTable is the offender table's number.
func (o Options) OffenderTable() uint8 { return o.table(RoleOffender) }

// Validate reports whether the options describe a pipeline OpenFlow 1.3
// accepts: goto-table must point forward (OF1.3 §5.9) and table 255 is not a
// table.
func (o Options) Validate() error {
	last := int(o.FirstTable) + pipelineTables - 1
	if last > maxTable {
		return fmt.Errorf("options: first table %d leaves no room for op25b's %d tables (last table is %d)",
			o.FirstTable, pipelineTables, maxTable)
	}
	if idle := o.OffenderIdleTimeout; idle != 0 && (idle < time.Second || idle > 0xffff*time.Second || idle%time.Second != 0) {
		return fmt.Errorf("options: offender idle timeout %s must be whole seconds from 1s to 65535s (OpenFlow timeouts are 16-bit seconds)", idle)
	}
	c := o.Continue
	switch {
	case c.WriteMetadataMask != 0 || c.WriteMetadata != 0:
		return errors.New("options: continue must not write metadata (op25b owns the metadata it writes)")
	case c.Resubmit || !c.Learn.IsZero():
		return errors.New("options: continue must be an output or a goto, without resubmit or learn")
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
