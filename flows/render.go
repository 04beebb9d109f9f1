package flows

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Render prints one flow in `ovs-ofctl -O OpenFlow13 add-flow` syntax, e.g.
//
//	table=1, priority=1016, cookie=0x25b0..., ip,nw_src=10.1.0.0/16 actions=write_metadata:0x.../0xffffffffffffffff,goto_table:2
//
// The output is accepted by `ovs-ofctl add-flows`/`replace-flows` and is what
// golden files, the API and op25bctl show.
func Render(f Flow) string {
	var b strings.Builder
	fmt.Fprintf(&b, "table=%d, priority=%d, cookie=%#x", f.Table, f.Priority, f.Cookie)
	if m := renderMatch(f.Match); m != "" {
		b.WriteString(", ")
		b.WriteString(m)
	}
	b.WriteString(" actions=")
	b.WriteString(renderActions(f.Actions))
	return b.String()
}

func renderMatch(m Match) string {
	var parts []string
	v6 := m.EthType == EthTypeIPv6
	switch {
	case m.EthType == EthTypeIPv4 && m.IPProto == IPProtoTCP:
		parts = append(parts, "tcp")
	case v6 && m.IPProto == IPProtoTCP:
		parts = append(parts, "tcp6")
	case m.EthType == EthTypeIPv4:
		parts = append(parts, "ip")
	case v6:
		parts = append(parts, "ipv6")
	case m.EthType != 0:
		parts = append(parts, fmt.Sprintf("dl_type=0x%04x", m.EthType))
	}
	if m.IPProto != 0 && m.IPProto != IPProtoTCP {
		parts = append(parts, "nw_proto="+strconv.Itoa(int(m.IPProto)))
	}
	if m.MetadataMask != 0 {
		parts = append(parts, fmt.Sprintf("metadata=%#x/%#x", m.Metadata, m.MetadataMask))
	}
	src, dst := "nw_src=", "nw_dst="
	if v6 {
		src, dst = "ipv6_src=", "ipv6_dst="
	}
	if m.Src.IsValid() {
		parts = append(parts, src+m.Src.String())
	}
	if m.Dst.IsValid() {
		parts = append(parts, dst+m.Dst.String())
	}
	if m.TCPDst != 0 {
		parts = append(parts, "tp_dst="+strconv.Itoa(int(m.TCPDst)))
	}
	return strings.Join(parts, ",")
}

// renderActions prints instructions in the order OpenFlow 1.3 executes them
// (§5.9: apply-actions, write-metadata, goto-table), the order ovs-ofctl
// requires.
func renderActions(a Actions) string {
	var parts []string
	if a.Output != 0 {
		parts = append(parts, renderPort(a.Output))
	}
	if a.WriteMetadataMask != 0 {
		parts = append(parts, fmt.Sprintf("write_metadata:%#x/%#x", a.WriteMetadata, a.WriteMetadataMask))
	}
	if a.Goto {
		parts = append(parts, "goto_table:"+strconv.Itoa(int(a.GotoTable)))
	}
	if len(parts) == 0 {
		return "drop"
	}
	return strings.Join(parts, ",")
}

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
	var b strings.Builder
	for _, f := range sorted {
		b.WriteString(Render(f))
		b.WriteByte('\n')
	}
	return b.String()
}

// RenderChange prints a change as "add ...", "modify ..." or "delete ...";
// a delete shows the whole flow being removed (it is deleted strictly by
// table, priority and match).
func RenderChange(c Change) string { return c.Op.String() + " " + Render(c.Flow) }
