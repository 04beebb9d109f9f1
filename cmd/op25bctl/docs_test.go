package main

import (
	"bytes"
	"os/exec"
	"strings"
	"testing"
)

func TestVersion(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"--version"}, strings.NewReader(""), &out, &errb, func(string) string { return "" }); code != 0 {
		t.Fatalf("--version exit %d: %s", code, errb.String())
	}
	if !strings.HasPrefix(out.String(), "op25bctl version ") || strings.Count(out.String(), "\n") != 1 {
		t.Errorf("--version = %q", out.String())
	}
}

// The man page and the completion list every command with the flags the
// command really parses.
func TestDocPage(t *testing.T) {
	p := docPage()
	flags := map[string][]string{}
	for _, c := range p.Commands {
		if c.Flags == nil {
			t.Errorf("%s: no FlagSet captured", c.Name)
			continue
		}
		if c.Flags.Lookup("server") == nil {
			t.Errorf("%s: the captured FlagSet lacks the global flags", c.Name)
		}
		// --timeout is a global flag now (checked with --server above).
		for _, f := range []string{"f", "dry-run", "if-match", "wait-revision", "limit", "before", "controllers"} {
			if c.Flags.Lookup(f) != nil {
				flags[c.Name] = append(flags[c.Name], f)
			}
		}
	}
	want := map[string]string{"apply": "f dry-run if-match", "diff": "f", "status": "wait-revision", "audit": "limit before", "ovs": "controllers"}
	for cmd, w := range want {
		if got := strings.Join(flags[cmd], " "); got != w {
			t.Errorf("%s flags %q, want %q", cmd, got, w)
		}
	}
	if len(p.Commands) != len(commands) {
		t.Errorf("%d commands documented, %d exist", len(p.Commands), len(commands))
	}
	var man bytes.Buffer
	if code := run([]string{"__doc", "man"}, strings.NewReader(""), &man, &man, func(string) string { return "" }); code != 0 {
		t.Fatalf("__doc man: %s", man.String())
	}
	for _, w := range []string{`.TH OP25BCTL 1`, `\-\-wait\-revision`, `pools|relays|destinations|services|bridges`} {
		if !strings.Contains(man.String(), w) {
			t.Errorf("man page lacks %q", w)
		}
	}
	if _, err := exec.LookPath("groff"); err == nil {
		cmd := exec.Command("groff", "-man", "-Tutf8", "-ww", "-z")
		cmd.Stdin = &man
		if out, err := cmd.CombinedOutput(); err != nil || len(out) > 0 {
			t.Errorf("groff -ww: %v\n%s", err, out)
		}
	}
	if got := firstArgs("ovs", "ovs attach BRIDGE --controllers tcp:IP:PORT,... | ovs detach BRIDGE"); strings.Join(got, " ") != "attach detach" {
		t.Errorf("firstArgs ovs = %v", got)
	}
}
