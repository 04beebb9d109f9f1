package ofwire

import (
	"encoding/binary"
	"fmt"

	of "github.com/netrack/openflow"
)

// The ONF bundle extension for OpenFlow 1.3 (EXT-230), as OVS implements
// it: experimenter messages with the ONF experimenter id. netrack has no
// types for it, so the numbers live here.
const (
	// ONFExperimenterID is the ONF experimenter id (0x4F4E4600, "ONF\0").
	ONFExperimenterID uint32 = 0x4F4E4600
	// ONFTypeBundleControl is the exp_type of ONFT_BUNDLE_CONTROL.
	ONFTypeBundleControl uint32 = 2300
	// ONFTypeBundleAdd is the exp_type of ONFT_BUNDLE_ADD_MESSAGE.
	ONFTypeBundleAdd uint32 = 2301
)

// BundleControlType is the type of a bundle control message (ofp_bundle_ctrl_type).
type BundleControlType uint16

// Bundle control types; each reply is its request + 1.
const (
	BundleOpenRequest BundleControlType = iota
	BundleOpenReply
	BundleCloseRequest
	BundleCloseReply
	BundleCommitRequest
	BundleCommitReply
	BundleDiscardRequest
	BundleDiscardReply
)

// BundleFlags are the bundle's ofp_bundle_flags.
type BundleFlags uint16

// Bundle flags. op25b always uses both: the switch applies all or nothing
// (ATOMIC), in the order sent (ORDERED, which make-before-break needs).
const (
	BundleAtomic BundleFlags = 1 << iota
	BundleOrdered
)

// BundleControl is the body of a bundle control message after the
// experimenter header (ofp_bundle_ctrl_msg without properties).
type BundleControl struct {
	BundleID uint32
	Type     BundleControlType
	Flags    BundleFlags
}

// AppendBundleControl appends an ONFT_BUNDLE_CONTROL message.
func AppendBundleControl(b []byte, xid uint32, c BundleControl) []byte {
	start := len(b)
	b = appendHeader(b, of.TypeExperiment, xid)
	b = be32(b, ONFExperimenterID)
	b = be32(b, ONFTypeBundleControl)
	b = be32(b, c.BundleID)
	b = be16(b, uint16(c.Type))
	b = be16(b, uint16(c.Flags))
	return finish(b, start)
}

// AppendBundleAdd appends an ONFT_BUNDLE_ADD_MESSAGE that wraps fm. The
// inner message's xid must equal the outer one (OVS rejects the add
// otherwise), so both take xid.
func AppendBundleAdd(b []byte, xid, bundleID uint32, flags BundleFlags, fm FlowMod) []byte {
	start := len(b)
	b = appendHeader(b, of.TypeExperiment, xid)
	b = be32(b, ONFExperimenterID)
	b = be32(b, ONFTypeBundleAdd)
	b = be32(b, bundleID)
	b = pad(b, 2)
	b = be16(b, uint16(flags))
	b = AppendFlowMod(b, xid, fm)
	return finish(b, start)
}

// ParseBundleControl decodes the body of an experimenter message that
// must be an ONF bundle control (a reply to AppendBundleControl).
func ParseBundleControl(body []byte) (BundleControl, error) {
	if len(body) < 16 {
		return BundleControl{}, fmt.Errorf("bundle control: %w", ErrShortMessage)
	}
	exp, typ := binary.BigEndian.Uint32(body), binary.BigEndian.Uint32(body[4:])
	if exp != ONFExperimenterID || typ != ONFTypeBundleControl {
		return BundleControl{}, fmt.Errorf("bundle control: unexpected experimenter %#x type %d", exp, typ)
	}
	return BundleControl{
		BundleID: binary.BigEndian.Uint32(body[8:]),
		Type:     BundleControlType(binary.BigEndian.Uint16(body[12:])),
		Flags:    BundleFlags(binary.BigEndian.Uint16(body[14:])),
	}, nil
}
