package topology

import (
	"fmt"
	"time"
)

// ParseTime parses an instant of the policy document ("from" of a phase,
// and every other time a document carries) as strict RFC 3339 date-time
// (RFC 3339 §5.6):
//
//	YYYY-MM-DDTHH:MM:SS[.F+](Z|+HH:MM|-HH:MM)
//
// Go's time.Parse(time.RFC3339, …) is looser than the RFC: it accepts a
// one-digit hour ("T0:00:00"), a ',' before the fraction, and offsets such
// as +24:00 or +09:60 that are not times of day. A document that says
// something the RFC does not define must be refused, not interpreted, so
// every byte is checked here first and time.Parse only converts.
//
// Also refused, with a reason: a lower-case 't'/'z' or a space instead of
// 'T' (the RFC permits them only as a note; operators' tools disagree on
// them), more than 9 fractional digits (finer than a nanosecond), and a
// leap second (:60), which Go cannot represent.
func ParseTime(s string) (time.Time, error) {
	if p := timeProblem(s); p != "" {
		return time.Time{}, fmt.Errorf("%q is not an RFC 3339 time (e.g. 2006-12-01T00:00:00+09:00): %s", truncate(s), p)
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		// Unreachable for input timeProblem accepts; kept as a guard.
		return time.Time{}, fmt.Errorf("%q is not an RFC 3339 time: %v", truncate(s), err)
	}
	return t, nil
}

// timeProblem returns why s is not strict RFC 3339 date-time, or "".
func timeProblem(s string) string {
	// Fixed part: "2006-01-02T15:04:05" is 19 bytes; the shortest offset is "Z".
	if len(s) < 20 {
		if len(s) == 10 {
			return "a date alone is not an instant: add the time and the UTC offset (T00:00:00+09:00)"
		}
		return "too short"
	}
	digits := func(from, n int) (int, bool) {
		v := 0
		for i := from; i < from+n; i++ {
			c := s[i]
			if c < '0' || c > '9' {
				return 0, false
			}
			v = v*10 + int(c-'0')
		}
		return v, true
	}
	year, ok := digits(0, 4)
	if !ok || s[4] != '-' {
		return "the date must be YYYY-MM-DD with a four-digit year"
	}
	month, ok := digits(5, 2)
	if !ok || s[7] != '-' {
		return "the month must be two digits followed by '-'"
	}
	day, ok := digits(8, 2)
	if !ok {
		return "the day must be two digits"
	}
	if month < 1 || month > 12 {
		return fmt.Sprintf("month %02d is out of range 01..12", month)
	}
	if day < 1 || day > daysIn(year, month) {
		return fmt.Sprintf("day %02d does not exist in %04d-%02d", day, year, month)
	}
	if s[10] != 'T' {
		return "the date and the time must be separated by an upper-case 'T'"
	}
	hour, ok1 := digits(11, 2)
	minute, ok2 := digits(14, 2)
	second, ok3 := digits(17, 2)
	if !ok1 || !ok2 || !ok3 || s[13] != ':' || s[16] != ':' {
		return "the time must be HH:MM:SS with two digits each"
	}
	switch {
	case hour > 23:
		return fmt.Sprintf("hour %02d is out of range 00..23", hour)
	case minute > 59:
		return fmt.Sprintf("minute %02d is out of range 00..59", minute)
	case second == 60:
		return "leap seconds (:60) cannot be represented; use :59"
	case second > 59:
		return fmt.Sprintf("second %02d is out of range 00..59", second)
	}
	i := 19
	if s[i] == '.' {
		j := i + 1
		for j < len(s) && s[j] >= '0' && s[j] <= '9' {
			j++
		}
		switch n := j - i - 1; {
		case n == 0:
			return "a '.' must be followed by fractional-second digits"
		case n > 9:
			return fmt.Sprintf("%d fractional digits; at most 9 (nanoseconds)", n)
		}
		i = j
	} else if s[i] == ',' {
		return "the fraction must follow a '.', not a ','"
	}
	rest := s[i:]
	switch {
	case rest == "Z":
		return ""
	case rest == "z":
		return "the UTC designator must be an upper-case 'Z'"
	case len(rest) == 6 && (rest[0] == '+' || rest[0] == '-') && rest[3] == ':':
		oh, ok1 := digits(i+1, 2)
		om, ok2 := digits(i+4, 2)
		switch {
		case !ok1 || !ok2:
			return "the offset must be +HH:MM or -HH:MM"
		case oh > 23:
			return fmt.Sprintf("offset hour %02d is out of range 00..23", oh)
		case om > 59:
			return fmt.Sprintf("offset minute %02d is out of range 00..59", om)
		}
		return ""
	case rest == "":
		return "the UTC offset is missing (Z, +HH:MM or -HH:MM)"
	}
	return "the UTC offset must be Z, +HH:MM or -HH:MM and end the time"
}

func daysIn(year, month int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}
