package topology

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/errors/*.golden from the current messages")

// TestErrorMessagesGolden pins what a NOC engineer reads for broken
// documents: each testdata/errors/NAME.{json,yaml} is parsed and validated,
// and every problem, one "field: message" per line, must equal
// NAME.{json,yaml}.golden. Review message changes in the diff; regenerate with
// go test ./topology -run TestErrorMessagesGolden -update.
func TestErrorMessagesGolden(t *testing.T) {
	inputs, err := filepath.Glob("testdata/errors/*.*")
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range inputs {
		if strings.HasSuffix(in, ".golden") {
			continue
		}
		t.Run(filepath.Base(in), func(t *testing.T) {
			data, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			got := describeProblems(data)
			golden := in + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("messages for %s changed:\n--- got\n%s--- want\n%s", in, got, want)
			}
		})
	}
}

func describeProblems(data []byte) string {
	doc, err := Parse(data)
	if err == nil {
		err = Validate(doc)
	}
	var ve *ValidationError
	var pe *ParseError
	var b strings.Builder
	switch {
	case err == nil:
		b.WriteString("valid\n")
	case errors.As(err, &ve):
		for _, fe := range ve.Errors {
			b.WriteString(fe.String() + "\n")
		}
	case errors.As(err, &pe):
		b.WriteString("parse error: " + pe.Error() + "\n")
	default:
		b.WriteString("unexpected error type: " + err.Error() + "\n")
	}
	return b.String()
}
