// Package apitypes holds the request and response bodies of op25b's REST
// API (v1), shared by the server (package api) and its clients (package
// client, op25bctl, an ISP's own automation).
//
// It imports nothing but the standard library and package topology (the
// policy document, which is pure), so a client that uses these types links
// no etcd, no OpenFlow codec and no server code.
package apitypes

import (
	"encoding/json"
	"time"

	"github.com/op25b/op25b/topology"
)

// Config is GET /v1/config (and GET /v1/config?revision=N): the whole
// document with the revision it is at. Sent back in a PUT, the revision acts
// as If-Match, so that GET → edit → PUT cannot overwrite a newer document.
type Config struct {
	Revision int64 `json:"revision"`
	*topology.Document
}

// WriteResult is what every successful write returns.
type WriteResult struct {
	Revision int64 `json:"revision"`
}

// Collection is GET /v1/{pools,relays,destinations,services,bridges}: only
// the list named by the path is present (Pools, Bridges, ...: the lists of
// the embedded Document, one per topology.ItemKinds row); the others are
// nil.
type Collection struct {
	Revision int64 `json:"revision"`
	topology.Document
}

// DryRun is PUT /v1/config?dry_run=true: what the write would change, per
// item and per bridge, without storing anything.
type DryRun struct {
	DryRun bool `json:"dry_run"`
	// Revision is the current revision the diff was computed against.
	Revision int64 `json:"revision"`
	// ComparedWith says what the "before" flows are: "desired" = the flows
	// compiled from the current document at the same instant.
	ComparedWith string       `json:"compared_with"`
	At           time.Time    `json:"at"`
	Items        ItemChanges  `json:"items"`
	Bridges      []BridgeDiff `json:"bridges"`
}

// Empty reports whether applying the document would change nothing: no item
// and no flow on any bridge.
func (d *DryRun) Empty() bool {
	if len(d.Items.Added)+len(d.Items.Changed)+len(d.Items.Removed) > 0 {
		return false
	}
	for _, b := range d.Bridges {
		if len(b.Add)+len(b.Modify)+len(b.Delete) > 0 {
			return false
		}
	}
	return true
}

// ItemChanges names changed document items as "kind/name" ("pools/tokyo-dyn",
// "bridges/0000000000000001", "ports").
type ItemChanges struct {
	Added   []string `json:"added"`
	Changed []string `json:"changed"`
	Removed []string `json:"removed"`
}

// BridgeDiff is one bridge's flow changes, each flow in ovs-ofctl syntax.
type BridgeDiff struct {
	DPID       topology.DPID `json:"dpid"`
	Name       string        `json:"name,omitempty"`
	Registered bool          `json:"registered"`
	Connected  bool          `json:"connected"`
	Add        []string      `json:"add"`
	Modify     []string      `json:"modify"`
	Delete     []string      `json:"delete"`
}

// Status is GET /v1/status. A change is in the switches when every
// connected bridge has AppliedRevision >= Revision.
type Status struct {
	Revision int64        `json:"revision"`
	Replicas []Replica    `json:"replicas"`
	Bridges  []BridgeView `json:"bridges"`
	// DocumentError is set when etcd holds a value that does not decode or
	// validate (written by hand, say): the replica keeps enforcing the last
	// good document, at Revision, and says why it is not following etcd.
	DocumentError string `json:"document_error,omitempty"`
	// Etcd is etcd's database size and alarms, as the answering replica
	// last saw them (absent when it does not watch them).
	Etcd *EtcdView `json:"etcd,omitempty"`
}

// EtcdView is the "etcd" part of Status.
type EtcdView struct {
	DBSizeBytes      int64     `json:"db_size_bytes"`
	DBSizeInUseBytes int64     `json:"db_size_in_use_bytes"`
	Alarms           []string  `json:"alarms"`
	NoSpace          bool      `json:"nospace"`
	CheckedAt        time.Time `json:"checked_at"`
	Error            string    `json:"error,omitempty"`
}

// Replica is one live op25bd replica.
type Replica struct {
	ID           string    `json:"id"`
	APIAddr      string    `json:"api_addr"`
	OpenFlowAddr string    `json:"openflow_addr"`
	Version      string    `json:"version"`
	Started      time.Time `json:"started"`
}

// BridgeView merges a bridge of the document with its status record.
// Bridges connected but not in the document are listed with
// Registered=false (they are enforced with pop "").
type BridgeView struct {
	DPID            topology.DPID `json:"dpid"`
	Name            string        `json:"name"`
	Pop             string        `json:"pop"`
	Registered      bool          `json:"registered"`
	Connected       bool          `json:"connected"`
	Master          string        `json:"master"`
	AppliedRevision int64         `json:"applied_revision"`
	Flows           int           `json:"flows"`
	LastError       string        `json:"last_error"`
	LastReconcile   *time.Time    `json:"last_reconcile,omitempty"`
	// DriftDetection is how the master finds drift on the bridge:
	// "monitor" (the switch reports every flow-table change; a full audit
	// every --audit-sweep) or "poll" (the switch refuses flow monitoring:
	// a full audit every --audit-interval). Absent when no replica
	// masters the connected bridge.
	DriftDetection string `json:"drift_detection,omitempty"`
}

// Rollout is GET /v1/rollout: every service's phases as they apply at
// each pop of the document, at At: which phases apply where, the active
// one and the next boundary. A phase is known by its index, its position
// in the service's phases.
type Rollout struct {
	Revision int64     `json:"revision"`
	At       time.Time `json:"at"`
	// Pops are the pops the document names (bridges and phases), sorted.
	Pops     []string         `json:"pops"`
	Services []ServiceRollout `json:"services"`
}

// ServiceRollout is one service: its phases as in the document and their
// timeline at each pop of Rollout.Pops, in that order.
type ServiceRollout struct {
	Name   string           `json:"name"`
	Phases []topology.Phase `json:"phases"`
	Pops   []PopRollout     `json:"pops"`
}

// PopRollout is one service at one pop. Active is absent while no phase
// applies there yet (SMTP forwarded); Next and NextAt are absent when no
// later phase applies there.
type PopRollout struct {
	Pop string `json:"pop"`
	// Phases are the indexes of the phases that apply at Pop, by start.
	Phases []int      `json:"phases"`
	Active *int       `json:"active,omitempty"`
	Next   *int       `json:"next,omitempty"`
	NextAt *time.Time `json:"next_at,omitempty"`
}

// Flows is GET /v1/bridges/{dpid}/flows: the bridge's desired flows and,
// when some replica is connected to it, the installed ones with their
// packet counts. InstalledSource says where they came from: "local" (the
// answering replica's controller), "replica:<id>" (forwarded to the
// master's API) or "" with InstalledError explaining why they are
// unavailable.
type Flows struct {
	DPID            topology.DPID   `json:"dpid"`
	Registered      bool            `json:"registered"`
	Revision        int64           `json:"revision"`
	At              time.Time       `json:"at"`
	Desired         []string        `json:"desired"`
	Installed       []InstalledFlow `json:"installed"`
	InstalledSource string          `json:"installed_source"`
	InstalledError  string          `json:"installed_error,omitempty"`
	// Missing and Extra compare installed with desired (by flow identity
	// and actions); both empty means the bridge has converged.
	Missing []string `json:"missing"`
	Extra   []string `json:"extra"`
}

// InstalledFlow is one flow on the switch with its counters.
type InstalledFlow struct {
	Flow    string `json:"flow"`
	Packets uint64 `json:"packets"`
	Bytes   uint64 `json:"bytes"`
}

// Audit is GET /v1/audit: newest first. NextBefore, when non-zero, is the
// ?before= value of the next (older) page.
type Audit struct {
	Records    []AuditEntry `json:"records"`
	NextBefore int64        `json:"next_before,omitempty"`
}

// Write operations recorded in the audit log.
const (
	OpReplace  = "replace"  // PUT /v1/config
	OpUpdate   = "update"   // PUT or DELETE of one item
	OpRollback = "rollback" // POST /v1/config/rollback
)

// AuditEntry is one write: its revision, time, token name and the items it
// added, changed or removed ("pools/tokyo-dyn", "ports", ...).
//
// Records written before op25b kept history have no Op, Base or Changes.
type AuditEntry struct {
	Revision int64     `json:"revision"`
	Time     time.Time `json:"time"`
	Who      string    `json:"who"`
	Added    []string  `json:"added"`
	Changed  []string  `json:"changed"`
	Removed  []string  `json:"removed"`
	// Op is replace, update or rollback; RollbackOf is the revision whose
	// document a rollback restored.
	Op         string `json:"op,omitempty"`
	RollbackOf int64  `json:"rollback_of,omitempty"`
	// Base is the document revision the write replaced (0 for the first).
	Base int64 `json:"base,omitempty"`
	// Changes are the item-level changes with their old and new values, at
	// most a few dozen (the first ones by item key); ChangesTotal counts all
	// of them. The complete set is what GET /v1/config?revision=N uses.
	Changes      []ItemChange `json:"changes,omitempty"`
	ChangesTotal int          `json:"changes_total,omitempty"`
}

// ItemChange is one item as it was before a write (Old) and after it (New),
// each its JSON value in the document; Old is absent for an added item and
// New for a removed one. Item is "kind/name" or "ports".
type ItemChange struct {
	Item string          `json:"item"`
	Old  json.RawMessage `json:"old,omitempty"`
	New  json.RawMessage `json:"new,omitempty"`
}

// Rollback is the body of POST /v1/config/rollback: restore the document
// as it was at Revision. If-Match (the current revision) is required.
type Rollback struct {
	Revision int64 `json:"revision"`
}

// ErrorBody is every error answer: {"error": {...}}.
type ErrorBody struct {
	Error *Error `json:"error"`
}

// Error is the API's error object. Clients branch on Code.
type Error struct {
	Code    string       `json:"code"`
	Message string       `json:"message"`
	Field   string       `json:"field"`
	Details []FieldIssue `json:"details,omitempty"`
}

// FieldIssue is one validation problem; Details lists all of them.
type FieldIssue struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// Error codes of the error body.
const (
	CodeBadRequest       = "bad_request"      // malformed query, header or URL
	CodeInvalidJSON      = "invalid_json"     // body is not the expected JSON (syntax, unknown field, type)
	CodeInvalidDocument  = "invalid_document" // parsed, but topology.Validate rejected it
	CodeNameMismatch     = "name_mismatch"    // item body names another item than the URL
	CodeUnauthorized     = "unauthorized"     // no or unknown bearer token
	CodeForbidden        = "forbidden"        // read token on a write
	CodeNotFound         = "not_found"        // no such item, bridge, route or (pruned) revision
	CodeMethodNotAllowed = "method_not_allowed"
	CodeConflict         = "revision_conflict" // If-Match did not match the current revision
	CodeReferenced       = "referenced"        // delete of an item other items still use
	CodeTooLarge         = "body_too_large"
	CodeUnavailable      = "unavailable"  // etcd unreachable or desired state not loaded
	CodeNoSpace          = "etcd_nospace" // etcd's NOSPACE alarm: writes refused until space is reclaimed
	CodeInternal         = "internal"
)

// Explain is GET /v1/explain: the verdict for one packet at one bridge and
// every reason for it, from the reference reading of the policy, and the
// verdict of the flows actually installed on the bridge.
//
// Pool, Service, Relay, Destination, Exemption and Quarantine are names,
// "" when none applies: the most specific pool holding the source (and its
// Kind), its service, a relay holding the destination (once a phase is
// active), the blocked destination set holding the destination, and the
// exemption and quarantine in force holding the source. Reasons says the
// same in words, one line per reason, for people.
type Explain struct {
	Verdict string `json:"verdict"` // "drop" or "forward"
	// Observe: forwarded only because the active phase observes; enforcing,
	// it would be dropped. The switch counts it per pool.
	Observe bool `json:"observe"`
	// Reason is one sentence saying what decided; Rule the same as a word
	// clients can branch on (quarantine, exemption, no-pool, static-pool,
	// no-phase, relay, block-all, blocked-set, not-blocked, not-smtp).
	Reason  string   `json:"reason"`
	Rule    string   `json:"rule"`
	Reasons []string `json:"reasons"`

	Pool        string        `json:"pool"`
	Kind        string        `json:"kind"`
	Service     string        `json:"service"`
	Phase       *ExplainPhase `json:"phase"`
	Relay       string        `json:"relay"`
	Destination string        `json:"destination"`
	Exemption   string        `json:"exemption"`
	Quarantine  string        `json:"quarantine"`
	// Lapsed are the exemptions and quarantines holding the source whose
	// until has passed ("exemptions/NAME"): inert, but worth knowing.
	Lapsed []string `json:"lapsed"`

	// The packet and where and when it was evaluated.
	Src       string        `json:"src"`
	Dst       string        `json:"dst"`
	Port      int           `json:"port"`
	SMTPBound bool          `json:"smtp_bound"`
	Bridge    ExplainBridge `json:"bridge"`
	At        time.Time     `json:"at"`
	Revision  int64         `json:"revision"`

	// Installed is the verdict of the flows on the bridge (simulated with
	// OpenFlow's table semantics), present when some replica is connected
	// to it and the question is about now (no "at"); InstalledError says
	// why it is absent.
	Installed      *ExplainInstalled `json:"installed,omitempty"`
	InstalledError string            `json:"installed_error,omitempty"`
}

// ExplainPhase is the active phase of the pool's service at the bridge:
// its position in the service's phases, since when it is active (From, ""
// = since the beginning of time) and what it says.
type ExplainPhase struct {
	Index  int            `json:"index"`
	From   string         `json:"from"`
	Mode   string         `json:"mode"`
	Block  topology.Block `json:"block"`
	Relays bool           `json:"relays"`
	Pops   []string       `json:"pops"`
}

// ExplainBridge is the bridge an explanation is for. An unregistered bridge
// (a dpid not in the document) is evaluated with pop "".
type ExplainBridge struct {
	DPID       topology.DPID `json:"dpid"`
	Name       string        `json:"name"`
	Pop        string        `json:"pop"`
	Registered bool          `json:"registered"`
	Connected  bool          `json:"connected"`
}

// ExplainInstalled is the verdict of the installed flows and whether it
// agrees with the reference Verdict. Source is where the flows came from,
// as in Flows.InstalledSource.
type ExplainInstalled struct {
	Verdict string `json:"verdict"`
	Agrees  bool   `json:"agrees"`
	Source  string `json:"source"`
}

// Offenders is GET /v1/offenders: subscriber sources whose SMTP-bound
// packets were dropped (or, in observe mode, would have been) in the
// window, most attempts first.
type Offenders struct {
	// Since is the start of the window (now minus the since parameter).
	Since time.Time `json:"since"`
	// Truncated says the answer may miss attempts of the window: a switch
	// was at its learn limit (attempts counted, source unknown), a replica
	// had to forget an active source (its --offenders-max-sources), or a
	// replica did not answer.
	Truncated bool       `json:"truncated"`
	Offenders []Offender `json:"offenders"`
}

// Offender is one source in Offenders.
type Offender struct {
	Src    string `json:"src"`
	Pool   string `json:"pool"`
	Bridge string `json:"bridge"` // dpid
	Pop    string `json:"pop"`
	// Attempts are the source's SMTP-bound packets dropped in the window:
	// its connection attempts (a SYN and its retransmissions), or, in
	// observe mode, its connection attempts (SYNs) that would have been.
	Attempts uint64 `json:"attempts"`
	// Destinations counts the distinct destination addresses tried, up to
	// 32.
	Destinations int       `json:"destinations"`
	FirstSeen    time.Time `json:"first_seen"`
	LastSeen     time.Time `json:"last_seen"`
	// Observed: counted in observe mode, forwarded rather than dropped.
	Observed bool `json:"observed"`
}
