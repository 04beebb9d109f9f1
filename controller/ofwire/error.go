package ofwire

import (
	"encoding/binary"
	"fmt"

	"github.com/netrack/openflow/ofp"
)

// Error is an OFPT_ERROR received from a switch (§7.4.4), attributed to
// the request (xid) that caused it.
type Error struct {
	XID  uint32
	Type ofp.ErrType
	// Code is the code within Type; for OFPET_EXPERIMENTER it is the
	// experimenter's own exp_code.
	Code ofp.ErrCode
	// Experimenter is set for OFPET_EXPERIMENTER errors (e.g. ONF bundle errors).
	Experimenter uint32
}

// Error names the type and code as netrack (after the spec) does.
func (e *Error) Error() string {
	if e.Type == ofp.ErrTypeExperimenter {
		return fmt.Sprintf("openflow error xid=%d type=%s exp_code=%d experimenter=%#x", e.XID, e.Type, uint16(e.Code), e.Experimenter)
	}
	return fmt.Sprintf("openflow error xid=%d type=%s code=%s", e.XID, e.Type, e.CodeName())
}

// TypeName is the name of the error type, for structured logs.
func (e *Error) TypeName() string { return e.Type.String() }

// CodeName is the name of the code within its type, for structured logs.
func (e *Error) CodeName() string {
	return ofp.Error{Type: e.Type, Code: e.Code}.String()
}

// IsStale reports OFPET_ROLE_REQUEST_FAILED/OFPRRFC_STALE: another
// controller claimed mastership with a newer generation (§6.3.6).
func (e *Error) IsStale() bool {
	return e.Type == ofp.ErrTypeRoleRequestFailed && e.Code == ofp.ErrCodeRoleRequestFailedStale
}

// IsSlave reports OFPET_BAD_REQUEST/OFPBRC_IS_SLAVE: a write reached a
// switch that sees this connection as slave (§6.3.6).
func (e *Error) IsSlave() bool {
	return e.Type == ofp.ErrTypeBadRequest && e.Code == ofp.ErrCodeBadRequestIsSlave
}

// IsBundleUnsupported reports the errors a switch without the ONF bundle
// extension sends for a bundle control message: it does not know the
// experimenter or its message type.
func (e *Error) IsBundleUnsupported() bool {
	if e.Type != ofp.ErrTypeBadRequest {
		return false
	}
	switch e.Code {
	case ofp.ErrCodeBadRequestBadType, ofp.ErrCodeBadRequestBadExperimenter, ofp.ErrCodeBadRequestBadExpType:
		return true
	}
	return false
}

// ParseError decodes an OFPT_ERROR body (§7.4.4). The offending message is
// attributed by the error's own xid (OVS copies the request's xid) and,
// when that is 0, by the xid in the echoed request header at Data[4:8].
func ParseError(h Header, body []byte) (*Error, error) {
	if len(body) < 4 {
		return nil, fmt.Errorf("error message: %w", ErrShortMessage)
	}
	e := &Error{XID: h.XID, Type: ofp.ErrType(binary.BigEndian.Uint16(body)), Code: ofp.ErrCode(binary.BigEndian.Uint16(body[2:]))}
	data := body[4:]
	if e.Type == ofp.ErrTypeExperimenter {
		// ofp_error_experimenter_msg: type, exp_code, experimenter, data.
		if len(data) < 4 {
			return nil, fmt.Errorf("experimenter error: %w", ErrShortMessage)
		}
		e.Experimenter = binary.BigEndian.Uint32(data)
		data = data[4:]
	}
	if e.XID == 0 && len(data) >= 8 {
		e.XID = binary.BigEndian.Uint32(data[4:8])
	}
	return e, nil
}
