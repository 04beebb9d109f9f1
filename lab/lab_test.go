package lab

import (
	"encoding/json"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/op25b/op25b/flows"
	"github.com/op25b/op25b/topology"
)

// debianPython is the interpreter the Mininet module is installed for.
const debianPython = "/usr/bin/python3"

func loadPolicy(t *testing.T) *topology.Document {
	t.Helper()
	data, err := os.ReadFile("policy.json")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := topology.ParseJSON(data)
	if err != nil {
		t.Fatalf("lab/policy.json: %v", err)
	}
	if err := topology.Validate(doc); err != nil {
		t.Fatalf("lab/policy.json does not validate: %v", err)
	}
	return doc
}

func TestPolicyValidates(t *testing.T) { loadPolicy(t) }

// matrixRow is one row of `lab.py --print-expected`.
type matrixRow struct {
	Src      string        `json:"src"`
	Pop      string        `json:"pop"`
	Server   string        `json:"server"`
	SrcIP    string        `json:"src_ip"`
	Dst      string        `json:"dst"`
	Port     uint16        `json:"port"`
	DPID     topology.DPID `json:"dpid"`
	Expected string        `json:"expected"`
}

// TestExpectationsAgreeWithFlows cross-checks three independent readings of
// the contract on every row of the lab's matrix: lab.py's Python evaluator
// (what the lab expects), flows.Evaluate (the Go reference) and
// flows.Simulate over flows.Compile's output (what the switch would do), at
// instants before, between and after the example rollout's phases. A
// disagreement means the lab would report the wrong thing, or the compiler
// and the contract differ.
func TestExpectationsAgreeWithFlows(t *testing.T) {
	if _, err := os.Stat(debianPython); err != nil {
		t.Skip("no /usr/bin/python3")
	}
	checkExpectations(t, loadPolicy(t), "policy.json", []string{
		"2006-10-01T00:00:00Z",      // before any ftth phase: no blocking for ftth
		"2006-11-15T00:00:00+09:00", // mobile carriers only
		"2006-12-05T00:00:00+09:00", // block all at osaka-1 only
		"2006-12-20T00:00:00+09:00", // block all everywhere
		time.Now().UTC().Format(time.RFC3339),
	})
}

// TestHelpdeskExpectationsAgreeWithFlows: the same three readings for the
// lab policy with what the lab's helpdesk tests add (an exemption for dyn1,
// quarantines for the static host fixed on both families, the lite service
// observing), 1 s before, at and 1 s after the until, in two offsets.
func TestHelpdeskExpectationsAgreeWithFlows(t *testing.T) {
	if _, err := os.Stat(debianPython); err != nil {
		t.Skip("no /usr/bin/python3")
	}
	doc := loadPolicy(t)
	until := "2026-11-30T12:00:00+09:00"
	doc.Exemptions = []topology.Exemption{{Name: "exempt-10-1-0-10-32", Prefix: "10.1.0.10/32", Until: until, Reason: "lab", Ticket: "LAB-1"}}
	doc.Quarantines = []topology.Quarantine{
		{Name: "quarantine-10-1-200-3-32", Prefix: "10.1.200.3/32", Until: "2026-11-30T03:00:00Z", Reason: "lab", Ticket: "LAB-2"},
		{Name: "quarantine-2001-db8-1-200--3-128", Prefix: "2001:db8:1:200::3/128", Until: until, Reason: "lab", Ticket: "LAB-3"},
	}
	for i := range doc.Services {
		if doc.Services[i].Name == "lite" {
			doc.Services[i].Phases = []topology.Phase{{Block: topology.Block{All: true}, Relays: new(true), Mode: topology.ModeObserve}}
		}
	}
	if err := topology.Validate(doc); err != nil {
		t.Fatal(err)
	}
	data, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "helpdesk-policy.json")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	checkExpectations(t, doc, path, []string{
		"2026-11-30T02:59:59Z", "2026-11-30T03:00:00Z", "2026-11-30T12:00:01+09:00", "2026-12-20T00:00:00+09:00",
	})
}

// checkExpectations runs `lab.py --policy path --print-expected` at each
// instant and compares every row with flows.Evaluate and with
// flows.Simulate over flows.Compile for the row's bridge.
func checkExpectations(t *testing.T, doc *topology.Document, path string, instants []string) {
	t.Helper()
	for _, at := range instants {
		instant, err := time.Parse(time.RFC3339, at)
		if err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(debianPython, "lab.py", "--policy", path, "--print-expected", at).Output()
		if err != nil {
			t.Fatalf("lab.py --print-expected %s: %v", at, err)
		}
		var rows []matrixRow
		if err := json.Unmarshal(out, &rows); err != nil {
			t.Fatalf("decode lab.py output: %v", err)
		}
		if len(rows) == 0 {
			t.Fatal("lab.py printed no rows")
		}
		compiled := map[topology.DPID]*flows.Compiled{}
		drops := 0
		for _, r := range rows {
			c, ok := compiled[r.DPID]
			if !ok {
				c, err = flows.Compile(doc, r.DPID, instant, flows.DefaultOptions())
				if err != nil {
					t.Fatalf("Compile %s: %v", r.DPID, err)
				}
				compiled[r.DPID] = c
			}
			pkt := flows.Packet{Src: netip.MustParseAddr(r.SrcIP), Dst: netip.MustParseAddr(r.Dst),
				Proto: flows.IPProtoTCP, DstPort: r.Port}
			ref := flows.Evaluate(doc, r.Pop, instant, pkt).String()
			sim := flows.Simulate(c.Flows, flows.DefaultOptions(), pkt).String()
			if r.Expected != ref || r.Expected != sim {
				t.Errorf("%s at %s %s(%s) -> %s %s:%d: lab expects %s, flows.Evaluate %s, compiled flows %s",
					path, at, r.Src, r.SrcIP, r.Server, r.Dst, r.Port, r.Expected, ref, sim)
			}
			if r.Expected == "drop" {
				drops++
			}
		}
		t.Logf("%s at %s: %d rows, %d expected drops", path, at, len(rows), drops)
	}
}

// TestLab runs the whole Mininet lab (lab/run.sh): against two op25bd
// replicas on a 3-member etcd when `make build` has put both binaries in
// bin/ (as `make test` does), with static compiled flows otherwise.
// OP25B_LAB_ARGS adds arguments, e.g. "--controller=static".
// It needs root, Mininet and a few minutes, and it must not share the
// machine's OVS with other packages' tests running in parallel, so it runs
// only with OP25B_LAB=1: `make test` runs the lab as its own step after
// `go test ./...` (`make lab-test`), and skips it here.
func TestLab(t *testing.T) {
	if os.Getenv("OP25B_LAB") != "1" {
		t.Skip("set OP25B_LAB=1 to run the Mininet lab from go test; `make lab-test` runs it directly")
	}
	if os.Geteuid() != 0 {
		t.Fatal("the lab needs root (Mininet)")
	}
	args := strings.Fields(os.Getenv("OP25B_LAB_ARGS"))
	cmd := exec.Command("./run.sh", args...)
	out, err := cmd.CombinedOutput()
	t.Logf("lab output:\n%s", out)
	if err != nil {
		t.Fatalf("lab failed: %v", err)
	}
	if !strings.Contains(string(out), " passed, 0 failed") {
		t.Fatal("lab did not print a clean summary line")
	}
}
