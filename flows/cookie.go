package flows

// Cookie layout, the one place it is defined. The top 16 bits are op25b's
// marker; the controller dumps and owns exactly the flows whose cookie
// matches CookieMarker under CookieMask and never touches any other flow.
const (
	CookieMarker uint64 = 0x25b0 << 48
	CookieMask   uint64 = 0xffff << 48
)

// Owned reports whether a cookie carries op25b's marker.
func Owned(cookie uint64) bool { return cookie&CookieMask == CookieMarker }
