// Package soak is the pure half of the lab's chaos soak (lab/soak.py): the
// seeded fault plan, the records the soak's writer, prober and fault
// injector leave behind, and the checker that judges them afterwards.
//
// Nothing here dials, listens or reads a clock: a plan is a function of a
// seed and a duration, and a verdict is a function of a history, so both are
// table-tested over synthetic histories (lab/soak/*_test.go), including
// histories that must be flagged. lab/soakctl is the I/O around it.
package soak

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/op25b/op25b/topology"
)

// Kind is a kind of fault the injector knows.
type Kind string

// Fault kinds (lab/README.md, "The chaos soak", says what each one does).
const (
	KillReplica     Kind = "kill9-replica"    // SIGKILL a replica, restart it after the hold
	RollingRestart  Kind = "rolling-restart"  // SIGTERM and restart every replica in turn
	StopEtcdMember  Kind = "etcd-member"      // stop one etcd member, restart it after the hold
	LoseEtcdQuorum  Kind = "etcd-quorum"      // stop two of the three members
	PartitionEtcd   Kind = "partition-etcd"   // cut one replica from every etcd member (TCP proxy)
	PartitionSwitch Kind = "partition-switch" // cut one bridge from one replica (TCP proxy)
	RestartVswitchd Kind = "vswitchd-restart" // SIGKILL ovs-vswitchd, start it again after the hold
	WipeFlows       Kind = "flows-wipe"       // ovs-ofctl del-flows of op25b's cookie on one bridge
	AlterFlows      Kind = "flows-alter"      // ovs-ofctl mod-flows: op25b's forwarding flows now drop
	RotateCerts     Kind = "sighup-certs"     // re-issue every certificate from the same CA, SIGHUP the replicas
)

// Kinds is every fault kind, in the order the table prints them.
var Kinds = []Kind{KillReplica, RollingRestart, StopEtcdMember, LoseEtcdQuorum, PartitionEtcd,
	PartitionSwitch, RestartVswitchd, WipeFlows, AlterFlows, RotateCerts}

// Fault is one planned fault: what, on which target, when (an offset from
// the soak's start) and for how long it holds before it is undone.
type Fault struct {
	Kind   Kind          `json:"kind"`
	Target string        `json:"target,omitempty"` // "r1", "m2", "labsa", "labsa/r0"; empty for cluster-wide faults
	Start  time.Duration `json:"start"`
	Hold   time.Duration `json:"hold"`
}

// FaultEvent is a fault as the injector really ran it: wall-clock start and
// end (the end is when it was undone and the undoing returned).
type FaultEvent struct {
	Kind   Kind      `json:"kind"`
	Target string    `json:"target,omitempty"`
	Start  time.Time `json:"start"`
	End    time.Time `json:"end"`
	Error  string    `json:"error,omitempty"`
}

// Outcome of a write.
const (
	Acked         = "acked"         // 2xx: the server says it is stored at Revision
	Refused       = "refused"       // a definite refusal (409, 400, 401, 403): nothing stored
	Indeterminate = "indeterminate" // 503, a timeout, a reset: it may or may not be stored
)

// Write is one write the writer sent and what came back.
type Write struct {
	Op       string    `json:"op"` // "replace", "put pools/x", "delete exemptions/y"
	Sent     time.Time `json:"sent"`
	Done     time.Time `json:"done"`
	IfMatch  int64     `json:"if_match"`
	Outcome  string    `json:"outcome"`
	Status   int       `json:"status,omitempty"` // HTTP status; 0 when none came back
	Code     string    `json:"code,omitempty"`   // the API's error code
	Revision int64     `json:"revision,omitempty"`
	// Unchanged: the write's document equals its base, so the server
	// answers the current revision and stores nothing.
	Unchanged bool `json:"unchanged,omitempty"`
	// Hash is DocHash of the document the write produces (the base at
	// IfMatch with the change applied); Doc is that document.
	Hash string             `json:"hash"`
	Doc  *topology.Document `json:"doc,omitempty"`
}

// Revision is one revision of the stored document as the history shows it
// (GET /v1/audit for the revision and time, GET /v1/config?revision=N for
// the content).
type Revision struct {
	Revision int64              `json:"revision"`
	Time     time.Time          `json:"time"` // the audit record's time
	Who      string             `json:"who,omitempty"`
	Hash     string             `json:"hash"`
	Doc      *topology.Document `json:"doc"`
}

// Probe is one TCP connect from a lab host.
type Probe struct {
	Host    string    `json:"host"`   // the Mininet host: dyn1, fixed, ...
	Bridge  string    `json:"bridge"` // the bridge it hangs off: labsa, labsb
	Pop     string    `json:"pop"`
	Src     string    `json:"src"`
	Dst     string    `json:"dst"`
	Server  string    `json:"server"` // relay, extmx, mobmx
	Port    uint16    `json:"port"`
	Start   time.Time `json:"start"`
	End     time.Time `json:"end"`
	Verdict string    `json:"verdict"` // forward (connected), drop (timed out), error (anything else)
	Detail  string    `json:"detail,omitempty"`
}

// Probe verdicts.
const (
	Forwarded = "forward"
	Dropped   = "drop"
	Errored   = "error"
)

// Convergence is what the soak saw after the last fault was undone and the
// writer stopped: when every bridge was connected, at the final revision,
// with the installed flows equal to the desired ones.
type Convergence struct {
	LastFaultEnd time.Time          `json:"last_fault_end"`
	Converged    time.Time          `json:"converged,omitempty"` // zero: never within the wait
	Revision     int64              `json:"revision"`
	Hash         string             `json:"hash"`
	Doc          *topology.Document `json:"doc,omitempty"`
	Detail       string             `json:"detail,omitempty"` // the last status seen, when it did not converge
}

// LogFinding is a line of a daemon's log that says it panicked or hit a bug.
type LogFinding struct {
	File string    `json:"file"`
	Line string    `json:"line"`
	At   time.Time `json:"at,omitempty"` // when the log says it happened, if it says
}

// History is everything a soak run leaves for the checker.
type History struct {
	Seed     int64         `json:"seed"`
	Duration time.Duration `json:"duration"`
	Started  time.Time     `json:"started"`
	// Baseline is the revision the soak's own setup wrote (lab/policy.json)
	// before the writer started: revisions up to it need no acknowledgement.
	Baseline    int64
	Faults      []FaultEvent
	Writes      []Write
	Revisions   []Revision
	Probes      []Probe
	Convergence Convergence
	LogFindings []LogFinding
}

// DocHash is the hex SHA-256 of a document's JSON encoding after
// Normalize, so two documents with the same content hash the same whatever
// their source's spacing, key order or item order.
func DocHash(doc *topology.Document) string {
	b, err := json.Marshal(Normalize(doc))
	if err != nil {
		// A Document always encodes; a failure is a bug that must not
		// compare equal to anything.
		return "unencodable: " + err.Error()
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// Normalize returns a copy of doc in the form the store reads documents
// back in: every item list sorted by key and never nil.
func Normalize(doc *topology.Document) *topology.Document {
	if doc == nil {
		return nil
	}
	c := doc.Clone()
	for _, k := range topology.ItemKinds {
		k.SortByKey(c)
		k.MakeNonNil(c)
	}
	return c
}

// alarming is a log line that says a daemon panicked, hit a bug ("bug:",
// not "debug:"), died of a fatal error, raced or dumped its goroutines.
var alarming = regexp.MustCompile(`(?i)panic|(^|[^a-z])bug:|fatal error|data race|^goroutine \d+ \[`)

// FloodLines is how many log lines one daemon may write in one second
// before the checker calls it a hot loop (a restart logs a few dozen).
const FloodLines = 200

// ScanLog returns the lines of a daemon's log that say it panicked, hit a
// bug or died of a fatal error, and one finding per second in which it
// wrote more than FloodLines lines (a loop spinning instead of waiting),
// naming the most frequent message of that second.
func ScanLog(file, text string) []LogFinding {
	var out []LogFinding
	second, n := "", 0
	msgs := map[string]int{}
	flush := func() {
		if n > FloodLines {
			top, topN := "", 0
			for m, c := range msgs {
				if c > topN || (c == topN && m < top) {
					top, topN = m, c
				}
			}
			at, _ := time.Parse("2006-01-02T15:04:05", second)
			out = append(out, LogFinding{File: file, At: at, Line: fmt.Sprintf("log flood: %d lines in the second %s (%d of %s)", n, second, topN, top)})
		}
		n = 0
		clear(msgs)
	}
	for _, line := range strings.Split(text, "\n") {
		if alarming.MatchString(line) {
			f := LogFinding{File: file, Line: line}
			if strings.HasPrefix(line, "time=") && len(line) >= 29 {
				f.At, _ = time.Parse(time.RFC3339Nano, strings.Fields(line)[0][5:])
			}
			out = append(out, f)
		}
		// slog's text format: time=2026-11-29T21:23:05.012Z level=... msg="..."
		if !strings.HasPrefix(line, "time=") || len(line) < 24 {
			continue
		}
		if sec := line[5:24]; sec != second {
			flush()
			second = sec
		}
		n++
		if i := strings.Index(line, "msg="); i >= 0 {
			m := line[i+4:]
			if strings.HasPrefix(m, "\"") {
				if j := strings.Index(m[1:], "\""); j >= 0 {
					m = m[1 : j+1]
				}
			} else if j := strings.IndexByte(m, ' '); j >= 0 {
				m = m[:j]
			}
			msgs[m]++
		}
	}
	flush()
	return out
}
