#!/usr/bin/env bash
# Runs the op25b chaos soak (lab/soak.py) as root in a network namespace of
# its own, where it starts its own ovsdb-server and ovs-vswitchd: nothing it
# does (restarting ovs-vswitchd included) touches the host's Open vSwitch or
# other tests. `make soak` calls this. SOAK_DURATION (default 30m),
# SOAK_SEED (default: random, printed), SOAK_KEEP=1 keeps the records of a
# clean run too (a failed run's are always kept, under /tmp/op25b-soak).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH" GOFLAGS=-mod=readonly

if [ "$(id -u)" -ne 0 ]; then
	echo "lab/soak.sh: Mininet needs root" >&2
	exit 2
fi
ns="op25b-soak-$$"
ip netns add "$ns"
trap 'ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null; ip netns del "$ns" 2>/dev/null || true' EXIT
ip netns exec "$ns" ip link set lo up
# Debian's interpreter: the mininet module is installed for it only.
SOAK_NETNS="$ns" ip netns exec "$ns" /usr/bin/python3 lab/soak.py "$@"
