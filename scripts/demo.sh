#!/usr/bin/env bash
# make demo: one op25bd on its embedded etcd enforcing examples/policy.json on a
# real netdev bridge; prints what OVS itself decides for each case of docs/semantics.md
# (ovs-appctl ofproto/trace), then the installed flows, then stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."

BR=op25b-demo
DPID=00000000000000d1
OF_PORT=16653
API=127.0.0.1:18080
WORK=$(mktemp -d /tmp/op25b-demo.XXXXXX)
DAEMON_PID=""

cleanup() {
	[ -n "$DAEMON_PID" ] && kill "$DAEMON_PID" 2>/dev/null && wait "$DAEMON_PID" 2>/dev/null || true
	ovs-vsctl --timeout=5 --if-exists del-br "$BR" || true
	rm -rf "$WORK"
}
trap cleanup EXIT

ovs-vsctl --timeout=5 --if-exists del-br "$BR"
ovs-vsctl --timeout=5 add-br "$BR" -- set bridge "$BR" datapath_type=netdev \
	other-config:datapath-id=$DPID protocols=OpenFlow13 fail-mode=secure
for p in 1 2; do
	ovs-vsctl --timeout=5 add-port "$BR" "$BR-p$p" -- set interface "$BR-p$p" type=internal ofport_request=$p
done

bin/op25bd --openflow-listen 127.0.0.1:$OF_PORT --api-listen $API \
	--data-dir "$WORK/data" --node-id demo --audit-interval 5s --log-level warn \
	>"$WORK/op25bd.log" 2>&1 &
DAEMON_PID=$!
ovs-vsctl --timeout=5 set-controller "$BR" tcp:127.0.0.1:$OF_PORT

CTL=(bin/op25bctl --server "http://$API")
for _ in $(seq 1 100); do curl -fsS "http://$API/readyz" >/dev/null 2>&1 && break; sleep 0.2; done

echo "== op25bctl apply -f examples/policy.json"
out=$("${CTL[@]}" apply -f examples/policy.json -o json)
echo "$out"
rev=$(echo "$out" | sed -n 's/.*"revision": *\([0-9]*\).*/\1/p')
# --wait-revision only waits for connected bridges: first wait for ours to connect.
for _ in $(seq 1 150); do
	"${CTL[@]}" status -o json | grep -q '"connected": *true' && break
	sleep 0.2
done
"${CTL[@]}" status --wait-revision "$rev" --timeout 30s

echo
echo "== verdicts from OVS itself (ovs-appctl ofproto/trace), docs/semantics.md"
printf '%-34s %-20s %-6s %-8s %-8s\n' SOURCE DESTINATION PORT EXPECTED OBSERVED
check() { # src dst port expected
	local fam=tcp srcf=nw_src dstf=nw_dst
	case $1 in *:*) fam=tcp6 srcf=ipv6_src dstf=ipv6_dst ;; esac
	local act
	act=$(ovs-appctl ofproto/trace "$BR" "$fam,in_port=1,$srcf=$1,$dstf=$2,tp_dst=$3" | sed -n 's/^Datapath actions: //p')
	local seen=forward; [ "$act" = drop ] && seen=drop
	printf '%-34s %-20s %-6s %-8s %-8s\n' "$1" "$2" "$3" "$4" "$seen"
}
check 10.1.2.3       203.0.113.25  25  drop      # dynamic → outside MX
check 10.1.2.3       192.0.2.25    25  forward   # dynamic → ISP relay
check 10.1.2.3       203.0.113.25  587 forward   # submission port untouched
check 10.1.2.3       203.0.113.25  465 forward
check 10.1.200.3     203.0.113.25  25  forward   # static /29 inside the dynamic /16
check 172.16.0.9     203.0.113.25  25  forward   # not a subscriber address
check 2001:db8:1::10 2001:db8:ffff::25 25 drop   # v6plus blocks all…
check 2001:db8:1::10 2001:db8:2::25 25 drop
check 2001:db8:1::10 2001:db8:2::25 587 forward

echo
echo "== installed flows of $BR (ovs-ofctl -O OpenFlow13 dump-flows)"
ovs-ofctl -O OpenFlow13 --no-stats dump-flows "$BR"
echo
echo "demo done; stopping op25bd (flows stay on a real switch; this demo deletes its bridge)"
