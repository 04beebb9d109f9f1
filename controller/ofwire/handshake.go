package ofwire

import (
	"encoding/binary"
	"errors"
	"fmt"

	of "github.com/netrack/openflow"
	"github.com/netrack/openflow/ofp"
)

// AppendHello appends a HELLO whose version bitmap element (§7.5.1) offers
// only 1.3, so a peer that supports several versions picks 1.3.
func AppendHello(b []byte, xid uint32) []byte {
	start := len(b)
	b = appendHeader(b, of.TypeHello, xid)
	b = be16(b, uint16(ofp.HelloElemTypeVersionBitmap))
	b = be16(b, 8) // element length: header + one bitmap word, already 8-aligned
	b = be32(b, 1<<Version13)
	return finish(b, start)
}

// HelloOffersVersion13 applies the version negotiation of §6.3.1 to a
// peer's HELLO: with a version bitmap, 1.3 must be in it; without one, the
// negotiated version is min(ours, theirs), so theirs must be ≥ 1.3.
func HelloOffersVersion13(h Header, body []byte) bool {
	for len(body) >= 4 {
		typ := ofp.HelloElemType(binary.BigEndian.Uint16(body[0:2]))
		l := int(binary.BigEndian.Uint16(body[2:4]))
		if l < 4 || l > len(body) {
			break
		}
		if typ == ofp.HelloElemTypeVersionBitmap && l >= 8 {
			// The first bitmap word covers versions 0..31.
			return binary.BigEndian.Uint32(body[4:8])&(1<<Version13) != 0
		}
		next := (l + 7) / 8 * 8 // elements are padded to 8 bytes
		if next > len(body) {
			break
		}
		body = body[next:]
	}
	return h.Version >= Version13
}

// AppendFeaturesRequest appends a FEATURES_REQUEST (§7.3.1), which has no body.
func AppendFeaturesRequest(b []byte, xid uint32) []byte {
	return appendEmpty(b, of.TypeFeaturesRequest, xid)
}

// Features is the part of a FEATURES_REPLY (§7.3.1) op25b uses.
type Features struct {
	DatapathID  uint64
	AuxiliaryID uint8 // 0 on the main connection
}

// ParseFeaturesReply decodes a FEATURES_REPLY body.
func ParseFeaturesReply(body []byte) (Features, error) {
	if len(body) < 24 {
		return Features{}, fmt.Errorf("features reply: %w", ErrShortMessage)
	}
	return Features{DatapathID: binary.BigEndian.Uint64(body), AuxiliaryID: body[13]}, nil
}

// AppendEchoRequest appends an ECHO_REQUEST (§7.5.2) carrying data.
func AppendEchoRequest(b []byte, xid uint32, data []byte) []byte {
	return appendWithBody(b, of.TypeEchoRequest, xid, data)
}

// AppendEchoReply appends the ECHO_REPLY to a request's xid and data (§7.5.3).
func AppendEchoReply(b []byte, xid uint32, data []byte) []byte {
	return appendWithBody(b, of.TypeEchoReply, xid, data)
}

// AppendBarrierRequest appends a BARRIER_REQUEST (§7.3.8). The switch
// answers after it has processed every message sent before, and sends the
// errors of those messages before the reply (§6.2).
func AppendBarrierRequest(b []byte, xid uint32) []byte {
	return appendEmpty(b, of.TypeBarrierRequest, xid)
}

// AppendError appends an OFPT_ERROR (§7.4.4). op25b sends one only to
// refuse a peer's HELLO (HELLO_FAILED/INCOMPATIBLE, §6.3.1).
func AppendError(b []byte, xid uint32, typ ofp.ErrType, code ofp.ErrCode, data []byte) []byte {
	start := len(b)
	b = appendHeader(b, of.TypeError, xid)
	b = be16(b, uint16(typ))
	b = be16(b, uint16(code))
	b = append(b, data...)
	return finish(b, start)
}

func appendEmpty(b []byte, typ of.Type, xid uint32) []byte {
	start := len(b)
	return finish(appendHeader(b, typ, xid), start)
}

func appendWithBody(b []byte, typ of.Type, xid uint32, body []byte) []byte {
	start := len(b)
	b = appendHeader(b, typ, xid)
	b = append(b, body...)
	return finish(b, start)
}

// RoleMessage is the body of ROLE_REQUEST and of ROLE_REPLY, which share
// one layout (§7.3.9): the reply carries the role and generation id the
// switch now holds for this connection.
type RoleMessage struct {
	Role         ofp.ControllerRole
	GenerationID uint64
}

// ErrRoleMismatch reports a ROLE_REPLY that grants something other than
// what was requested. OVS replies with exactly the requested role and
// generation or with an error (ROLE_REQUEST_FAILED/STALE); anything else
// means the switch's view of this connection is not what the caller
// believes, so the caller must not write as if it had the role.
var ErrRoleMismatch = errors.New("openflow: role reply does not match the request")

// AppendRoleRequest appends a ROLE_REQUEST (§7.3.9).
func AppendRoleRequest(b []byte, xid uint32, r RoleMessage) []byte {
	start := len(b)
	b = appendHeader(b, of.TypeRoleRequest, xid)
	b = be32(b, uint32(r.Role))
	b = pad(b, 4)
	b = be64(b, r.GenerationID)
	return finish(b, start)
}

// ParseRoleReply decodes a ROLE_REPLY body.
func ParseRoleReply(body []byte) (RoleMessage, error) {
	if len(body) < 16 {
		return RoleMessage{}, fmt.Errorf("role reply: %w", ErrShortMessage)
	}
	return RoleMessage{Role: ofp.ControllerRole(binary.BigEndian.Uint32(body)), GenerationID: binary.BigEndian.Uint64(body[8:])}, nil
}

// CheckRoleReply decodes a ROLE_REPLY body and returns an error wrapping
// ErrRoleMismatch unless it grants exactly the requested role and
// generation id.
func CheckRoleReply(body []byte, requested RoleMessage) error {
	got, err := ParseRoleReply(body)
	if err != nil {
		return err
	}
	if got != requested {
		return fmt.Errorf("%w: requested %s generation %d, switch replied %s generation %d",
			ErrRoleMismatch, roleName(requested.Role), requested.GenerationID, roleName(got.Role), got.GenerationID)
	}
	return nil
}

func roleName(r ofp.ControllerRole) string {
	switch r {
	case ofp.ControllerRoleNoChange:
		return "nochange"
	case ofp.ControllerRoleEqual:
		return "equal"
	case ofp.ControllerRoleMaster:
		return "master"
	case ofp.ControllerRoleSlave:
		return "slave"
	}
	return fmt.Sprintf("role(%d)", uint32(r))
}
