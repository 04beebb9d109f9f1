package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"

	"gopkg.in/yaml.v3"

	"github.com/op25b/op25b/api"
	"github.com/op25b/op25b/topology"
)

func runApply(g *globals, args []string) error {
	fs := g.flagSet("apply")
	file := fs.String("f", "", "policy document, JSON or YAML (- for stdin)")
	dryRun := fs.Bool("dry-run", false, "validate and show the flow diff; store nothing")
	ifMatch := fs.Int64("if-match", 0, "only apply if the stored revision is still REV")
	if _, err := g.parseInterleaved(fs, args); err != nil {
		return err
	}
	body, fileRev, err := readDocument(g, *file)
	if err != nil {
		return err
	}
	rev := *ifMatch
	if rev == 0 {
		rev = fileRev
	}
	if *dryRun {
		return showDiff(g, body, rev)
	}
	var w struct{ Revision int64 }
	raw, err := g.call(http.MethodPut, "/v1/config", body, revisionHeader(rev), &w)
	if err != nil {
		return err
	}
	if g.jsonOutput() {
		g.printRaw(raw)
		return nil
	}
	fmt.Fprintf(g.stdout, "applied: revision %d\n", w.Revision)
	return nil
}

func runDiff(g *globals, args []string) error {
	fs := g.flagSet("diff")
	file := fs.String("f", "", "policy document, JSON or YAML (- for stdin)")
	if _, err := g.parseInterleaved(fs, args); err != nil {
		return err
	}
	body, rev, err := readDocument(g, *file)
	if err != nil {
		return err
	}
	return showDiff(g, body, rev)
}

func revisionHeader(rev int64) map[string]string {
	if rev <= 0 {
		return nil
	}
	return map[string]string{"If-Match": strconv.FormatInt(rev, 10)}
}

// readDocument parses a JSON or YAML file locally (so YAML never reaches
// the API, and syntax errors name the line before any request) and
// returns it as JSON. A top-level "revision", as printed by
// `get config`, is returned separately and used as If-Match.
func readDocument(g *globals, path string) ([]byte, int64, error) {
	if path == "" {
		return nil, 0, usagef("-f FILE is required")
	}
	var data []byte
	var err error
	if path == "-" {
		data, err = io.ReadAll(g.stdin)
	} else {
		data, err = os.ReadFile(path)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("read policy: %w", err)
	}
	var doc *topology.Document
	var rev int64
	if trimmed := bytes.TrimLeft(bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")), " \t\r\n"); len(trimmed) > 0 && trimmed[0] == '{' {
		// JSON: the revision is read in the same strict pass as the rest,
		// so a repeated key cannot be lost on the way to the server.
		doc, rev, _, err = topology.ParseJSONWithRevision(data)
	} else {
		data, rev, err = splitRevision(data)
		if err == nil {
			doc, err = topology.Parse(data)
		}
	}
	if err != nil {
		return nil, 0, fmt.Errorf("%s: %w", path, err)
	}
	body, err := json.Marshal(doc)
	if err != nil {
		return nil, 0, fmt.Errorf("%s: encode: %w", path, err)
	}
	return body, rev, nil
}

// splitRevision removes a top-level "revision" key from a JSON or YAML
// document. Anything it cannot read is left for topology.Parse to report.
func splitRevision(data []byte) ([]byte, int64, error) {
	if !bytes.Contains(data, []byte("revision")) {
		return data, 0, nil
	}
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) > 0 && trimmed[0] == '{' {
		var top map[string]json.RawMessage
		if json.Unmarshal(trimmed, &top) != nil {
			return data, 0, nil
		}
		raw, ok := top["revision"]
		if !ok {
			return data, 0, nil
		}
		var rev int64
		if err := json.Unmarshal(raw, &rev); err != nil {
			return nil, 0, fmt.Errorf("revision must be an integer")
		}
		delete(top, "revision")
		out, err := json.Marshal(top)
		return out, rev, err
	}
	var root yaml.Node
	if yaml.Unmarshal(data, &root) != nil || len(root.Content) != 1 || root.Content[0].Kind != yaml.MappingNode {
		return data, 0, nil
	}
	m := root.Content[0]
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value != "revision" {
			continue
		}
		rev, err := strconv.ParseInt(m.Content[i+1].Value, 10, 64)
		if err != nil {
			return nil, 0, fmt.Errorf("line %d: revision must be an integer", m.Content[i+1].Line)
		}
		m.Content = append(m.Content[:i:i], m.Content[i+2:]...)
		out, err := yaml.Marshal(&root)
		return out, rev, err
	}
	return data, 0, nil
}

func showDiff(g *globals, body []byte, rev int64) error {
	var dr api.DryRunResponse
	raw, err := g.call(http.MethodPut, "/v1/config?dry_run=true", body, revisionHeader(rev), &dr)
	if err != nil {
		return err
	}
	if g.jsonOutput() {
		g.printRaw(raw)
		return nil
	}
	w := g.stdout
	fmt.Fprintf(w, "against revision %d (flows compiled from the stored document at %s)\n", dr.Revision, dr.At.Format("2006-01-02T15:04:05Z07:00"))
	if len(dr.Items.Added)+len(dr.Items.Changed)+len(dr.Items.Removed) == 0 {
		fmt.Fprintln(w, "items: no change")
	}
	for _, it := range dr.Items.Added {
		fmt.Fprintf(w, "+ %s\n", it)
	}
	for _, it := range dr.Items.Changed {
		fmt.Fprintf(w, "~ %s\n", it)
	}
	for _, it := range dr.Items.Removed {
		fmt.Fprintf(w, "- %s\n", it)
	}
	for _, b := range dr.Bridges {
		label := b.DPID
		if b.Name != "" {
			label += " (" + b.Name + ")"
		}
		var notes []string
		if !b.Registered {
			notes = append(notes, "unregistered")
		}
		if b.Connected {
			notes = append(notes, "connected")
		}
		if len(notes) > 0 {
			label += " [" + strings.Join(notes, ", ") + "]"
		}
		n := len(b.Add) + len(b.Modify) + len(b.Delete)
		if n == 0 {
			fmt.Fprintf(w, "\nbridge %s: no flow change\n", label)
			continue
		}
		fmt.Fprintf(w, "\nbridge %s: %d to add, %d to modify, %d to delete\n", label, len(b.Add), len(b.Modify), len(b.Delete))
		for _, f := range b.Add {
			fmt.Fprintf(w, "  + %s\n", f)
		}
		for _, f := range b.Modify {
			fmt.Fprintf(w, "  ~ %s\n", f)
		}
		for _, f := range b.Delete {
			fmt.Fprintf(w, "  - %s\n", f)
		}
	}
	return nil
}

var collections = map[string]bool{"pools": true, "relays": true, "destinations": true, "services": true, "bridges": true}

func runGet(g *globals, args []string) error {
	fs := g.flagSet("get")
	pos, err := g.parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 || (pos[0] != "config" && !collections[pos[0]]) {
		return usagef("usage: get config|pools|relays|destinations|services|bridges")
	}
	if pos[0] == "config" {
		return getConfig(g)
	}
	return getCollection(g, pos[0])
}

// getConfig prints YAML by default: it is what operators edit, and the
// revision goes in a comment so the file re-applies cleanly.
func getConfig(g *globals) error {
	raw, err := g.call(http.MethodGet, "/v1/config", nil, nil, nil)
	if err != nil {
		return err
	}
	if g.jsonOutput() {
		g.printRaw(raw)
		return nil
	}
	var resp struct {
		Revision int64 `json:"revision"`
		topology.Document
	}
	if err := json.Unmarshal(raw, &resp); err != nil {
		return fmt.Errorf("unexpected answer: %w", err)
	}
	out, err := yaml.Marshal(&resp.Document)
	if err != nil {
		return err
	}
	fmt.Fprintf(g.stdout, "# revision: %d\n%s", resp.Revision, out)
	return nil
}

func getCollection(g *globals, kind string) error {
	raw, err := g.call(http.MethodGet, "/v1/"+kind, nil, nil, nil)
	if err != nil {
		return err
	}
	if g.jsonOutput() {
		g.printRaw(raw)
		return nil
	}
	var resp struct {
		Pools        []topology.Pool           `json:"pools"`
		Relays       []topology.Relay          `json:"relays"`
		Destinations []topology.DestinationSet `json:"destinations"`
		Services     []topology.Service        `json:"services"`
		Bridges      []topology.Bridge         `json:"bridges"`
	}
	if err := json.Unmarshal(raw, &resp); err != nil {
		return fmt.Errorf("unexpected answer: %w", err)
	}
	tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
	defer tw.Flush()
	switch kind {
	case "pools":
		fmt.Fprintln(tw, "NAME\tPREFIX\tKIND\tSERVICE")
		for _, p := range resp.Pools {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", p.Name, p.Prefix, p.Kind, p.Service)
		}
	case "relays":
		fmt.Fprintln(tw, "NAME\tPREFIX")
		for _, r := range resp.Relays {
			fmt.Fprintf(tw, "%s\t%s\n", r.Name, r.Prefix)
		}
	case "destinations":
		fmt.Fprintln(tw, "NAME\tPREFIXES")
		for _, d := range resp.Destinations {
			fmt.Fprintf(tw, "%s\t%s\n", d.Name, strings.Join(d.Prefixes, ","))
		}
	case "services":
		fmt.Fprintln(tw, "NAME\tPHASES")
		for _, s := range resp.Services {
			fmt.Fprintf(tw, "%s\t%d\n", s.Name, len(s.Phases))
		}
	case "bridges":
		fmt.Fprintln(tw, "DPID\tNAME\tPOP")
		for _, b := range resp.Bridges {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", b.DPID, b.Name, b.Pop)
		}
	}
	return nil
}
