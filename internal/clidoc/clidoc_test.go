package clidoc

import (
	"bytes"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func samplePage() Page {
	global := flag.NewFlagSet("tool", flag.ContinueOnError)
	global.String("server", "http://127.0.0.1:8080", "API base `URL`")
	global.String("o", "table", "output: table or json")
	global.Bool("version", false, "print the version")
	global.String("data-dir", "./data", "`directory` of the data")
	global.String("log-level", "info", "`level` of the logs")
	apply := flag.NewFlagSet("apply", flag.ContinueOnError)
	apply.String("server", "", "inherited global")
	apply.String("f", "", "policy `file`")
	apply.Bool("dry-run", false, "store nothing")
	get := flag.NewFlagSet("get", flag.ContinueOnError)
	return Page{
		Name: "tool", Section: "1", Summary: "a tool - with a dash", Version: "v1.2.3",
		Synopsis:    []string{"[flags] COMMAND"},
		Description: []string{"First paragraph.", ".A line starting with a dot and a back\\slash."},
		Flags:       global,
		FlagEnv:     func(n string) string { return "TOOL_" + strings.ToUpper(n) },
		Values:      map[string][]string{"o": {"table", "json"}, "log-level": {"debug", "info"}},
		Commands: []Command{
			{Name: "apply", Usage: "apply -f FILE [--dry-run]", Summary: "store a document", Flags: apply},
			{Name: "get", Usage: "get config|pools", Summary: "print", Args: []string{"config", "pools"}, Flags: get},
		},
		Sections: []Section{{Title: "Exit status", Paragraphs: []string{"0 on success."}}},
	}
}

func TestWriteMan(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteMan(&buf, samplePage(), time.Date(2026, 11, 29, 0, 0, 0, 0, time.UTC)); err != nil {
		t.Fatal(err)
	}
	man := buf.String()
	for _, want := range []string{
		`.TH TOOL 1 "2026\-11\-29" "op25b v1.2.3" "op25b manual"`,
		`tool \- a tool \- with a dash`,
		`.BI \-\-server " " URL`,
		"API base URL. Default: http://127.0.0.1:8080. Environment: TOOL_SERVER.",
		".B \\-\\-version\nprint the version. Environment: TOOL_VERSION.",
		".SH COMMANDS",
		`.BI \-f " " file`,
		`\&.A line starting with a dot and a back\eslash.`,
		".SH EXIT STATUS",
	} {
		if !strings.Contains(man, want) {
			t.Errorf("man page lacks %q:\n%s", want, man)
		}
	}
	if strings.Count(man, `\-\-server`) != 1 {
		t.Errorf("the global --server is repeated under the command:\n%s", man)
	}
	// groff, when installed, renders it without a warning.
	if _, err := exec.LookPath("groff"); err == nil {
		cmd := exec.Command("groff", "-man", "-Tutf8", "-ww", "-z")
		cmd.Stdin = strings.NewReader(man)
		if out, err := cmd.CombinedOutput(); err != nil || len(out) > 0 {
			t.Errorf("groff -ww: %v\n%s", err, out)
		}
	}
}

// complete runs the generated script in bash for a command line whose
// last word is being completed and returns the candidates.
func complete(t *testing.T, script, line string) []string {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "completion.bash")
	if err := os.WriteFile(path, []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	// bash splits at '=' too (COMP_WORDBREAKS).
	words := strings.Split(strings.ReplaceAll(line, "=", " = "), " ")
	var quoted []string
	for _, w := range words {
		quoted = append(quoted, "'"+w+"'")
	}
	prog := `source ` + path + `
COMP_WORDS=(` + strings.Join(quoted, " ") + `)
COMP_CWORD=$((${#COMP_WORDS[@]}-1))
cd ` + dir + `
_tool
printf '%s\n' "${COMPREPLY[@]}"`
	out, err := exec.Command("bash", "--norc", "--noprofile", "-c", prog).CombinedOutput()
	if err != nil {
		t.Fatalf("bash: %v\n%s", err, out)
	}
	var got []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if l != "" {
			got = append(got, l)
		}
	}
	return got
}

func TestWriteBashCompletion(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("no bash")
	}
	var buf bytes.Buffer
	if err := WriteBashCompletion(&buf, samplePage()); err != nil {
		t.Fatal(err)
	}
	script := buf.String()
	for _, tc := range []struct{ line, want string }{
		{"tool ", "apply get help"},
		{"tool --ser", "--server"},
		{"tool -o ", "table json"},
		{"tool --log-level=", "debug info"},
		{"tool --log-level=d", "debug"},
		{"tool --server http://x ap", "apply"},
		{"tool apply --d", "--dry-run --data-dir"}, // global flags go after the command too
		{"tool apply -f ", "completion.bash"},      // a file in the current directory
		{"tool get ", "config pools"},
		{"tool get config ", ""},
		{"tool -o json get p", "pools"},
		{"tool --server ", ""},
	} {
		if got := strings.Join(complete(t, script, tc.line), " "); got != tc.want {
			t.Errorf("complete %q = %q, want %q", tc.line, got, tc.want)
		}
	}
}

func TestGenerate(t *testing.T) {
	var out, errb bytes.Buffer
	if code, handled := Generate([]string{"apply"}, samplePage, &out, &errb); handled || code != 0 {
		t.Errorf("ordinary arguments handled")
	}
	if code, handled := Generate([]string{"__doc", "man"}, samplePage, &out, &errb); !handled || code != 0 || !strings.Contains(out.String(), ".TH TOOL") {
		t.Errorf("__doc man: %d %v %s", code, handled, errb.String())
	}
	if code, handled := Generate([]string{"__doc", "pdf"}, samplePage, &out, &errb); !handled || code != 2 {
		t.Errorf("__doc pdf: %d %v", code, handled)
	}
}
