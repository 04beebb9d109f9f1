package flows

// Cookie layout, the one place it is defined (64 bits, most significant
// first):
//
//	63..48  marker  0x25b0: op25b owns the flow
//	47..40  table   the flow's OpenFlow table number
//	39..38  role    which stage of op25b's pipeline the flow belongs to
//	                (0 classifier, 1 source pool, 2 destination, 3 drop count
//	                and the offender table behind it, see below)
//	37..0   hash    38 bits of a hash of (priority, match) (hashKey)
//
// The controller dumps and owns exactly the flows whose cookie matches
// CookieMarker under CookieMask and never touches any other flow.
//
// The offender table (RoleOffender, FirstTable+4) holds a few op25b flows,
// whose cookies follow the layout above with role bits 3 (the two role bits
// are full, and a wider role field would change the cookie, and so force a
// reinstall, of every flow already on the switches; the offender table only
// drops and counts, like the drop-count table, so Diff orders both alike),
// and the flows OVS learns there for each (source, destination) pair. A
// learned flow carries LearnedCookie, whose marker 0x25b1 is not
// CookieMarker: reconcile, audit and the flow diff never see or delete it,
// and a flow monitor tells it apart by its cookie or its table.
//
//	63..48  marker  0x25b1: learned by an op25b learn action
//	47..6   zero
//	5..0    bucket  which of the offender table's learn actions learned it
//
// OVS's learn limit counts the flows in the table that share the learn
// action's cookie, and counts them by walking them all, for every flow it
// learns: with one cookie and tens of thousands of learned flows, learning
// slowed to about 1,000 flows per second here (BENCHMARKS.md "offender
// storm"). So the offender table has OffenderBuckets learn actions per
// address family, chosen by the low bits of the TCP source port (random
// per connection), each with its own cookie and a share of the limit: the
// walk is OffenderBuckets times shorter and the buckets together still
// bound the table. Nothing else is in the cookie: the pool a learned flow
// counts for is in its match (the metadata's pool id), and whether its pool
// is in observe mode is read from the desired flows when the counters are
// collected (OffenderPools): a learn that finds its flow already present
// only refreshes it (and would overwrite its cookie), so a mode bit in the
// cookie would be no more exact.
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
	// LearnedCookie is the marker of every flow learned in the offender
	// table (the learn actions' cookie=, plus their bucket).
	LearnedCookie uint64 = 0x25b1 << 48
	// OffenderBuckets is how many learn actions per address family share
	// the offender table's limit.
	OffenderBuckets = 64

	cookieTableShift = 40
	cookieRoleShift  = 38
	cookieHashMask   = 1<<cookieRoleShift - 1
)

// Owned reports whether a cookie carries op25b's marker.
func Owned(cookie uint64) bool { return cookie&CookieMask == CookieMarker }

// Learned reports whether a cookie is that of a flow learned in the
// offender table.
func Learned(cookie uint64) bool { return cookie&CookieMask == LearnedCookie }

// Role is the stage of op25b's pipeline a flow belongs to, relative to
// Options.FirstTable.
type Role uint8

// Pipeline stages; the table of a flow with role R is FirstTable+R.
const (
	RoleClassifier  Role = 0 // L4 port: SMTP-bound or not
	RoleSource      Role = 1 // source pool, longest prefix wins
	RoleDestination Role = 2 // relay / blocked destination per service
	RoleDropCount   Role = 3 // per-pool drop, for counters
	// RoleOffender is the offender table: the drop-count flows resubmit
	// there, and its learn actions add one counting flow per (source,
	// destination) pair. Its flows' cookies carry role bits 3 (see above):
	// CookieRole reports RoleDropCount for them.
	RoleOffender Role = 4
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
	case RoleOffender:
		return "offender"
	}
	return "unknown"
}

// CookieRole extracts the pipeline role from an op25b cookie; flows of the
// offender table report RoleDropCount (see above).
func CookieRole(cookie uint64) Role { return Role(cookie >> cookieRoleShift & 3) }

// cookieFor computes the cookie of a flow from its identity.
func cookieFor(table uint8, role Role, priority uint16, m Match) uint64 {
	bits := uint64(role)
	if role == RoleOffender {
		bits = uint64(RoleDropCount)
	}
	return CookieMarker | uint64(table)<<cookieTableShift | bits<<cookieRoleShift |
		hashKey(priority, m)&cookieHashMask
}

// hashKey mixes a fixed encoding of (priority, match) word by word
// (multiply-xorshift, the finaliser of SplitMix64), written out field by
// field so that hashing 100k flows allocates nothing. It must never change
// between releases without a migration: cookies of installed flows depend
// on it.
func hashKey(priority uint16, m Match) uint64 {
	src, dst := wordsOf(m.Src), wordsOf(m.Dst)
	h := uint64(0x25b0_25b0_25b0_25b0)
	for _, w := range [...]uint64{
		uint64(priority)<<48 | uint64(m.EthType)<<32 | uint64(m.IPProto)<<24 | uint64(m.TCPDst)<<8,
		src.hi, src.lo, uint64(src.bits) | uint64(dst.bits)<<8,
		dst.hi, dst.lo, m.Metadata, m.MetadataMask,
	} {
		h = mix64(h ^ w)
	}
	// Mixed in only when matched, so the cookies of every flow that does
	// not match these fields are what they were before the fields existed.
	if m.TCPFlagsMask != 0 {
		h = mix64(h ^ (uint64(m.TCPFlags)<<16 | uint64(m.TCPFlagsMask) | 0x25b1<<48))
	}
	if m.TCPSrcMask != 0 {
		h = mix64(h ^ (uint64(m.TCPSrc)<<16 | uint64(m.TCPSrcMask) | 0x25b2<<48))
	}
	return h
}

func mix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}
