#!/usr/bin/env bash
# Runs the op25b Mininet lab (lab/lab.py) as root; `make lab-test` and
# `make demo` call this. Arguments are passed to lab.py, plus:
#   --demo   one op25bd on its embedded etcd if bin/ has been built (static
#            flows otherwise), the reachability matrix only, and the installed
#            flows of one bridge.
# Environment: LAB_MN_CLEANUP=1 adds a final `mn -c` (only where nothing else
# uses Open vSwitch, e.g. a dedicated CI job: `mn -c` deletes every bridge).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH" GOFLAGS=-mod=mod

if [ "$(id -u)" -ne 0 ]; then
	echo "lab/run.sh: Mininet needs root" >&2
	exit 2
fi
if ! ovs-vsctl --timeout=2 show >/dev/null 2>&1; then
	/usr/share/openvswitch/scripts/ovs-ctl start --system-id=random 2>&1 | grep -v ulimit || true
	ovs-vsctl --timeout=5 show >/dev/null
fi

args=()
for a in "$@"; do
	if [ "$a" = "--demo" ]; then
		if ! [ -x bin/op25bd ] || ! [ -x bin/op25bctl ]; then
			echo "lab/run.sh: bin/ not built, the demo uses static flows compiled by flows.Compile" >&2
		fi
		args+=(--replicas 1 --suite matrix --show-flows)
	else
		args+=("$a")
	fi
done
if [ "${LAB_MN_CLEANUP:-}" = 1 ]; then
	args+=(--mn-cleanup)
fi
# Debian's interpreter: the mininet module is installed for it only.
exec /usr/bin/python3 lab/lab.py "${args[@]}"
