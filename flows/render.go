package flows

import (
	"fmt"
	"slices"
	"strconv"
)

// Render prints one flow in `ovs-ofctl -O OpenFlow13 add-flow` syntax, e.g.
//
//	table=1, priority=1016, cookie=0x25b0..., ip,nw_src=10.1.0.0/16 actions=write_metadata:0x.../0xffffffffffffffff,goto_table:2
//
// The output is accepted by `ovs-ofctl add-flows`/`replace-flows` and is what
// golden files, the API and op25bctl show.
func Render(f Flow) string { return string(appendFlow(nil, f)) }

// appendFlow renders into buf without intermediate strings: RenderSet of
// 175k flows is on the API's path (dry runs, GET flows).
func appendFlow(buf []byte, f Flow) []byte {
	buf = append(buf, "table="...)
	buf = strconv.AppendUint(buf, uint64(f.Table), 10)
	buf = append(buf, ", priority="...)
	buf = strconv.AppendUint(buf, uint64(f.Priority), 10)
	buf = append(buf, ", cookie="...)
	buf = appendHex(buf, f.Cookie)
	mark := len(buf)
	buf = append(buf, ", "...)
	n := len(buf)
	if buf = appendMatch(buf, f.Match); len(buf) == n {
		buf = buf[:mark] // empty match: no separator
	}
	buf = append(buf, " actions="...)
	return appendActions(buf, f.Actions)
}

func appendHex(buf []byte, v uint64) []byte {
	buf = append(buf, "0x"...)
	return strconv.AppendUint(buf, v, 16)
}

func appendMatch(buf []byte, m Match) []byte {
	start := len(buf)
	sep := func() {
		if len(buf) > start {
			buf = append(buf, ',')
		}
	}
	v6 := m.EthType == EthTypeIPv6
	switch {
	case m.EthType == EthTypeIPv4 && m.IPProto == IPProtoTCP:
		buf = append(buf, "tcp"...)
	case v6 && m.IPProto == IPProtoTCP:
		buf = append(buf, "tcp6"...)
	case m.EthType == EthTypeIPv4:
		buf = append(buf, "ip"...)
	case v6:
		buf = append(buf, "ipv6"...)
	case m.EthType != 0:
		buf = fmt.Appendf(buf, "dl_type=0x%04x", m.EthType)
	}
	if m.IPProto != 0 && m.IPProto != IPProtoTCP {
		sep()
		buf = append(buf, "nw_proto="...)
		buf = strconv.AppendUint(buf, uint64(m.IPProto), 10)
	}
	if m.MetadataMask != 0 {
		sep()
		buf = append(buf, "metadata="...)
		buf = appendHex(buf, m.Metadata)
		buf = append(buf, '/')
		buf = appendHex(buf, m.MetadataMask)
	}
	src, dst := "nw_src=", "nw_dst="
	if v6 {
		src, dst = "ipv6_src=", "ipv6_dst="
	}
	if m.Src.IsValid() {
		sep()
		buf = append(buf, src...)
		buf = m.Src.AppendTo(buf)
	}
	if m.Dst.IsValid() {
		sep()
		buf = append(buf, dst...)
		buf = m.Dst.AppendTo(buf)
	}
	if m.TCPSrcMask != 0 {
		sep()
		buf = append(buf, "tp_src="...)
		if m.TCPSrcMask == 0xffff {
			buf = strconv.AppendUint(buf, uint64(m.TCPSrc), 10)
		} else {
			buf = appendHex(buf, uint64(m.TCPSrc&m.TCPSrcMask))
			buf = append(buf, '/')
			buf = appendHex(buf, uint64(m.TCPSrcMask))
		}
	}
	if m.TCPDst != 0 {
		sep()
		buf = append(buf, "tp_dst="...)
		buf = strconv.AppendUint(buf, uint64(m.TCPDst), 10)
	}
	if m.TCPFlagsMask != 0 {
		sep()
		buf = append(buf, "tcp_flags="...)
		buf = appendTCPFlags(buf, m.TCPFlags, m.TCPFlagsMask)
	}
	return buf
}

// tcpFlagNames are OVS's names of the TCP flag bits, lowest bit first.
var tcpFlagNames = [...]string{"fin", "syn", "rst", "psh", "ack", "urg", "ece", "cwr", "ns"}

// appendTCPFlags prints flags under mask the way ovs-ofctl does:
// +syn-ack for "SYN set, ACK clear", or value/mask in hex when the mask
// covers bits without a name.
func appendTCPFlags(buf []byte, flags, mask uint16) []byte {
	if mask&^(1<<len(tcpFlagNames)-1) != 0 {
		buf = fmt.Appendf(buf, "%#x/%#x", flags&mask, mask)
		return buf
	}
	for i, name := range tcpFlagNames {
		bit := uint16(1) << i
		if mask&bit == 0 {
			continue
		}
		if flags&bit != 0 {
			buf = append(buf, '+')
		} else {
			buf = append(buf, '-')
		}
		buf = append(buf, name...)
	}
	return buf
}

// appendActions prints instructions in the order OpenFlow 1.3 executes them
// (§5.9: apply-actions, write-metadata, goto-table), the order ovs-ofctl
// requires; within apply-actions, resubmit, learn, output.
func appendActions(buf []byte, a Actions) []byte {
	start := len(buf)
	sep := func() {
		if len(buf) > start {
			buf = append(buf, ',')
		}
	}
	if a.Resubmit {
		buf = append(buf, "resubmit(,"...)
		buf = strconv.AppendUint(buf, uint64(a.ResubmitTable), 10)
		buf = append(buf, ')')
	}
	if !a.Learn.IsZero() {
		sep()
		buf = appendLearn(buf, a.Learn)
	}
	if a.Output != 0 {
		sep()
		buf = append(buf, renderPort(a.Output)...)
	}
	if a.WriteMetadataMask != 0 {
		sep()
		buf = append(buf, "write_metadata:"...)
		buf = appendHex(buf, a.WriteMetadata)
		buf = append(buf, '/')
		buf = appendHex(buf, a.WriteMetadataMask)
	}
	if a.Goto {
		sep()
		buf = append(buf, "goto_table:"...)
		buf = strconv.AppendUint(buf, uint64(a.GotoTable), 10)
	}
	if len(buf) == start {
		buf = append(buf, "drop"...)
	}
	return buf
}

// appendLearn prints op25b's learn action as ovs-ofctl dump-flows does, so
// rendered desired flows compare equal to a dump by eye and by text.
func appendLearn(buf []byte, l Learn) []byte {
	buf = append(buf, "learn(table="...)
	buf = strconv.AppendUint(buf, uint64(l.Table), 10)
	if l.IdleTimeout != 0 {
		buf = append(buf, ",idle_timeout="...)
		buf = strconv.AppendUint(buf, uint64(l.IdleTimeout), 10)
	}
	if l.Priority != ofpDefaultPriority {
		buf = append(buf, ",priority="...)
		buf = strconv.AppendUint(buf, uint64(l.Priority), 10)
	}
	if l.Cookie != 0 {
		buf = append(buf, ",cookie="...)
		buf = appendHex(buf, l.Cookie)
	}
	if l.Limit != 0 {
		buf = append(buf, ",limit="...)
		buf = strconv.AppendUint(buf, uint64(l.Limit), 10)
	}
	if l.IPv6 {
		buf = append(buf, ",eth_type=0x86dd,nw_proto=6,OXM_OF_METADATA[32..63],NXM_NX_IPV6_SRC[],NXM_NX_IPV6_DST[])"...)
	} else {
		buf = append(buf, ",eth_type=0x800,nw_proto=6,OXM_OF_METADATA[32..63],NXM_OF_IP_SRC[],NXM_OF_IP_DST[])"...)
	}
	return buf
}

// ofpDefaultPriority is OFP_DEFAULT_PRIORITY, which ovs-ofctl leaves out
// of a learn action.
const ofpDefaultPriority = 0x8000

func renderPort(p uint32) string {
	switch p {
	case PortNormal:
		return "NORMAL"
	case portInPort:
		return "IN_PORT"
	case portTable:
		return "TABLE"
	case portFlood:
		return "FLOOD"
	case portAll:
		return "ALL"
	case portController:
		return "CONTROLLER"
	case portLocal:
		return "LOCAL"
	}
	return "output:" + strconv.FormatUint(uint64(p), 10)
}

// RenderSet prints flows one per line in Compiled.Flows order, whatever
// order they are given in.
func RenderSet(fs []Flow) string {
	sorted := slices.Clone(fs)
	slices.SortFunc(sorted, compareFlows)
	buf := make([]byte, 0, 128*len(sorted))
	for _, f := range sorted {
		buf = appendFlow(buf, f)
		buf = append(buf, '\n')
	}
	return string(buf)
}

// RenderChange prints a change as "add ...", "modify ..." or "delete ...";
// a delete shows the whole flow being removed (it is deleted strictly by
// table, priority and match).
func RenderChange(c Change) string { return c.Op.String() + " " + Render(c.Flow) }
