package topology

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
)

func TestParseDPID(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    DPID
		problem string // part of the error, "" = valid
	}{
		{"0000000000000001", "0000000000000001", ""},
		{"00000000000000ab", "00000000000000ab", ""},
		{"00000000000000AB", "00000000000000ab", ""},
		{"0000000000000A0b", "0000000000000a0b", ""},
		{"FFFFFFFFFFFFFFFF", "ffffffffffffffff", ""},
		{"", "", "dpid is required"},
		{"1", "", "exactly 16 hex digits"},
		{"0x00000000000001", "", "exactly 16 hex digits"},
		{"00:00:00:00:00:00:00:01", "", "no colons"},
		{"000000000000000g", "", "16 hex digits"},
		{"00000000000000001", "", "exactly 16 hex digits"},
		{" 000000000000001", "", "16 hex digits"},
		{"000000000000000\u00e9", "", "16 hex digits"},
	} {
		got, err := ParseDPID(tc.in)
		switch {
		case tc.problem == "" && (err != nil || got != tc.want):
			t.Errorf("ParseDPID(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		case tc.problem != "" && (err == nil || !strings.Contains(err.Error(), tc.problem)):
			t.Errorf("ParseDPID(%q) = %q, %v; want an error containing %q", tc.in, got, err, tc.problem)
		}
	}
}

func TestDPIDFromUint64(t *testing.T) {
	for _, tc := range []struct {
		id   uint64
		want DPID
	}{
		{0, "0000000000000000"},
		{1, "0000000000000001"},
		{0xab, "00000000000000ab"},
		{0xFEDCBA9876543210, "fedcba9876543210"},
		{^uint64(0), "ffffffffffffffff"},
	} {
		if got := DPIDFromUint64(tc.id); got != tc.want {
			t.Errorf("DPIDFromUint64(%#x) = %q, want %q", tc.id, got, tc.want)
		}
		if back, err := ParseDPID(string(tc.want)); err != nil || back != tc.want {
			t.Errorf("ParseDPID(%q) = %q, %v", tc.want, back, err)
		}
	}
}

// TestDPIDJSON: on the wire a DPID is a plain string; encoding/json (API
// bodies, status records) parses it strictly.
func TestDPIDJSON(t *testing.T) {
	out, err := json.Marshal(struct {
		DPID DPID `json:"dpid"`
	}{"00000000000000ab"})
	if err != nil || string(out) != `{"dpid":"00000000000000ab"}` {
		t.Fatalf("Marshal = %s, %v", out, err)
	}
	var v struct {
		DPID DPID `json:"dpid"`
	}
	if err := json.Unmarshal([]byte(`{"dpid":"00000000000000AB"}`), &v); err != nil || v.DPID != "00000000000000ab" {
		t.Errorf("Unmarshal upper case = %q, %v", v.DPID, err)
	}
	for _, bad := range []string{`{"dpid":"1"}`, `{"dpid":""}`, `{"dpid":1}`} {
		if err := json.Unmarshal([]byte(bad), &v); err == nil {
			t.Errorf("Unmarshal(%s) accepted: %q", bad, v.DPID)
		}
	}
}

// TestDocumentDPIDs: the document decoders canonicalize a bridge's dpid,
// and keep one that does not parse for Validate to report with its path.
func TestDocumentDPIDs(t *testing.T) {
	const tmpl = `{"pools": [], "relays": [], "destinations": [], "services": [],
	  "bridges": [{"dpid": %s, "name": "b", "pop": "p"}]}`
	for _, tc := range []struct {
		dpid string
		want DPID
		err  string // Validate's message for bridges[0].dpid, "" = valid
	}{
		{"00000000000000AB", "00000000000000ab", ""},
		{"00000000000000ab", "00000000000000ab", ""},
		{"1", "1", "exactly 16 hex digits"},
		{"", "", "dpid is required"},
	} {
		jsonDoc := strings.Replace(tmpl, "%s", strconv.Quote(tc.dpid), 1)
		yamlDoc := "bridges:\n- {dpid: " + strconv.Quote(tc.dpid) + ", name: b, pop: p}\n"
		for _, in := range []string{jsonDoc, yamlDoc} {
			doc, err := Parse([]byte(in))
			if err != nil {
				t.Fatalf("Parse(%s): %v", in, err)
			}
			if got := doc.Bridges[0].DPID; got != tc.want {
				t.Errorf("Parse(%s): dpid %q, want %q", in, got, tc.want)
			}
			err = Validate(doc)
			if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), "bridges[0].dpid: ") ||
				!strings.Contains(err.Error(), tc.err)) {
				t.Errorf("Validate(%s) = %v, want %q", in, err, tc.err)
			}
		}
		var b Bridge
		if err := ParseJSONItem([]byte(`{"dpid": `+strconv.Quote(tc.dpid)+`}`), &b); err != nil || b.DPID != tc.want {
			t.Errorf("ParseJSONItem: %q, %v; want %q", b.DPID, err, tc.want)
		}
	}
	// An unquoted YAML dpid that reads as a number is still its text.
	doc, err := ParseYAML([]byte("bridges:\n- {dpid: 0000000000000001, name: b, pop: p}\n"))
	if err != nil || doc.Bridges[0].DPID != "0000000000000001" {
		t.Errorf("unquoted YAML dpid: %+v, %v", doc, err)
	}
	if _, err := ParseYAML([]byte("bridges:\n- {dpid: [1], name: b, pop: p}\n")); err == nil ||
		!strings.Contains(err.Error(), "expected a string") {
		t.Errorf("YAML list as dpid: %v", err)
	}
}

// FuzzParseDPID: ParseDPID never panics, accepts exactly the 16-hex-digit
// strings, and what it returns is canonical: it parses to itself, equals
// the text lower-cased, and round-trips through its 64-bit value.
func FuzzParseDPID(f *testing.F) {
	for _, s := range []string{"0000000000000001", "00000000000000AB", "ffffffffffffffff", "", "1",
		"0x00000000000001", "000000000000000g", "00000000000000000", "ＦＦ"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDPID(s)
		id, perr := strconv.ParseUint(s, 16, 64)
		valid := len(s) == 16 && perr == nil && !strings.ContainsAny(s, "+-_")
		if (err == nil) != valid {
			t.Fatalf("ParseDPID(%q) = %q, %v; want valid=%v", s, d, err, valid)
		}
		if err != nil {
			return
		}
		if string(d) != strings.ToLower(s) {
			t.Fatalf("ParseDPID(%q) = %q, not the lower-case text", s, d)
		}
		if again, err := ParseDPID(string(d)); err != nil || again != d {
			t.Fatalf("ParseDPID(%q) = %q, %v: not canonical", d, again, err)
		}
		if DPIDFromUint64(id) != d {
			t.Fatalf("DPIDFromUint64(%#x) = %q, want %q", id, DPIDFromUint64(id), d)
		}
	})
}
