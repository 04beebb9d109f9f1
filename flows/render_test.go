package flows

import (
	"net/netip"
	"testing"
)

func TestRender(t *testing.T) {
	for _, tt := range []struct {
		f    Flow
		want string
	}{
		{Flow{Table: 0, Priority: 100, Cookie: CookieMarker | 1, Match: Match{EthType: EthTypeIPv6, IPProto: IPProtoTCP, TCPDst: 25}, Actions: Actions{Goto: true, GotoTable: 1}},
			"table=0, priority=100, cookie=0x25b0000000000001, tcp6,tp_dst=25 actions=goto_table:1"},
		{Flow{Table: 1, Priority: 1016, Cookie: CookieMarker | 2, Match: Match{EthType: EthTypeIPv4, Src: netip.MustParsePrefix("10.1.0.0/16")},
			Actions: Actions{WriteMetadata: 0x500000007, WriteMetadataMask: metadataAll, Goto: true, GotoTable: 2}},
			"table=1, priority=1016, cookie=0x25b0000000000002, ip,nw_src=10.1.0.0/16 actions=write_metadata:0x500000007/0xffffffffffffffff,goto_table:2"},
		{Flow{Table: 2, Priority: 3000, Cookie: CookieMarker, Match: Match{EthType: EthTypeIPv6, Metadata: 7, MetadataMask: metadataService, Dst: netip.MustParsePrefix("2001:db8:25::/64")},
			Actions: Actions{Output: PortNormal}},
			"table=2, priority=3000, cookie=0x25b0000000000000, ipv6,metadata=0x7/0xffffffff,ipv6_dst=2001:db8:25::/64 actions=NORMAL"},
		{Flow{Table: 3, Cookie: CookieMarker}, "table=3, priority=0, cookie=0x25b0000000000000 actions=drop"},
		{Flow{Table: 5, Priority: 1, Cookie: 1, Match: Match{EthType: 0x0806}, Actions: Actions{Output: 3}},
			"table=5, priority=1, cookie=0x1, dl_type=0x0806 actions=output:3"},
		{Flow{Table: 5, Priority: 1, Cookie: 1, Match: Match{EthType: EthTypeIPv4, IPProto: 17}, Actions: Actions{Output: portLocal, Goto: true, GotoTable: 9}},
			"table=5, priority=1, cookie=0x1, ip,nw_proto=17 actions=LOCAL,goto_table:9"},
	} {
		if got := Render(tt.f); got != tt.want {
			t.Errorf("Render =\n  %s\nwant\n  %s", got, tt.want)
		}
	}
	f := Flow{Table: 3, Cookie: CookieMarker}
	for op, want := range map[Op]string{OpAdd: "add ", OpModify: "modify ", OpDelete: "delete "} {
		if got := RenderChange(Change{Op: op, Flow: f}); got != want+Render(f) {
			t.Errorf("RenderChange(%v) = %q", op, got)
		}
	}
	if got := RenderSet([]Flow{{Table: 3}, {Table: 0, Priority: 5}, {Table: 0, Priority: 9}}); got !=
		"table=0, priority=9, cookie=0x0 actions=drop\ntable=0, priority=5, cookie=0x0 actions=drop\ntable=3, priority=0, cookie=0x0 actions=drop\n" {
		t.Errorf("RenderSet order:\n%s", got)
	}
}
