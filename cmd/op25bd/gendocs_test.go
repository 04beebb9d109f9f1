package main

import (
	"bytes"
	"flag"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// The man page documents every flag with its variable, and groff renders
// it without a warning.
func TestManPage(t *testing.T) {
	var man, errb bytes.Buffer
	if code, done := generateDocs([]string{"__doc", "man"}, &man, &errb); !done || code != 0 {
		t.Fatalf("__doc man: %d %v %s", code, done, errb.String())
	}
	newFlagSet(&options{}, &rawFlags{}).VisitAll(func(f *flag.Flag) {
		name := strings.ReplaceAll("--"+f.Name, "-", `\-`)
		if !strings.Contains(man.String(), ".B "+name) && !strings.Contains(man.String(), ".BI "+name+" ") {
			t.Errorf("man page lacks %s", f.Name)
		}
		if env := envName(f.Name); f.Name != "version" && !strings.Contains(man.String(), env) {
			t.Errorf("man page lacks %s", env)
		}
	})
	if _, err := exec.LookPath("groff"); err == nil {
		cmd := exec.Command("groff", "-man", "-Tutf8", "-ww", "-z")
		cmd.Stdin = &man
		if out, err := cmd.CombinedOutput(); err != nil || len(out) > 0 {
			t.Errorf("groff -ww: %v\n%s", err, out)
		}
	}
}

// docs/operations.md's flag table lists every flag, and the package's
// /etc/default/op25bd names only variables that set a flag.
func TestFlagsDocumentedForOperators(t *testing.T) {
	ops, err := os.ReadFile("../../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	newFlagSet(&options{}, &rawFlags{}).VisitAll(func(f *flag.Flag) {
		if !strings.Contains(string(ops), "`--"+f.Name+"`") {
			t.Errorf("docs/operations.md does not document --%s", f.Name)
		}
	})
	def, err := os.ReadFile("../../packaging/deb/op25bd.default")
	if err != nil {
		t.Fatal(err)
	}
	var env []string
	for _, line := range strings.Split(string(def), "\n") {
		line = strings.TrimPrefix(strings.TrimSpace(line), "#")
		if name, _, ok := strings.Cut(line, "="); ok && strings.HasPrefix(name, "OP25B_") {
			env = append(env, line)
		}
	}
	if len(env) < 10 {
		t.Fatalf("only %d OP25B_ lines in packaging/deb/op25bd.default", len(env))
	}
	for _, v := range strayVariables(env) {
		t.Errorf("packaging/deb/op25bd.default: %s sets no flag (closest --%s)", v.Name, v.Closest)
	}
}
