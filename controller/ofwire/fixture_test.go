package ofwire_test

import (
	"bytes"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

var (
	update  = flag.Bool("update", false, "rewrite testdata/netrack/*.hex from netrack's encoder and every fixture's ofp-print notes")
	capture = flag.Bool("capture", false, "re-capture testdata/ovs-ofctl/ (from ovs-ofctl) and testdata/ovs/ (from a real OVS bridge)")
)

// A fixture is one OpenFlow message as hex under testdata/, with comment
// lines saying what it is, where the bytes came from, and how
// `ovs-ofctl ofp-print` decodes them:
//
//	# what it is and how it was captured
//	# ovs-ofctl ofp-print:
//	#   OFPT_HELLO (OF1.3) (xid=0x1):
//	04 00 00 10 00 00 00 01 00 01 00 08 00 00 00 10
type fixture struct {
	Path  string
	Note  []string // comment lines before "ovs-ofctl ofp-print:", without "# "
	Print []string // ofp-print output lines as recorded
	Bytes []byte
}

const printMarker = "ovs-ofctl ofp-print:"

func readFixture(t testing.TB, path string) fixture {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("fixture: %v (regenerate with -update or -capture)", err)
	}
	f := fixture{Path: path}
	var hexText strings.Builder
	inPrint := false
	for _, line := range strings.Split(string(raw), "\n") {
		switch {
		case strings.HasPrefix(line, "#"):
			c := strings.TrimPrefix(strings.TrimPrefix(line, "#"), " ")
			switch {
			case c == printMarker:
				inPrint = true
			case inPrint:
				f.Print = append(f.Print, strings.TrimPrefix(c, "  "))
			default:
				f.Note = append(f.Note, c)
			}
		default:
			hexText.WriteString(strings.ReplaceAll(line, " ", ""))
		}
	}
	b, err := hex.DecodeString(hexText.String())
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	f.Bytes = b
	return f
}

// writeFixture writes b with note and, when ovs-ofctl is installed, its
// ofp-print decoding.
func writeFixture(t testing.TB, path string, note []string, b []byte) {
	t.Helper()
	var sb strings.Builder
	for _, n := range note {
		fmt.Fprintf(&sb, "# %s\n", n)
	}
	if out, err := ofpPrint(b); err == nil {
		fmt.Fprintf(&sb, "# %s\n", printMarker)
		for _, l := range out {
			fmt.Fprintf(&sb, "#   %s\n", l)
		}
	} else {
		t.Logf("%s: no ofp-print notes: %v", path, err)
	}
	for i := 0; i < len(b); i += 16 {
		chunk := b[i:min(i+16, len(b))]
		parts := make([]string, len(chunk))
		for j, c := range chunk {
			parts[j] = fmt.Sprintf("%02x", c)
		}
		sb.WriteString(strings.Join(parts, " ") + "\n")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(sb.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

// ofpPrint is OVS's own decoding of one message (ovs-ofctl ofp-print).
func ofpPrint(b []byte) ([]string, error) {
	if _, err := exec.LookPath("ovs-ofctl"); err != nil {
		return nil, err
	}
	// Stdout only: OVS's log lines (stderr, with a timestamp) would make
	// the recorded decoding differ between runs.
	cmd := exec.Command("ovs-ofctl", "ofp-print", hex.EncodeToString(b))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("ovs-ofctl ofp-print: %v: %s%s", err, out, stderr.Bytes())
	}
	lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	for i := range lines {
		lines[i] = strings.TrimRight(lines[i], " ")
	}
	return lines, nil
}

// requireOfctl skips without ovs-ofctl, except under CI where OVS is a
// declared dependency (Makefile APT_PACKAGES) and a skip would hide a gap.
func requireOfctl(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath("ovs-ofctl"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("ovs-ofctl is required under CI: %v", err)
		}
		t.Skipf("ovs-ofctl not installed: %v", err)
	}
}

func fixturePaths(t testing.TB) []string {
	t.Helper()
	var paths []string
	for _, dir := range []string{"netrack", "ovs-ofctl", "ovs"} {
		m, err := filepath.Glob(filepath.Join("testdata", dir, "*.hex"))
		if err != nil {
			t.Fatal(err)
		}
		paths = append(paths, m...)
	}
	sort.Strings(paths)
	return paths
}

// Every fixture, whatever its source, is a message OVS itself decodes to
// what its notes record: a third opinion on each byte string, and the
// human-readable form reviewers read in diffs.
func TestFixturesDecodeWithOvsOfctl(t *testing.T) {
	requireOfctl(t)
	paths := fixturePaths(t)
	if len(paths) < 30 {
		t.Fatalf("only %d fixtures under testdata/", len(paths))
	}
	for _, p := range paths {
		f := readFixture(t, p)
		got, err := ofpPrint(f.Bytes)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		// An error's data may be a request OVS itself refused (and
		// prints as a decode error); the message itself must decode.
		if strings.Contains(got[0], "***") {
			t.Errorf("%s: OVS cannot decode it:\n%s", p, strings.Join(got, "\n"))
		}
		if *update {
			writeFixture(t, p, f.Note, f.Bytes)
			continue
		}
		if !equalLines(got, f.Print) {
			t.Errorf("%s: ofp-print now says\n%s\nrecorded\n%s", p, strings.Join(got, "\n"), strings.Join(f.Print, "\n"))
		}
	}
}

func equalLines(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func mustEqualBytes(t testing.TB, what string, got, want []byte) {
	t.Helper()
	if !bytes.Equal(got, want) {
		t.Errorf("%s:\n got %x\nwant %x", what, got, want)
	}
}
