package soak

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/op25b/op25b/topology"
)

var t0 = time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)

func at(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }

// labDoc: dyn (10.1.0.0/16) blocks everything but the relay; 10.1.200.0/29
// is static; lite (10.2.0.0/16) forwards, until a phase from `from` (empty:
// none) blocks all.
func labDoc(liteFrom string) *topology.Document {
	yes := true
	d := &topology.Document{
		Ports: []int{25},
		Pools: []topology.Pool{
			{Name: "dyn", Prefix: "10.1.0.0/16", Kind: "dynamic", Service: "ftth"},
			{Name: "fixed", Prefix: "10.1.200.0/29", Kind: "static"},
			{Name: "lite", Prefix: "10.2.0.0/16", Kind: "dynamic", Service: "lite"},
		},
		Relays:       []topology.Relay{{Name: "msa", Prefix: "192.0.2.25/32"}},
		Destinations: []topology.DestinationSet{{Name: "mobile", Prefixes: []string{"198.51.100.0/24"}}},
		Services: []topology.Service{
			{Name: "ftth", Phases: []topology.Phase{{Block: topology.Block{All: true}, Relays: &yes}}},
			{Name: "lite", Phases: []topology.Phase{{Block: topology.Block{Sets: []string{"mobile"}}}}},
		},
		Bridges: []topology.Bridge{{DPID: mustDPID("0000000000000a01"), Name: "a", Pop: "tokyo-1"}},
	}
	if liteFrom != "" {
		d.Services[1].Phases = append(d.Services[1].Phases, topology.Phase{From: liteFrom, Block: topology.Block{All: true}})
	}
	return d
}

func rev(n int64, s float64, d *topology.Document) Revision {
	return Revision{Revision: n, Time: at(s), Hash: DocHash(d), Doc: Normalize(d)}
}

func ack(op string, sent, done float64, n int64, d *topology.Document) Write {
	return Write{Op: op, Sent: at(sent), Done: at(done), Outcome: Acked, Revision: n, Hash: DocHash(d), Doc: Normalize(d)}
}

func probe(host, src, dst string, port uint16, s float64, verdict string) Probe {
	return Probe{Host: host, Bridge: "labsa", Pop: "tokyo-1", Src: src, Dst: dst, Server: "x", Port: port,
		Start: at(s), End: at(s + 0.01), Verdict: verdict}
}

// base: the setup wrote revision 10 (lite forwards to extmx), the writer
// acknowledged revision 12 at t=100 (lite blocks all from t=100 on, as a
// phase already started).
func base() *History {
	d10, d12 := labDoc(""), labDoc(at(50).Format(time.RFC3339))
	return &History{
		Seed: 7, Duration: 3 * time.Minute, Started: t0, Baseline: 10,
		Revisions: []Revision{rev(10, 0, d10), rev(12, 100, d12)},
		Writes:    []Write{ack("put services/lite", 99.9, 100.1, 12, d12)},
		Probes: []Probe{
			probe("dyn1", "10.1.0.10", "203.0.113.25", 25, 50, Dropped),
			probe("dyn1", "10.1.0.10", "192.0.2.25", 25, 50, Forwarded),
			probe("fixed", "10.1.200.3", "203.0.113.25", 25, 50, Forwarded),
			probe("lite1", "10.2.0.11", "203.0.113.25", 25, 90, Forwarded),
			probe("lite1", "10.2.0.11", "203.0.113.25", 25, 110, Forwarded), // within Apply of the ack
			probe("lite1", "10.2.0.11", "203.0.113.25", 25, 130, Dropped),
		},
		Convergence: Convergence{LastFaultEnd: at(140), Converged: at(145), Revision: 12, Hash: DocHash(d12)},
	}
}

func kinds(r *Report) []string {
	var out []string
	for _, v := range r.Violations {
		out = append(out, v.Kind)
	}
	return out
}

func TestCheck(t *testing.T) {
	d12 := labDoc(at(50).Format(time.RFC3339))
	tests := []struct {
		name   string
		change func(h *History)
		want   []string
	}{
		{"clean history", func(h *History) {}, nil},
		{"acknowledged write missing from the history", func(h *History) {
			h.Revisions = h.Revisions[:1]
			h.Convergence.Revision, h.Convergence.Hash = 10, h.Revisions[0].Hash
			// and the lite probe dropped at t=130 has no policy to excuse it
		}, []string{VLost, VFalseBlock}},
		{"acknowledged write stored with other content", func(h *History) {
			h.Revisions[1] = rev(12, 100, labDoc(""))
			h.Convergence.Hash = h.Revisions[1].Hash
		}, []string{VPhantom, VContent, VFalseBlock}},
		{"write acknowledged after another yet at a lower revision", func(h *History) {
			d := labDoc("")
			d.Pools = d.Pools[:2]
			h.Revisions = append(h.Revisions[:1], rev(11, 101, d), h.Revisions[1])
			h.Writes = append(h.Writes, ack("replace", 100.5, 101, 11, d))
		}, []string{VReordered}},
		{"unchanged write answers the current revision", func(h *History) {
			w := ack("replace (unchanged)", 101, 101.1, 12, d12)
			w.Unchanged = true
			h.Writes = append(h.Writes, w)
		}, nil},
		{"an unchanged write later does not move when the revision it answers was written", func(h *History) {
			w := ack("replace (unchanged)", 115, 115.1, 12, d12)
			w.Unchanged = true
			h.Writes = append(h.Writes, w)
			// lite1 dropped at 105: revision 12 (sent at 99.9) may be in force
			h.Probes = append(h.Probes, probe("lite1", "10.2.0.11", "203.0.113.25", 25, 105, Dropped))
		}, nil},
		{"revision no write explains", func(h *History) {
			d := labDoc("")
			d.Pools = d.Pools[:1]
			h.Revisions = append(h.Revisions, rev(13, 120, d))
			h.Convergence.Revision, h.Convergence.Hash = 13, DocHash(d)
		}, []string{VPhantom, VFinal}},
		{"revision of a write whose answer was lost", func(h *History) {
			d := labDoc("")
			d.Pools = d.Pools[:1]
			h.Revisions = append(h.Revisions, rev(13, 120, d))
			h.Writes = append(h.Writes, Write{Op: "replace", Sent: at(119), Done: at(139), Outcome: Indeterminate, Status: 503, Hash: DocHash(d)})
			h.Convergence.Revision, h.Convergence.Hash = 13, DocHash(d)
		}, nil},
		{"leak from a dynamic pool", func(h *History) {
			h.Probes = append(h.Probes, probe("dyn1", "10.1.0.10", "203.0.113.25", 25, 60, Forwarded))
		}, []string{VLeak}},
		{"leak after the apply window of a change that blocked it", func(h *History) {
			h.Probes = append(h.Probes, probe("lite1", "10.2.0.11", "203.0.113.25", 25, 125, Forwarded))
		}, []string{VLeak}},
		{"leak during a fault is still a leak", func(h *History) {
			h.Faults = []FaultEvent{{Kind: RestartVswitchd, Start: at(55), End: at(65)}, {Kind: WipeFlows, Target: "labsa", Start: at(58), End: at(58)}}
			h.Probes = append(h.Probes, probe("dyn1", "10.1.0.10", "203.0.113.25", 25, 60, Forwarded))
		}, []string{VLeak}},
		{"relay blocked", func(h *History) {
			h.Probes = append(h.Probes, probe("dyn1", "10.1.0.10", "192.0.2.25", 25, 60, Dropped))
		}, []string{VFalseBlock}},
		{"static pool blocked", func(h *History) {
			h.Probes = append(h.Probes, probe("fixed", "10.1.200.3", "203.0.113.25", 25, 60, Dropped))
		}, []string{VFalseBlock}},
		{"587 blocked", func(h *History) {
			h.Probes = append(h.Probes, probe("dyn1", "10.1.0.10", "203.0.113.25", 587, 60, Dropped))
		}, []string{VFalseBlock}},
		{"relay blocked while ovs-vswitchd is down or reinstalling", func(h *History) {
			h.Faults = []FaultEvent{{Kind: RestartVswitchd, Start: at(55), End: at(58)}}
			h.Probes = append(h.Probes, probe("dyn1", "10.1.0.10", "192.0.2.25", 25, 60, Dropped))
		}, nil},
		{"relay blocked after the flows of its bridge were wiped, within the repair window", func(h *History) {
			h.Faults = []FaultEvent{{Kind: WipeFlows, Target: "labsa", Start: at(55), End: at(55)}}
			h.Probes = append(h.Probes, probe("dyn1", "10.1.0.10", "192.0.2.25", 25, 60, Dropped))
		}, nil},
		{"relay blocked after the repair window", func(h *History) {
			h.Faults = []FaultEvent{{Kind: WipeFlows, Target: "labsa", Start: at(30), End: at(30)}}
			h.Probes = append(h.Probes, probe("dyn1", "10.1.0.10", "192.0.2.25", 25, 60, Dropped))
		}, []string{VFalseBlock}},
		{"wiped flows of the other bridge excuse nothing", func(h *History) {
			h.Faults = []FaultEvent{{Kind: WipeFlows, Target: "labsb", Start: at(55), End: at(55)}}
			h.Probes = append(h.Probes, probe("dyn1", "10.1.0.10", "192.0.2.25", 25, 60, Dropped))
		}, []string{VFalseBlock}},
		{"a kill -9 does not excuse a false block", func(h *History) {
			h.Faults = []FaultEvent{{Kind: KillReplica, Target: "r0", Start: at(55), End: at(65)}}
			h.Probes = append(h.Probes, probe("dyn1", "10.1.0.10", "192.0.2.25", 25, 60, Dropped))
		}, []string{VFalseBlock}},
		{"write acknowledged while etcd had no quorum", func(h *History) {
			h.Faults = []FaultEvent{{Kind: LoseEtcdQuorum, Target: "m0,m1", Start: at(90), End: at(105)}}
		}, []string{VNoQuorum}},
		{"write acknowledged as etcd lost its quorum", func(h *History) {
			h.Faults = []FaultEvent{{Kind: LoseEtcdQuorum, Target: "m0,m1", Start: at(97), End: at(110)}}
		}, nil},
		{"never converged", func(h *History) { h.Convergence.Converged = time.Time{} }, []string{VConverge}},
		{"converged too late", func(h *History) { h.Convergence.Converged = at(170) }, []string{VConverge}},
		{"final document is not the last acknowledged", func(h *History) {
			h.Convergence.Revision, h.Convergence.Hash = 10, h.Revisions[0].Hash
		}, []string{VFinal}},
		{"a daemon panicked", func(h *History) {
			h.LogFindings = ScanLog("op25bd-1.log", "level=INFO msg=ok\npanic: runtime error: index out of range\ngoroutine 1 [running]:")
		}, []string{VPanic, VPanic}},
		{"nothing probed", func(h *History) { h.Probes = nil }, []string{VEmptyProbes}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := base()
			tt.change(h)
			r := Check(h, DefaultWindows)
			got := kinds(r)
			if strings.Join(got, ",") != strings.Join(tt.want, ",") {
				var out bytes.Buffer
				r.Print(&out)
				t.Errorf("violations %v, want %v\n%s", got, tt.want, out.String())
			}
		})
	}
}

// Time-driven changes: a phase boundary or an until takes effect with no
// write, and the checker allows the controller's timer slack around it,
// widened when a control-plane fault was under way.
func TestCheckBoundaries(t *testing.T) {
	until := at(60).Format(time.RFC3339)
	withExemption := labDoc("")
	withExemption.Exemptions = []topology.Exemption{{Name: "e", Prefix: "10.1.0.10/32", Until: until, Reason: "r", Ticket: "t"}}
	withPhase := labDoc(at(60).Format(time.RFC3339))
	tests := []struct {
		name   string
		doc    *topology.Document
		probe  Probe
		faults []FaultEvent
		want   []string
	}{
		{"exempt host forwarded before until", withExemption, probe("dyn1", "10.1.0.10", "203.0.113.25", 25, 55, Forwarded), nil, nil},
		{"exempt host forwarded within the timer slack after until", withExemption, probe("dyn1", "10.1.0.10", "203.0.113.25", 25, 62, Forwarded), nil, nil},
		{"exempt host forwarded well after until", withExemption, probe("dyn1", "10.1.0.10", "203.0.113.25", 25, 70, Forwarded), nil, []string{VLeak}},
		{"exempt host forwarded after until while the master was killed", withExemption, probe("dyn1", "10.1.0.10", "203.0.113.25", 25, 70, Forwarded),
			[]FaultEvent{{Kind: KillReplica, Target: "r0", Start: at(58), End: at(63)}}, nil},
		{"lite forwarded within the slack after its phase starts", withPhase, probe("lite1", "10.2.0.11", "203.0.113.25", 25, 61, Forwarded), nil, nil},
		{"lite forwarded after its phase started", withPhase, probe("lite1", "10.2.0.11", "203.0.113.25", 25, 70, Forwarded), nil, []string{VLeak}},
		{"lite dropped just before its phase starts", withPhase, probe("lite1", "10.2.0.11", "203.0.113.25", 25, 58, Dropped), nil, nil},
		{"lite dropped well before its phase starts", withPhase, probe("lite1", "10.2.0.11", "203.0.113.25", 25, 40, Dropped), nil, []string{VFalseBlock}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := &History{Seed: 1, Baseline: 10, Revisions: []Revision{rev(10, 0, tt.doc)}, Probes: []Probe{tt.probe}, Faults: tt.faults,
				Convergence: Convergence{LastFaultEnd: at(100), Converged: at(101), Revision: 10, Hash: DocHash(tt.doc)}}
			r := Check(h, DefaultWindows)
			if got := kinds(r); strings.Join(got, ",") != strings.Join(tt.want, ",") {
				var out bytes.Buffer
				r.Print(&out)
				t.Errorf("violations %v, want %v\n%s", got, tt.want, out.String())
			}
		})
	}
}

func TestPrintShowsSeedAndTimeline(t *testing.T) {
	h := base()
	h.Faults = []FaultEvent{{Kind: KillReplica, Target: "r1", Start: at(55), End: at(58)}}
	h.Probes = append(h.Probes, probe("dyn1", "10.1.0.10", "203.0.113.25", 25, 60, Forwarded))
	r := Check(h, DefaultWindows)
	var out bytes.Buffer
	r.Print(&out)
	for _, want := range []string{"VIOLATION leak", "seed 7", "fault kill9-replica r1", "probe dyn1 -> 203.0.113.25:25 forward", "<==", "SOAK_SEED=7"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
}

func TestDocHashIgnoresItemOrder(t *testing.T) {
	a, b := labDoc(""), labDoc("")
	b.Pools[0], b.Pools[2] = b.Pools[2], b.Pools[0]
	if DocHash(a) != DocHash(b) {
		t.Error("item order changed the hash")
	}
	b.Pools[0].Prefix = "10.3.0.0/16"
	if DocHash(a) == DocHash(b) {
		t.Error("a changed prefix kept the hash")
	}
}

func mustDPID(s string) topology.DPID {
	d, err := topology.ParseDPID(s)
	if err != nil {
		panic(err)
	}
	return d
}

func TestScanLog(t *testing.T) {
	var b strings.Builder
	for i := 0; i < 150; i++ {
		b.WriteString("time=2026-11-29T21:23:05.012Z level=INFO msg=\"phase boundary reached, recompiling\" replica=r0\n")
		b.WriteString("time=2026-11-29T21:23:05.013Z level=INFO msg=reconciled replica=r0\n")
	}
	for i := 0; i < 150; i++ {
		b.WriteString("time=2026-11-29T21:23:06.012Z level=INFO msg=\"phase boundary reached, recompiling\" replica=r0\n")
	}
	got := ScanLog("op25bd-0.log", b.String())
	if len(got) != 1 || !strings.Contains(got[0].Line, "300 lines in the second 2026-11-29T21:23:05") ||
		!strings.Contains(got[0].Line, "150 of phase boundary reached, recompiling") {
		t.Errorf("ScanLog = %+v, want one flood at 21:23:05", got)
	}
	quiet := "time=2026-11-29T21:23:05.012Z level=INFO msg=\"document updated\"\nlevel=ERROR msg=x\n"
	if got := ScanLog("op25bd-1.log", quiet); len(got) != 0 {
		t.Errorf("ScanLog of a quiet log = %+v", got)
	}
	if got := ScanLog("op25bd-1.log", "time=2026-11-29T21:23:05.012Z level=ERROR msg=\"api: bug: nil snapshot\"\n"); len(got) != 1 {
		t.Errorf("ScanLog missed a bug line: %+v", got)
	}
}
