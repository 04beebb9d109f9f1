package flows

// Cookie layout, the one place it is defined (64 bits, most significant
// first):
//
//	63..48  marker  0x25b0: op25b owns the flow
//	47..40  table   the flow's OpenFlow table number
//	39..38  role    which stage of op25b's pipeline the flow belongs to
//	                (0 classifier, 1 source pool, 2 destination, 3 drop count)
//	37..0   hash    38 bits of FNV-1a over (priority, match)
//
// The controller dumps and owns exactly the flows whose cookie matches
// CookieMarker under CookieMask and never touches any other flow.
//
// Every field is a pure function of (Table, Priority, Match) for a given
// Options.FirstTable, because OpenFlow 1.3 MODIFY leaves an existing entry's
// cookie unchanged (OF1.3 §6.4): a cookie that depended on anything in the
// actions could never be corrected by the modify that changes those actions.
// The role lets Diff order changes make-before-break without being told the
// Options the flows were compiled with; the hash only makes individual flows
// easy to tell apart in dumps.
const (
	CookieMarker uint64 = 0x25b0 << 48
	CookieMask   uint64 = 0xffff << 48

	cookieTableShift = 40
	cookieRoleShift  = 38
	cookieHashMask   = 1<<cookieRoleShift - 1
)

// Owned reports whether a cookie carries op25b's marker.
func Owned(cookie uint64) bool { return cookie&CookieMask == CookieMarker }

// Role is the stage of op25b's pipeline a flow belongs to, relative to
// Options.FirstTable.
type Role uint8

// Pipeline stages; the table of a flow with role R is FirstTable+R.
const (
	RoleClassifier  Role = 0 // L4 port: SMTP-bound or not
	RoleSource      Role = 1 // source pool, longest prefix wins
	RoleDestination Role = 2 // relay / blocked destination per service
	RoleDropCount   Role = 3 // per-pool drop, for counters
)

func (r Role) String() string {
	switch r {
	case RoleClassifier:
		return "classifier"
	case RoleSource:
		return "source"
	case RoleDestination:
		return "destination"
	case RoleDropCount:
		return "drop-count"
	}
	return "unknown"
}

// CookieRole extracts the pipeline role from an op25b cookie.
func CookieRole(cookie uint64) Role { return Role(cookie >> cookieRoleShift & 3) }

// cookieFor computes the cookie of a flow from its identity.
func cookieFor(table uint8, role Role, priority uint16, m Match) uint64 {
	return CookieMarker | uint64(table)<<cookieTableShift | uint64(role)<<cookieRoleShift |
		hashKey(priority, m)&cookieHashMask
}

// hashKey is FNV-1a over a fixed binary encoding of (priority, match),
// written out field by field so that compiling 100k pools allocates nothing
// here.
func hashKey(priority uint16, m Match) uint64 {
	const (
		offset = 14695981039346656037
		prime  = 1099511628211
	)
	h := uint64(offset)
	mix := func(v uint64, n int) {
		for i := 0; i < n; i++ {
			h ^= v & 0xff
			h *= prime
			v >>= 8
		}
	}
	mix(uint64(priority), 2)
	mix(uint64(m.EthType), 2)
	mix(uint64(m.IPProto), 1)
	mix(uint64(m.TCPDst), 2)
	for _, p := range [2]prefixWords{wordsOf(m.Src), wordsOf(m.Dst)} {
		mix(p.hi, 8)
		mix(p.lo, 8)
		mix(uint64(p.bits), 1)
	}
	mix(m.Metadata, 8)
	mix(m.MetadataMask, 8)
	return h
}
