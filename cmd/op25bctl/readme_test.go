package main

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/op25b/op25b/api"
	"github.com/op25b/op25b/internal/testenv"
	"github.com/op25b/op25b/offenders"
	"github.com/op25b/op25b/topology/store"
)

// TestREADMEExamples runs the README's policy file and every "$ op25bctl"
// line of its console block, in order, so the documentation cannot rot.
func TestREADMEExamples(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	policy := fencedBlock(t, string(readme), "yaml")
	var commands [][]string
	for _, line := range strings.Split(fencedBlock(t, string(readme), "console"), "\n") {
		if rest, ok := strings.CutPrefix(line, "$ op25bctl "); ok {
			commands = append(commands, shellWords(rest))
		}
	}
	if len(commands) < 5 {
		t.Fatalf("only %d example commands found in README.md", len(commands))
	}

	bin := filepath.Join(buildBinaries(t), "op25bctl")
	etcd := testenv.EmbeddedEtcd(t)
	st := store.New(etcd.Client, "/readme/", slog.New(slog.DiscardHandler))
	sw := &fakeSwitches{}
	// The abuse desk's view: what the switches of tokyo-1 counted.
	tracker, err := offenders.NewTracker(offenders.Config{})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2007, 1, 10, 0, 0, 0, 0, time.UTC)
	tracker.Add(offenders.Batch{Bridge: "0000000000000001", At: now.Add(-10 * time.Minute), Attempts: []offenders.Attempt{
		{Src: netip.MustParseAddr("10.1.3.7"), Dst: netip.MustParseAddr("203.0.113.25"), Pool: "tokyo-dyn", Count: 1840},
		{Src: netip.MustParseAddr("10.1.9.9"), Dst: netip.MustParseAddr("203.0.113.26"), Pool: "tokyo-dyn", Count: 12},
	}})
	h, err := api.New(api.Config{Store: st, Switches: sw, NodeID: "node-a", Logger: slog.New(slog.DiscardHandler),
		Now: func() time.Time { return now }, Offenders: tracker})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "policy.yaml"), []byte(policy), 0o600); err != nil {
		t.Fatal(err)
	}
	c := ctl{t: t, bin: bin, env: []string{"OP25B_SERVER=" + srv.URL}, dir: dir}
	for _, args := range commands {
		// The fake switch has applied whatever is stored, as a converged
		// bridge would have.
		if _, rev, err := st.Load(context.Background()); err == nil {
			sw.mu.Lock()
			sw.applied = rev
			sw.mu.Unlock()
		}
		out := c.ok(args...)
		if strings.TrimSpace(out) == "" {
			t.Fatalf("op25bctl %s printed nothing", strings.Join(args, " "))
		}
	}
}

// fencedBlock returns the first ```lang block of a Markdown text.
func fencedBlock(t *testing.T, md, lang string) string {
	t.Helper()
	_, after, ok := strings.Cut(md, "```"+lang+"\n")
	if !ok {
		t.Fatalf("README.md has no ```%s block", lang)
	}
	block, _, ok := strings.Cut(after, "```")
	if !ok {
		t.Fatalf("README.md: unterminated ```%s block", lang)
	}
	return block
}

// shellWords splits a README command line into arguments the way a shell
// does for the simple lines there: on spaces, except inside "double quotes".
func shellWords(line string) []string {
	var words []string
	var cur strings.Builder
	quoted, inWord := false, false
	for _, r := range line {
		switch {
		case r == '"':
			quoted, inWord = !quoted, true
		case r == ' ' && !quoted:
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
			}
			inWord = false
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words
}
