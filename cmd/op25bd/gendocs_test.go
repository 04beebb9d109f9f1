package main

import (
	"bytes"
	"flag"
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
