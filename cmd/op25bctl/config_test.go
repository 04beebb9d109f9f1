package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/op25b/op25b/topology"
)

func TestSplitRevision(t *testing.T) {
	cases := []struct {
		name, in string
		rev      int64
		wantErr  bool
	}{
		{"json with revision", `{"revision": 7, "ports": [25]}`, 7, false},
		{"json without", `{"ports": [25]}`, 0, false},
		{"yaml with revision", "revision: 9\nports: [25]\n", 9, false},
		{"yaml comment only", "# revision: 9\nports: [25]\n", 0, false},
		{"yaml bad revision", "revision: soon\nports: [25]\n", 0, true},
		{"json bad revision", `{"revision": "x"}`, 0, true},
		{"nested revision is not top-level", "ports: [25]\npools: [{name: revision, prefix: 10.0.0.0/8, kind: static}]\n", 0, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, rev, err := splitRevision([]byte(tc.in))
			if (err != nil) != tc.wantErr || rev != tc.rev {
				t.Fatalf("rev %d err %v, want rev %d err %v", rev, err, tc.rev, tc.wantErr)
			}
			if err != nil {
				return
			}
			doc, err := topology.Parse(out)
			if err != nil {
				t.Fatalf("result does not parse: %v\n%s", err, out)
			}
			if len(doc.Ports) != 1 {
				t.Fatalf("document lost: %+v", doc)
			}
		})
	}
}

// Flags may come before or after the command and its arguments.
func TestRunFlagPlacementAndUsage(t *testing.T) {
	var out, errb bytes.Buffer
	env := func(string) string { return "" }
	if code := run([]string{"help"}, nil, &out, &errb, env); code != 0 || !strings.Contains(out.String(), "status [--wait-revision N]") {
		t.Fatalf("help: %d %q", code, out.String())
	}
	for _, args := range [][]string{
		{"--server", "http://127.0.0.1:1", "flows", "0000000000000001"},
		{"flows", "0000000000000001", "--server", "http://127.0.0.1:1"},
		{"flows", "--server=http://127.0.0.1:1", "0000000000000001", "-o", "json"},
	} {
		errb.Reset()
		if code := run(args, nil, &out, &errb, env); code != 1 || !strings.Contains(errb.String(), "cannot reach http://127.0.0.1:1") {
			t.Fatalf("%v: exit %d, stderr %q", args, code, errb.String())
		}
	}
	errb.Reset()
	if code := run([]string{"flows", "a", "b"}, nil, &out, &errb, env); code != 2 {
		t.Fatalf("two bridges: exit %d, %q", code, errb.String())
	}
	errb.Reset()
	if code := run(nil, nil, &out, &errb, env); code != 2 || !strings.Contains(errb.String(), "usage:") {
		t.Fatalf("no command: exit %d, %q", code, errb.String())
	}
}
