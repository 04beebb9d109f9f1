package main

import (
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/op25b/op25b/api"
	"github.com/op25b/op25b/api/apitypes"
	"github.com/op25b/op25b/flows"
	"github.com/op25b/op25b/internal/testenv"
	"github.com/op25b/op25b/topology"
	"github.com/op25b/op25b/topology/store"
)

func TestParseDestination(t *testing.T) {
	for _, tc := range []struct {
		in, addr string
		port     int
		bad      bool
	}{
		{"203.0.113.25", "203.0.113.25", 25, false},
		{"203.0.113.25:587", "203.0.113.25", 587, false},
		{"2001:db8::25", "2001:db8::25", 25, false},
		{"[2001:db8::25]:465", "2001:db8::25", 465, false},
		{"[2001:db8::25]", "", 0, true},
		{"203.0.113.25:0", "", 0, true},
		{"203.0.113.25:70000", "", 0, true},
		{"mx.example.net:25", "", 0, true},
		{"203.0.113.0/24", "", 0, true},
	} {
		a, port, err := parseDestination(tc.in)
		if tc.bad != (err != nil) || !tc.bad && (a.String() != tc.addr || port != tc.port) {
			t.Errorf("parseDestination(%q) = %s, %d, %v", tc.in, a, port, err)
		}
	}
}

func TestOverrideArguments(t *testing.T) {
	for _, tc := range []struct{ in, prefix, name, err string }{
		{"10.1.3.7", "10.1.3.7/32", "exempt-10-1-3-7-32", ""},
		{"10.1.3.0/24", "10.1.3.0/24", "exempt-10-1-3-0-24", ""},
		{"2001:db8:1::9", "2001:db8:1::9/128", "exempt-2001-db8-1--9-128", ""},
		{"2001:DB8:1::/48", "2001:db8:1::/48", "exempt-2001-db8-1---48", ""},
		{"10.1.3.7/24", "", "", "did you mean 10.1.3.0/24?"},
		{"fe80::1%eth0", "", "", "not an address or a CIDR prefix"},
		{"tokyo", "", "", "not an address or a CIDR prefix"},
	} {
		p, err := parseSourcePrefix(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("parseSourcePrefix(%q) = %s, %v; want %q", tc.in, p, err, tc.err)
			}
			continue
		}
		if err != nil || p.String() != tc.prefix {
			t.Errorf("parseSourcePrefix(%q) = %s, %v", tc.in, p, err)
			continue
		}
		name := defaultOverrideName("exempt", p)
		if name != tc.name {
			t.Errorf("defaultOverrideName(%s) = %q, want %q", p, name, tc.name)
		}
		if d := topology.Validate(&topology.Document{Exemptions: []topology.Exemption{{Name: name, Prefix: p.String(),
			Until: "2030-01-01T00:00:00Z", Reason: "r", Ticket: "t"}}}); d != nil {
			t.Errorf("the derived name is not valid: %v", d)
		}
	}
	long := defaultOverrideName("quarantine", mustPrefix(t, "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff/128"))
	if len(long) > 63 {
		t.Errorf("longest derived name %q is %d characters", long, len(long))
	}
	for _, tc := range []struct {
		in   string
		want time.Duration
		bad  bool
	}{
		{"24h", 24 * time.Hour, false},
		{"90m", 90 * time.Minute, false},
		{"14d", 14 * 24 * time.Hour, false},
		{"2w", 14 * 24 * time.Hour, false},
		{"1h30m", 90 * time.Minute, false},
		{"0d", 0, true},
		{"-3d", 0, true},
		{"-1h", 0, true},
		{"0s", 0, true},
		{"3dw", 0, true},
		{"d", 0, true},
		{"99999d", 0, true},
		{"tomorrow", 0, true},
	} {
		d, err := parseLongDuration(tc.in)
		if tc.bad != (err != nil) || d != tc.want {
			t.Errorf("parseLongDuration(%q) = %s, %v", tc.in, d, err)
		}
	}
}

func mustPrefix(t *testing.T, s string) netip.Prefix {
	t.Helper()
	p, err := parseSourcePrefix(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

const helpdeskPolicy = `{
  "pools": [{"name": "tokyo-dyn", "prefix": "10.1.0.0/16", "kind": "dynamic", "service": "ftth"},
            {"name": "tokyo-fixed", "prefix": "10.1.200.0/29", "kind": "static"},
            {"name": "tokyo-v6", "prefix": "2001:db8:1::/48", "kind": "dynamic", "service": "ftth"}],
  "relays": [{"name": "msa", "prefix": "192.0.2.25/32"}],
  "destinations": [],
  "services": [{"name": "ftth", "phases": [{"block": "all", "relays": true}]}],
  "bridges": [{"dpid": "0000000000000001", "name": "tokyo-1-sub-a", "pop": "tokyo-1"}]
}`

// TestCLIHelpdesk: exempt, quarantine, get, explain (human and JSON, IPv4
// and IPv6), delete, and their usage errors, the real binary against the
// real API on a real etcd.
func TestCLIHelpdesk(t *testing.T) {
	bin := filepath.Join(buildBinaries(t), "op25bctl")
	etcd := testenv.EmbeddedEtcd(t)
	st := store.New(etcd.Client, "/op25bctl-helpdesk/", slog.New(slog.DiscardHandler))
	sw := &fakeSwitches{}
	h, err := api.New(api.Config{Store: st, Switches: sw, NodeID: "node-a", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	c := ctl{t: t, bin: bin, env: []string{"OP25B_SERVER=" + srv.URL}}
	c.ok("apply", "-f", writeFile(t, "policy.json", helpdeskPolicy))

	out := c.ok("exempt", "10.1.3.7", "--for", "14d", "--reason", "customer runs a mail server until the fixed-IP move", "--ticket", "4711")
	if !strings.HasPrefix(out, "exempted 10.1.3.7/32 until ") || !strings.Contains(out, "(exemptions/exempt-10-1-3-7-32, ticket 4711)") {
		t.Fatalf("exempt: %q", out)
	}
	until := strings.Fields(out)[3]
	u, err := topology.ParseTime(until)
	if err != nil || u.Sub(time.Now()) < 14*24*time.Hour-time.Minute || u.Sub(time.Now()) > 14*24*time.Hour+time.Minute {
		t.Fatalf("--for 14d gave until %s (%v)", until, err)
	}
	var q map[string]any
	raw := c.ok("quarantine", "10.1.200.3/32", "--until", "2099-01-01T00:00:00+09:00", "--reason", "abuse report", "--ticket", "AB-88", "--name", "bot-fixed", "-o", "json")
	if err := json.Unmarshal([]byte(raw), &q); err != nil || q["quarantine"].(map[string]any)["name"] != "bot-fixed" || q["revision"].(float64) <= 0 {
		t.Fatalf("quarantine -o json: %v %s", err, raw)
	}
	c.ok("quarantine", "2001:db8:1::9", "--for", "36h", "--reason", "abuse report", "--ticket", "AB-89")
	// Renewing the same entry replaces it.
	c.ok("exempt", "10.1.3.7/32", "--for", "2w", "--reason", "extended", "--ticket", "4711")
	table := c.ok("get", "exemptions")
	if !strings.Contains(table, "exempt-10-1-3-7-32") || !strings.Contains(table, "in force") || !strings.Contains(table, "extended") {
		t.Fatalf("get exemptions:\n%s", table)
	}
	table = c.ok("get", "quarantines")
	if !strings.Contains(table, "bot-fixed") || !strings.Contains(table, "quarantine-2001-db8-1--9-128") {
		t.Fatalf("get quarantines:\n%s", table)
	}
	// A lapsed entry is stored (with a warning) and shown as lapsed.
	r := c.run("exempt", "10.1.4.0/24", "--until", "2001-01-01T00:00:00Z", "--reason", "old", "--ticket", "1")
	if r.code != 0 || !strings.Contains(r.stderr, "already lapsed") {
		t.Fatalf("lapsed exempt: %+v", r)
	}
	if table := c.ok("get", "exemptions"); !strings.Contains(table, "lapsed") {
		t.Fatalf("get exemptions:\n%s", table)
	}

	// explain, with the switch holding what the policy says now.
	doc, _, err := st.Load(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	compiled, err := flows.Compile(doc, "0000000000000001", time.Now(), flows.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	sw.mu.Lock()
	sw.flows = compiled.Flows
	sw.mu.Unlock()
	out = c.ok("explain", "10.1.200.3", "192.0.2.25", "--bridge", "tokyo-1-sub-a")
	for _, want := range []string{"drop: 10.1.200.3 -> 192.0.2.25 port 25 at tokyo-1-sub-a (0000000000000001, pop \"tokyo-1\")",
		"  quarantine: bot-fixed (10.1.200.3/32) until 2099-01-01T00:00:00+09:00, ticket AB-88: abuse report",
		"  pool: tokyo-fixed (10.1.200.0/29), static", "installed flows: drop, as the policy says (local)"} {
		if !strings.Contains(out, want) {
			t.Errorf("explain lacks %q:\n%s", want, out)
		}
	}
	out = c.ok("explain", "10.1.3.7", "203.0.113.25:25", "--bridge", "0000000000000001")
	if !strings.HasPrefix(out, "forward:") || !strings.Contains(out, "exemption: exempt-10-1-3-7-32") {
		t.Errorf("explain exempted:\n%s", out)
	}
	out = c.ok("explain", "2001:db8:1::8", "[2001:db8::25]:25", "--bridge", "tokyo-1-sub-a", "--at", "2030-01-01T00:00:00Z")
	if !strings.HasPrefix(out, "drop:") || !strings.Contains(out, "installed flows: not compared") {
		t.Errorf("explain IPv6 at:\n%s", out)
	}
	var x apitypes.Explain
	raw = c.ok("explain", "10.1.3.8", "203.0.113.25:587", "--bridge", "tokyo-1-sub-a", "-o", "json")
	if err := json.Unmarshal([]byte(raw), &x); err != nil || x.Verdict != "forward" || x.Rule != "not-smtp" || x.Port != 587 {
		t.Errorf("explain -o json: %v %s", err, raw)
	}

	c.fails(2, "--bridge is required", "explain", "10.1.3.8", "203.0.113.25")
	c.fails(2, "usage: explain SRC DST[:PORT]", "explain", "10.1.3.8", "--bridge", "x")
	c.fails(2, "DST \"mx.example.net\"", "explain", "10.1.3.8", "mx.example.net", "--bridge", "x")
	c.fails(1, "no bridge is named", "explain", "10.1.3.8", "203.0.113.25", "--bridge", "osaka-9")
	c.fails(1, "different families", "explain", "10.1.3.8", "2001:db8::25", "--bridge", "tokyo-1-sub-a")
	c.fails(2, "--reason and --ticket are required", "quarantine", "10.1.9.9", "--for", "1h", "--ticket", "T")
	c.fails(2, "exactly one of --for and --until", "quarantine", "10.1.9.9", "--reason", "r", "--ticket", "T")
	c.fails(2, "exactly one of --for and --until", "quarantine", "10.1.9.9", "--for", "1h", "--until", "2030-01-01T00:00:00Z", "--reason", "r", "--ticket", "T")
	c.fails(2, "did you mean 10.1.9.0/24?", "quarantine", "10.1.9.9/24", "--for", "1h", "--reason", "r", "--ticket", "T")
	c.fails(2, "--until", "exempt", "10.1.9.9", "--until", "2030-01-01", "--reason", "r", "--ticket", "T")
	c.fails(1, "exemptions[", "exempt", "10.1.9.9", "--for", "1h", "--reason", "r", "--ticket", strings.Repeat("T", 65))

	out = c.ok("delete", "exemption", "exempt-10-1-3-7-32")
	if !strings.HasPrefix(out, "deleted exemptions/exempt-10-1-3-7-32: revision ") {
		t.Fatalf("delete: %q", out)
	}
	c.ok("delete", "quarantines", "bot-fixed")
	c.fails(1, "not_found", "delete", "quarantine", "bot-fixed")
	c.fails(2, "unknown kind", "delete", "widget", "x")
	c.fails(1, "referenced", "delete", "service", "ftth")
	if table := c.ok("get", "exemptions"); strings.Contains(table, "exempt-10-1-3-7-32") {
		t.Fatalf("deleted exemption still listed:\n%s", table)
	}
}
