package topology

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

// FuzzParseValidate feeds arbitrary bytes through Parse and Validate. It
// asserts that nothing panics and that a document accepted by Validate
// survives a JSON round trip (encode, ParseJSON) unchanged and still valid:
// that is what the store and the API do with every accepted document. Seeds
// are every file in testdata/ (new crashers land in testdata/fuzz/ and
// become regression cases).
func FuzzParseValidate(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/*.*")
	more, _ := filepath.Glob("testdata/errors/*.*")
	seeds = append(seeds, more...)
	for _, name := range seeds {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(`{"pools":[{"name":"a","prefix":"10.0.0.0/8","kind":"dynamic","service":"s"}],"services":[{"name":"s","phases":[{"from":"2030-01-01T00:00:00Z","block":"all","pops":["x"]}]}]}`))
	f.Add([]byte("services:\n- name: s\n  phases:\n  - {block: [], relays: false}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		doc, err := Parse(data)
		if err != nil {
			return
		}
		if err := Validate(doc); err != nil {
			return
		}
		// Everything downstream relies on these never panicking on a
		// valid document.
		at := time.Date(2006, 12, 1, 0, 0, 0, 0, time.UTC)
		for _, s := range doc.Services {
			for _, b := range doc.Bridges {
				doc.ActivePhase(s.Name, b.Pop, at)
			}
		}
		doc.NextChange(at)

		encoded, err := json.Marshal(doc)
		if err != nil {
			t.Fatalf("valid document does not encode: %v", err)
		}
		again, err := ParseJSON(encoded)
		if err != nil {
			t.Fatalf("encoded valid document does not parse: %v\n%s", err, encoded)
		}
		if err := Validate(again); err != nil {
			t.Fatalf("round trip no longer validates: %v\n%s", err, encoded)
		}
		if !reflect.DeepEqual(doc, again) {
			t.Fatalf("round trip changed the document:\nbefore %+v\nafter  %+v", doc, again)
		}
		if clone := doc.Clone(); !reflect.DeepEqual(doc, clone) {
			t.Fatalf("Clone differs:\n%+v\n%+v", doc, clone)
		}
	})
}
