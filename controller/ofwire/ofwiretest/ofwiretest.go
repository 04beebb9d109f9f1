// Package ofwiretest builds OpenFlow 1.3 messages with netrack/openflow's
// own encoder, as a second source for tests: ofwire's byte-fixture tests
// compare ofwire's bytes with these, and the controller's fake switch
// answers with them, so the controller's decoders are exercised against
// bytes ofwire did not produce. Test code only; production code never
// imports it.
package ofwiretest

import (
	"bytes"
	"io"
	"net/netip"

	of "github.com/netrack/openflow"
	"github.com/netrack/openflow/ofp"

	"github.com/op25b/op25b/controller/ofwire"
	"github.com/op25b/op25b/flows"
)

// Message encodes one message with netrack (of.NewRequest + WriteTo) and
// the given xid; body may be nil.
func Message(typ of.Type, xid uint32, body io.WriterTo) []byte {
	req := of.NewRequest(typ, body)
	req.Header.Transaction = xid
	var buf bytes.Buffer
	if _, err := req.WriteTo(&buf); err != nil {
		panic("netrack encode: " + err.Error())
	}
	return buf.Bytes()
}

// Hello is netrack's HELLO with a version bitmap of the given bits, or
// without elements when bitmap is 0, sent with the given header version.
func Hello(version uint8, xid uint32, bitmap uint32) []byte {
	var body io.WriterTo
	if bitmap != 0 {
		body = &ofp.Hello{Elements: ofp.HelloElems{&ofp.HelloElemVersionBitmap{Bitmaps: []uint32{bitmap}}}}
	}
	m := Message(of.TypeHello, xid, body)
	m[0] = version
	return m
}

// FlowMod is netrack's form of an ofwire.FlowMod, with the match fields
// and instructions in the order ofwire documents (metadata, eth_type,
// ip_proto, src, dst, tcp_dst; write_metadata, apply output, goto).
func FlowMod(fm ofwire.FlowMod) *ofp.FlowMod {
	m := ofp.NewFlowMod(fm.Command, nil)
	m.Flags = 0 // NewFlowMod sets SEND_FLOW_REM on adds; op25b never does
	m.Cookie, m.CookieMask = fm.Cookie, fm.CookieMask
	m.Table, m.Priority = ofp.Table(fm.Table), fm.Priority
	if fm.RawMatch != nil {
		if _, err := m.Match.ReadFrom(bytes.NewReader(fm.RawMatch)); err != nil {
			panic("netrack decode of a raw match: " + err.Error())
		}
	} else {
		m.Match = Match(fm.Match)
	}
	if fm.Command != ofp.FlowDelete && fm.Command != ofp.FlowDeleteStrict {
		m.Instructions = Instructions(fm.Actions)
	}
	return m
}

// Match is netrack's OXM match for an op25b match.
func Match(m flows.Match) ofp.Match {
	var xms []ofp.XM
	basic := func(t ofp.XMType, v, mask []byte) {
		xms = append(xms, ofp.XM{Class: ofp.XMClassOpenflowBasic, Type: t, Value: v, Mask: mask})
	}
	if m.MetadataMask != 0 {
		if m.MetadataMask == ^uint64(0) {
			basic(ofp.XMTypeMetadata, u64(m.Metadata), nil)
		} else {
			basic(ofp.XMTypeMetadata, u64(m.Metadata&m.MetadataMask), u64(m.MetadataMask))
		}
	}
	if m.EthType != 0 {
		basic(ofp.XMTypeEthType, []byte{byte(m.EthType >> 8), byte(m.EthType)}, nil)
	}
	if m.IPProto != 0 {
		basic(ofp.XMTypeIPProto, []byte{m.IPProto}, nil)
	}
	prefix := func(p netip.Prefix, v4, v6 ofp.XMType) {
		if !p.IsValid() || p.Bits() == 0 {
			return
		}
		p = p.Masked()
		t := v4
		if p.Addr().Is6() && !p.Addr().Is4In6() {
			t = v6
		}
		addr := p.Addr().AsSlice()
		if t == v4 {
			addr = addr[len(addr)-4:]
		}
		if p.Bits() == len(addr)*8 {
			basic(t, addr, nil)
			return
		}
		mask := make([]byte, len(addr))
		for i := 0; i < min(p.Bits(), len(addr)*8); i++ {
			mask[i/8] |= 0x80 >> (i % 8)
		}
		basic(t, addr, mask)
	}
	prefix(m.Src, ofp.XMTypeIPv4Src, ofp.XMTypeIPv6Src)
	prefix(m.Dst, ofp.XMTypeIPv4Dst, ofp.XMTypeIPv6Dst)
	switch {
	case m.TCPSrcMask == 0xffff:
		basic(ofp.XMTypeTCPSrc, []byte{byte(m.TCPSrc >> 8), byte(m.TCPSrc)}, nil)
	case m.TCPSrcMask != 0:
		v := m.TCPSrc & m.TCPSrcMask
		basic(ofp.XMTypeTCPSrc, []byte{byte(v >> 8), byte(v)}, []byte{byte(m.TCPSrcMask >> 8), byte(m.TCPSrcMask)})
	}
	if m.TCPDst != 0 {
		basic(ofp.XMTypeTCPDst, []byte{byte(m.TCPDst >> 8), byte(m.TCPDst)}, nil)
	}
	return ofp.Match{Type: ofp.MatchTypeXM, Fields: xms}
}

// Instructions is netrack's instruction list for op25b's actions.
func Instructions(a flows.Actions) ofp.Instructions {
	var in ofp.Instructions
	if a.WriteMetadataMask != 0 {
		in = append(in, &ofp.InstructionWriteMetadata{Metadata: a.WriteMetadata & a.WriteMetadataMask, MetadataMask: a.WriteMetadataMask})
	}
	if a.Output != 0 {
		in = append(in, &ofp.InstructionApplyActions{Actions: ofp.Actions{
			&ofp.ActionOutput{Port: ofp.PortNo(a.Output), MaxLen: ofp.ContentLenNoBuffer}}})
	}
	if a.Goto {
		in = append(in, &ofp.InstructionGotoTable{Table: ofp.Table(a.GotoTable)})
	}
	return in
}

// FlowStats is netrack's ofp_flow_stats entry for f, as a switch reports
// it: 12 s old, packets packets of 64 bytes.
func FlowStats(f flows.Flow, packets uint64) *ofp.FlowStats {
	return &ofp.FlowStats{
		Table: ofp.Table(f.Table), DurationSec: 12, Priority: f.Priority, Cookie: f.Cookie,
		PacketCount: packets, ByteCount: packets * 64,
		Match: Match(f.Match), Instructions: Instructions(f.Actions),
	}
}

// FlowStatsEntries is the concatenation of FlowStats(f, packets) for fs,
// encoded by netrack: the body of an OFPMP_FLOW reply.
func FlowStatsEntries(fs []flows.Flow, packets uint64) []byte {
	var buf bytes.Buffer
	for _, f := range fs {
		if _, err := FlowStats(f, packets).WriteTo(&buf); err != nil {
			panic("netrack encode: " + err.Error())
		}
	}
	return buf.Bytes()
}

// MultipartReply is one MULTIPART_REPLY part of type typ carrying body.
func MultipartReply(xid uint32, typ ofp.MultipartType, more bool, body []byte) []byte {
	var flags ofp.MultipartReplyFlag
	if more {
		flags = ofp.MultipartReplyMode
	}
	return Message(of.TypeMultipartReply, xid, concat{&ofp.MultipartReply{Type: typ, Flags: flags}, bytes.NewReader(body)})
}

// Error is netrack's OFPT_ERROR with data (the offending request's first
// bytes, as switches send).
func Error(xid uint32, typ ofp.ErrType, code ofp.ErrCode, data []byte) []byte {
	return Message(of.TypeError, xid, &ofp.Error{Type: typ, Code: code, Data: data})
}

// concat writes its parts one after the other.
type concat []io.WriterTo

func (c concat) WriteTo(w io.Writer) (int64, error) {
	var n int64
	for _, p := range c {
		m, err := p.WriteTo(w)
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

func u64(v uint64) []byte {
	return []byte{byte(v >> 56), byte(v >> 48), byte(v >> 40), byte(v >> 32), byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}
}
