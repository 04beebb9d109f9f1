package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"

	"gopkg.in/yaml.v3"

	"github.com/op25b/op25b/api/apitypes"
	"github.com/op25b/op25b/client"
	"github.com/op25b/op25b/topology"
)

func runApply(g *globals, args []string) error {
	fs := g.flagSet("apply")
	file := fs.String("f", "", "policy document, JSON or YAML (- for stdin)")
	dryRun := fs.Bool("dry-run", false, "validate and show the flow diff; store nothing")
	ifMatch := fs.Int64("if-match", 0, "only apply if the stored revision is still REV")
	force := fs.Bool("force", false, "ignore the file's revision: overwrite whatever is stored")
	if _, err := g.parseInterleaved(fs, args); err != nil {
		return err
	}
	if *force && *ifMatch != 0 {
		return usagef("--force and --if-match contradict each other")
	}
	doc, fileRev, err := readDocument(g, *file)
	if err != nil {
		return err
	}
	rev := *ifMatch
	if rev == 0 && !*force {
		rev = fileRev
	}
	if *dryRun {
		_, err := showDiff(g, doc, rev)
		return conflictHint(err, *file)
	}
	c, err := g.client()
	if err != nil {
		return err
	}
	ctx, cancel := g.context(defaultTimeout)
	defer cancel()
	newRev, err := c.Apply(ctx, doc, rev)
	if err != nil {
		return conflictHint(err, *file)
	}
	if g.jsonOutput() {
		return g.printJSON(apitypes.WriteResult{Revision: newRev})
	}
	fmt.Fprintf(g.stdout, "applied: revision %d\n", newRev)
	return nil
}

// conflictHint tells an operator whose file is based on an old revision
// how to re-base it, rather than just that it is stale.
func conflictHint(err error, file string) error {
	if client.ErrorCode(err) != apitypes.CodeConflict {
		return err
	}
	if file == "" || file == "-" {
		file = "FILE"
	}
	return fmt.Errorf("%s; re-base: see what changed with `op25bctl history`, fetch the current document with `op25bctl get config > new.yaml`, "+
		"redo your edit there and apply that (`op25bctl diff -f %s --force` shows what your file would change now); "+
		"or overwrite the newer document with `op25bctl apply -f %s --force`", conflictSummary(err), file, file)
}

// conflictSummary keeps the server's statement of a 409 (which revisions)
// and drops its generic advice, which the caller replaces with commands.
func conflictSummary(err error) string {
	var ae *client.APIError
	if !errors.As(err, &ae) {
		return err.Error()
	}
	msg := ae.Message
	if i := strings.Index(msg, ". Re-base"); i > 0 {
		msg = msg[:i]
	}
	return fmt.Sprintf("%s (HTTP %d %s)", msg, ae.Status, ae.Code)
}

func runDiff(g *globals, args []string) error {
	fs := g.flagSet("diff")
	file := fs.String("f", "", "policy document, JSON or YAML (- for stdin)")
	exitCode := fs.Bool("exit-code", false, "exit 1 when there are changes, 0 when none, 2 on errors (like diff(1))")
	force := fs.Bool("force", false, "compare even if the file's revision is not the stored one")
	if _, err := g.parseInterleaved(fs, args); err != nil {
		return err
	}
	doc, rev, err := readDocument(g, *file)
	if err == nil {
		if *force {
			rev = 0
		}
		var dr *apitypes.DryRun
		dr, err = showDiff(g, doc, rev)
		err = conflictHint(err, *file)
		if err == nil && *exitCode && !dr.Empty() {
			return &exitCodeError{code: 1}
		}
	}
	if err != nil && *exitCode {
		var ue *usageError
		if !errors.As(err, &ue) {
			return &exitCodeError{code: 2, err: err}
		}
	}
	return err
}

// readDocument parses a JSON or YAML file locally (so YAML never reaches
// the API, and syntax errors name the line before any request). A
// top-level "revision", as printed by `get config`, is returned separately
// and used as If-Match.
func readDocument(g *globals, path string) (*topology.Document, int64, error) {
	data, err := readFile(g, path)
	if err != nil {
		return nil, 0, err
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
	return doc, rev, nil
}

func readFile(g *globals, path string) ([]byte, error) {
	if path == "" {
		return nil, usagef("-f FILE is required")
	}
	var data []byte
	var err error
	if path == "-" {
		data, err = io.ReadAll(g.stdin)
	} else {
		data, err = os.ReadFile(path)
	}
	if err != nil {
		return nil, fmt.Errorf("read policy: %w", err)
	}
	return data, nil
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
		k, v := m.Content[i], m.Content[i+1]
		if k.Line == v.Line && k.Column == 1 {
			// Blank the line rather than re-encode the document, so that
			// the line numbers of parse errors (and of lint) stay the file's.
			lines := bytes.SplitAfter(data, []byte("\n"))
			if k.Line-1 < len(lines) && bytes.HasPrefix(lines[k.Line-1], []byte("revision:")) {
				lines[k.Line-1] = []byte("\n")
				return bytes.Join(lines, nil), rev, nil
			}
		}
		m.Content = append(m.Content[:i:i], m.Content[i+2:]...)
		out, err := yaml.Marshal(&root)
		return out, rev, err
	}
	return data, 0, nil
}

func showDiff(g *globals, doc *topology.Document, rev int64) (*apitypes.DryRun, error) {
	c, err := g.client()
	if err != nil {
		return nil, err
	}
	ctx, cancel := g.context(defaultTimeout)
	defer cancel()
	dr, err := c.DryRun(ctx, doc, rev)
	if err != nil {
		return nil, err
	}
	if g.jsonOutput() {
		return dr, g.printJSON(dr)
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
		label := string(b.DPID)
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
	return dr, nil
}

func runGet(g *globals, args []string) error {
	fs := g.flagSet("get")
	at := fs.Int64("revision", 0, "get config: the document as it was at this revision")
	pos, err := g.parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("usage: get config [--revision N] | %s", strings.ReplaceAll(kindNames(), ", ", "|"))
	}
	if _, collection := topology.ItemKindNamed(pos[0]); pos[0] != "config" && !collection {
		return usagef("usage: get config [--revision N] | %s", strings.ReplaceAll(kindNames(), ", ", "|"))
	}
	if *at < 0 || *at != 0 && pos[0] != "config" {
		return usagef("--revision N (N > 0) goes with get config only")
	}
	if pos[0] == "config" {
		return getConfig(g, *at)
	}
	return getCollection(g, pos[0])
}

// configYAML is the YAML form of get config: the revision first, as data,
// so that apply -f of an edited copy is refused if the document moved on.
type configYAML struct {
	Revision          int64 `yaml:"revision"`
	topology.Document `yaml:",inline"`
}

// getConfig prints YAML by default: it is what operators edit. The
// revision is a key of the document, not a comment, so that it survives
// editors and tools and re-applying the file is guarded by it.
func getConfig(g *globals, at int64) error {
	c, err := g.client()
	if err != nil {
		return err
	}
	ctx, cancel := g.context(defaultTimeout)
	defer cancel()
	var cfg *apitypes.Config
	if at > 0 {
		cfg, err = c.ConfigAt(ctx, at)
	} else {
		cfg, err = c.Config(ctx)
	}
	if err != nil {
		return err
	}
	if cfg.Document == nil {
		cfg.Document = &topology.Document{}
	}
	if g.jsonOutput() {
		return g.printJSON(cfg)
	}
	out, err := yaml.Marshal(configYAML{Revision: cfg.Revision, Document: *cfg.Document})
	if err != nil {
		return err
	}
	if at > 0 {
		fmt.Fprintf(g.stdout, "# The policy document as it was at revision %d (written at revision %d).\n"+
			"# To restore it: op25bctl rollback %d. Applying this file is refused while the\n"+
			"# stored document is newer, unless with apply --force.\n", at, cfg.Revision, cfg.Revision)
	} else {
		fmt.Fprintf(g.stdout, "# op25b policy document at revision %d. Edit and apply -f this file:\n"+
			"# the apply is refused (409) if the stored document changed since this revision.\n", cfg.Revision)
	}
	_, err = g.stdout.Write(out)
	return err
}

func getCollection(g *globals, kind string) error {
	c, err := g.client()
	if err != nil {
		return err
	}
	ctx, cancel := g.context(defaultTimeout)
	defer cancel()
	resp, err := c.Collection(ctx, kind)
	if err != nil {
		return err
	}
	k, _ := topology.ItemKindNamed(kind)
	if g.jsonOutput() {
		// The API's answer shape: the revision and the one list, []
		// rather than absent when empty.
		return g.printJSON(map[string]any{"revision": resp.Revision, kind: k.List(&resp.Document)})
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
	case topology.ItemExemptions, topology.ItemQuarantines:
		entries := resp.Exemptions
		for _, q := range resp.Quarantines {
			entries = append(entries, topology.Exemption(q))
		}
		now := g.now()
		fmt.Fprintln(tw, "NAME\tPREFIX\tUNTIL\tSTATE\tTICKET\tREASON")
		for _, e := range entries {
			state := "in force"
			if !e.ActiveAt(now) {
				state = "lapsed"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", e.Name, e.Prefix, e.Until, state, e.Ticket, e.Reason)
		}
	default: // a kind without a table of its own: its keys (--json has the rest)
		fmt.Fprintln(tw, strings.ToUpper(k.KeyField))
		for i := range k.Len(&resp.Document) {
			fmt.Fprintln(tw, k.Key(&resp.Document, i))
		}
	}
	return nil
}

func nonNil[T any](l []T) []T {
	if l == nil {
		return []T{}
	}
	return l
}
