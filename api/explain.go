package api

import (
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"time"

	"github.com/op25b/op25b/api/apitypes"
	"github.com/op25b/op25b/flows"
	"github.com/op25b/op25b/topology"
)

// ExplainResponse is GET /v1/explain's body (see apitypes.Explain).
type ExplainResponse = apitypes.Explain

// explainQuery is a parsed GET /v1/explain.
type explainQuery struct {
	packet flows.Packet
	bridge string // as given: a dpid or a bridge name
	at     time.Time
	atSet  bool
}

// parseExplainQuery reads src, dst, port (default 25), bridge and at; every
// problem is a 400 naming the parameter.
func parseExplainQuery(q url.Values) (explainQuery, error) {
	bad := func(field, format string, args ...any) error {
		return newError(http.StatusBadRequest, CodeBadRequest, field, fmt.Sprintf(format, args...))
	}
	var eq explainQuery
	addr := func(name string) (netip.Addr, error) {
		v := q.Get(name)
		if v == "" {
			return netip.Addr{}, bad(name, "%s is required: an IPv4 or IPv6 address", name)
		}
		a, err := netip.ParseAddr(v)
		if err != nil || a.Zone() != "" {
			return netip.Addr{}, bad(name, "%s %q is not an IPv4 or IPv6 address (no prefix length, no zone)", name, truncateParam(v))
		}
		return a, nil
	}
	src, err := addr("src")
	if err != nil {
		return eq, err
	}
	dst, err := addr("dst")
	if err != nil {
		return eq, err
	}
	if src.Is4() != dst.Is4() {
		return eq, bad("dst", "src %s and dst %s are of different families: a packet is IPv4 or IPv6", src, dst)
	}
	port := 25
	if v := q.Get("port"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 65535 {
			return eq, bad("port", "port %q must be a TCP port, 1..65535", truncateParam(v))
		}
		port = n
	}
	eq.packet = flows.Packet{Src: src, Dst: dst, Proto: flows.IPProtoTCP, DstPort: uint16(port)}
	if eq.bridge = q.Get("bridge"); eq.bridge == "" {
		return eq, bad("bridge", "bridge is required: a dpid (16 hex digits) or a bridge name; phases may differ per pop")
	}
	if v := q.Get("at"); v != "" {
		at, err := topology.ParseTime(v)
		if err != nil {
			return eq, bad("at", "%v", err)
		}
		eq.at, eq.atSet = at, true
	}
	return eq, nil
}

func truncateParam(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

// resolveBridge finds the bridge an explanation is for: a dpid (of the
// document, or of an unregistered bridge: pop ""), or a bridge name.
func resolveBridge(doc *topology.Document, given string) (apitypes.ExplainBridge, error) {
	if dpid, err := topology.ParseDPID(given); err == nil {
		for _, b := range doc.Bridges {
			if b.DPID == dpid {
				return apitypes.ExplainBridge{DPID: dpid, Name: b.Name, Pop: b.Pop, Registered: true}, nil
			}
		}
		// A name that happens to be 16 hex digits still names its bridge.
		for _, b := range doc.Bridges {
			if b.Name == given {
				return apitypes.ExplainBridge{DPID: b.DPID, Name: b.Name, Pop: b.Pop, Registered: true}, nil
			}
		}
		return apitypes.ExplainBridge{DPID: dpid}, nil
	}
	for _, b := range doc.Bridges {
		if b.Name == given {
			return apitypes.ExplainBridge{DPID: b.DPID, Name: b.Name, Pop: b.Pop, Registered: true}, nil
		}
	}
	return apitypes.ExplainBridge{}, newError(http.StatusNotFound, CodeNotFound, "bridge",
		fmt.Sprintf("no bridge is named %q, and it is not a dpid (16 hex digits)", truncateParam(given)))
}

// explain answers GET /v1/explain: the reference verdict of the document
// this replica enforces (flows.Explain), and, when the question is about
// now and some replica is connected to the bridge, the verdict of the flows
// installed there (flows.Simulate over a dump, read where the bridge's
// session is, as GET /v1/bridges/{dpid}/flows does). A disagreement is
// logged and counted (op25b_explain_disagreements_total): it means the
// switch does not (yet) enforce what the document says.
func (s *server) explain(w http.ResponseWriter, r *http.Request) error {
	q, err := parseExplainQuery(r.URL.Query())
	if err != nil {
		return err
	}
	ctx, cancel := s.storeContext(r)
	defer cancel()
	doc, rev, err := s.currentDocument(ctx)
	if err != nil {
		return err
	}
	bridge, err := resolveBridge(doc, q.bridge)
	if err != nil {
		return err
	}
	at := q.at
	if !q.atSet {
		at = s.cfg.Now()
	}
	e := flows.Explain(doc, bridge.Pop, at, q.packet)
	resp := explainResponse(e, q.packet, bridge, at, rev)

	local, master, err := s.sessionOf(ctx, r, bridge.DPID)
	bridge.Connected = err == nil && (local || master != nil)
	resp.Bridge.Connected = bridge.Connected
	switch {
	case q.atSet:
		resp.InstalledError = "not compared: the installed flows enforce the policy of now, and this question is about " + q.at.Format(time.RFC3339Nano) + " (leave out at to compare)"
	case err != nil:
		resp.InstalledError = err.Error()
	case local:
		fs, _, err := s.cfg.Switches.Installed(ctx, bridge.DPID)
		if err != nil {
			resp.InstalledError = fmt.Sprintf("dump flows of %s: %v", bridge.DPID, err)
			break
		}
		v := flows.Simulate(fs, s.cfg.Pipeline, q.packet)
		resp.Installed = &apitypes.ExplainInstalled{Verdict: v.String(), Agrees: v == e.Verdict, Source: "local"}
	case master != nil:
		var remote ExplainResponse
		if err := s.forwardGet(ctx, r, *master, "/v1/explain", r.URL.Query(), &remote); err != nil {
			resp.InstalledError = err.Error()
			break
		}
		if remote.Installed == nil {
			resp.InstalledError = fmt.Sprintf("replica %s: %s", master.ID, remote.InstalledError)
			break
		}
		resp.Installed = &apitypes.ExplainInstalled{Verdict: remote.Installed.Verdict, Agrees: remote.Installed.Verdict == resp.Verdict,
			Source: "replica:" + master.ID}
	default:
		resp.InstalledError = "bridge is not connected to any replica"
	}
	if resp.Installed != nil && !resp.Installed.Agrees && r.URL.Query().Get(localOnlyParam) == "" {
		s.cfg.Metrics.explainDisagree.inc(bridge)
		s.cfg.Logger.Warn("explain: the installed flows disagree with the policy",
			"dpid", bridge.DPID, "src", q.packet.Src, "dst", q.packet.Dst, "port", q.packet.DstPort,
			"reference", resp.Verdict, "installed", resp.Installed.Verdict, "source", resp.Installed.Source,
			"revision", rev, "rule", resp.Rule)
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}

// explainResponse turns the reference explanation into the API's body.
func explainResponse(e flows.Explanation, p flows.Packet, bridge apitypes.ExplainBridge, at time.Time, rev int64) ExplainResponse {
	resp := ExplainResponse{
		Verdict: e.Verdict.String(), Observe: e.Observe, Reason: e.Summary(), Rule: string(e.Rule), Reasons: e.Reasons(),
		Destination: e.Destination, Lapsed: append([]string{}, e.Lapsed...),
		Src: p.Src.String(), Dst: p.Dst.String(), Port: int(p.DstPort), SMTPBound: e.SMTPBound,
		Bridge: bridge, At: at, Revision: rev,
	}
	if e.Pool != nil {
		resp.Pool, resp.Kind = e.Pool.Name, e.Pool.Kind
		resp.Service = e.Pool.Service
	}
	if ph := e.Phase; ph != nil {
		mode := topology.ModeEnforce
		if ph.Observes() {
			mode = topology.ModeObserve
		}
		resp.Phase = &apitypes.ExplainPhase{Index: e.PhaseIndex, From: ph.From, Mode: mode, Block: ph.Block,
			Relays: ph.PermitsRelays(), Pops: append([]string{}, ph.Pops...)}
	}
	if e.Relay != nil {
		resp.Relay = e.Relay.Name
	}
	if e.Exemption != nil {
		resp.Exemption = e.Exemption.Name
	}
	if e.Quarantine != nil {
		resp.Quarantine = e.Quarantine.Name
	}
	return resp
}
