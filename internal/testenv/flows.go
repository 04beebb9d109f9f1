package testenv

import (
	"regexp"
	"sort"
	"strings"
	"testing"
)

// ownedCookie selects op25b's flows by their cookie marker (flows.CookieMarker
// under flows.CookieMask). testenv cannot import flows: flows' own tests
// import testenv.
const ownedCookie = "cookie=0x25b0000000000000/0xffff000000000000"

var flowStats = regexp.MustCompile(`(duration|n_packets|n_bytes|idle_age|hard_age)=[^,]*, ?`)

// OwnedFlows is the bridge's op25b flow table in ovs-ofctl syntax without
// counters or ages, sorted: equal before and after means no flow was
// removed, added or changed.
func (b Bridge) OwnedFlows(t testing.TB) string {
	t.Helper()
	out := b.Ofctl(t, "dump-flows", b.Name, ownedCookie)
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		if l = strings.TrimSpace(flowStats.ReplaceAllString(l, "")); strings.HasPrefix(l, "cookie=") {
			lines = append(lines, l)
		}
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}
