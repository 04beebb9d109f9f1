package topology

import (
	"strings"
	"testing"
	"time"
)

// Regression (issue 11, "Dates that are not RFC 3339 are stored"): the
// probe stored phases whose "from" was +09:60, +24:00, a ',5' fraction or
// T0:00:00, all of which Go's time.Parse(time.RFC3339) lets through.
func TestRegressionDatesThatAreNotRFC3339AreStored(t *testing.T) {
	for _, from := range []string{
		"2026-12-01T00:00:00+09:60",
		"2026-12-01T00:00:00+24:00",
		"2026-12-01T00:00:00,5+09:00",
		"2026-12-01T0:00:00+09:00",
	} {
		if _, err := ParseTime(from); err == nil {
			t.Errorf("ParseTime(%q) accepted", from)
		}
		doc := validDoc()
		doc.Services[0].Phases[0].From = from
		err := Validate(doc)
		if err == nil || !strings.Contains(err.Error(), "services[0].phases[0].from") {
			t.Errorf("Validate with from=%q: %v, want an error on services[0].phases[0].from", from, err)
		}
		// An unvalidated document never activates such a phase either.
		doc.Services[0].Phases = doc.Services[0].Phases[:1]
		if ph, ok := doc.ActivePhase(doc.Services[0].Name, "", time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)); ok {
			t.Errorf("ActivePhase used a phase starting %q: %+v", from, ph)
		}
	}
}

func TestParseTime(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string // RFC3339Nano of the result in UTC, "" = refused
		why  string // part of the error
	}{
		{"2006-12-01T00:00:00+09:00", "2006-11-30T15:00:00Z", ""},
		{"2006-12-01T00:00:00Z", "2006-12-01T00:00:00Z", ""},
		{"2006-12-01T00:00:00-00:00", "2006-12-01T00:00:00Z", ""},
		{"2006-12-01T23:59:59.123456789+23:59", "2006-12-01T00:00:59.123456789Z", ""},
		{"2006-12-01T00:00:00.5Z", "2006-12-01T00:00:00.5Z", ""},
		{"2024-02-29T00:00:00Z", "2024-02-29T00:00:00Z", ""},
		{"2000-02-29T00:00:00Z", "2000-02-29T00:00:00Z", ""},
		{"9999-12-31T23:59:59Z", "9999-12-31T23:59:59Z", ""},

		{"2026-12-01T00:00:00+09:60", "", "offset minute 60"},
		{"2026-12-01T00:00:00+24:00", "", "offset hour 24"},
		{"2026-12-01T00:00:00,5+09:00", "", "not a ','"},
		{"2026-12-01T0:00:00+09:00", "", "HH:MM:SS"},
		{"2026-12-01T00:00:00.+09:00", "", "fractional-second digits"},
		{"2026-12-01T00:00:00.1234567890Z", "", "at most 9"},
		{"2026-12-01t00:00:00Z", "", "upper-case 'T'"},
		{"2026-12-01 00:00:00Z", "", "upper-case 'T'"},
		{"2026-12-01T00:00:00z", "", "upper-case 'Z'"},
		{"2026-12-01T00:00:00", "", "too short"},
		{"2026-12-01T00:00:00+0900", "", "offset must be"},
		{"2026-12-01T00:00:00+09:00 ", "", "offset must be"},
		{"2026-12-01T00:00:00+9:00x", "", "offset must be"},
		{"2026-12-01T00:00:60Z", "", "leap second"},
		{"2026-12-01T24:00:00Z", "", "hour 24"},
		{"2026-12-01T00:60:00Z", "", "minute 60"},
		{"2026-13-01T00:00:00Z", "", "month 13"},
		{"2026-00-01T00:00:00Z", "", "month 00"},
		{"2025-02-29T00:00:00Z", "", "day 29 does not exist"},
		{"1900-02-29T00:00:00Z", "", "day 29 does not exist"},
		{"2026-04-31T00:00:00Z", "", "day 31 does not exist"},
		{"2026-12-00T00:00:00Z", "", "day 00"},
		{"26-12-01T00:00:00Z-xx", "", "four-digit year"},
		{"+2026-12-01T00:00:00Z", "", "four-digit year"},
		{"２０２６-12-01T00:00:00Z", "", "four-digit year"},
		{"", "", "too short"},
	} {
		got, err := ParseTime(tc.in)
		if tc.want == "" {
			if err == nil {
				t.Errorf("ParseTime(%q) = %v, want an error", tc.in, got)
			} else if !strings.Contains(err.Error(), tc.why) {
				t.Errorf("ParseTime(%q): %v, want it to say %q", tc.in, err, tc.why)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseTime(%q): %v", tc.in, err)
			continue
		}
		if s := got.UTC().Format(time.RFC3339Nano); s != tc.want {
			t.Errorf("ParseTime(%q) = %s, want %s", tc.in, s, tc.want)
		}
	}
}

// FuzzParseTime: whatever ParseTime accepts, Go's own RFC 3339 parser
// accepts too and reads as the same instant; no panic on anything.
func FuzzParseTime(f *testing.F) {
	for _, s := range []string{"2006-12-01T00:00:00+09:00", "2026-12-01T00:00:00,5+09:00", "2006-12-01T23:59:59.123456789Z", "2026-12-01T0:00:00Z"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseTime(s)
		if err != nil {
			return
		}
		ref, rerr := time.Parse(time.RFC3339Nano, s)
		if rerr != nil || !ref.Equal(got) {
			t.Fatalf("ParseTime(%q) = %v but time.Parse says %v, %v", s, got, ref, rerr)
		}
	})
}
