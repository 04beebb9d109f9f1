package topology

import (
	"errors"
	"fmt"
	"testing"
)

func TestLines(t *testing.T) {
	yamlDoc := "# comment\nports: [25, 70000]\npools:\n  - {name: a, prefix: 10.0.0.1/8, kind: static}\n  - name: b\n    prefix: 10.1.0.0/16\n\n    kind: dynamic\nservices:\n  - name: s\n    phases:\n      - block: [x, y]\n"
	jsonDoc := "{\n  \"ports\": [25,\n    70000],\n  \"pools\": [\n    {\"name\": \"a\", \"prefix\": \"10.0.0.1/8\"},\n    {\n      \"name\": \"b\",\n      \"kind\":\n        \"dynamic\"\n    }\n  ]\n}\n"
	cases := []struct {
		name string
		data string
		want map[string]int
	}{
		{"yaml", yamlDoc, map[string]int{
			"": 1, "ports": 2, "ports[1]": 2, "pools": 3, "pools[0]": 4, "pools[0].prefix": 4,
			"pools[1]": 5, "pools[1].prefix": 6, "pools[1].kind": 8,
			"pools[1].service":               5, // absent: its pool
			"services[0].phases[0].block[1]": 12, "bridges": 1, "bridges[3].dpid": 1,
		}},
		{"json", jsonDoc, map[string]int{
			"": 1, "ports": 2, "ports[1]": 3, "pools": 4, "pools[0].prefix": 5, "pools[1]": 6,
			"pools[1].name": 7, "pools[1].kind": 9, "pools[1].service": 6,
		}},
		{"json with BOM", "\xef\xbb\xbf" + jsonDoc, map[string]int{"ports[1]": 3, "pools[1].kind": 9}},
		{"not a document", "{\"ports\": [", map[string]int{"ports": 1, "pools[0]": 1}},
		{"not yaml", "a: [\n", map[string]int{"ports": 0}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var paths []string
			for p := range tc.want {
				paths = append(paths, p)
			}
			got := Lines([]byte(tc.data), paths)
			for p, want := range tc.want {
				if got[p] != want {
					t.Errorf("%q: line %d, want %d", p, got[p], want)
				}
			}
		})
	}
}

func TestLineOfOffset(t *testing.T) {
	data := []byte("a\nbb\n\nc")
	for off, want := range map[int64]int{-1: 1, 0: 1, 1: 1, 2: 2, 5: 3, 6: 4, 100: 4} {
		if got := LineOfOffset(data, off); got != want {
			t.Errorf("LineOfOffset(%d) = %d, want %d", off, got, want)
		}
	}
}

// FuzzLines: whatever the input and the paths, Lines never panics and
// returns a line within the input for every path asked.
func FuzzLines(f *testing.F) {
	f.Add([]byte(`{"pools": [{"name": "a"}]}`), "pools[0].name")
	f.Add([]byte("pools:\n  - {name: a}\n"), "pools[0].prefix")
	f.Add([]byte("&a [*a]"), "x[0]")
	f.Add([]byte(`{"a": [[[[`), "a[0][0]")
	f.Fuzz(func(t *testing.T, data []byte, path string) {
		got := Lines(data, []string{path, "", parentPath(path)})
		lines := 1
		for _, c := range data {
			if c == '\n' {
				lines++
			}
		}
		for p, l := range got {
			if l < 0 || l > lines {
				t.Fatalf("%q: line %d of %d", p, l, lines)
			}
		}
	})
}

func TestValidateItemSizes(t *testing.T) {
	doc := &Document{Destinations: []DestinationSet{{Name: "small", Prefixes: []string{"192.0.2.0/24"}}, {Name: "huge"}}}
	for i := 0; i < 90000; i++ {
		doc.Destinations[1].Prefixes = append(doc.Destinations[1].Prefixes, fmt.Sprintf("10.%d.%d.%d/32", i>>16, (i>>8)&255, i&255))
	}
	err := ValidateItemSizes(doc, DefaultStoredKeyOverhead)
	var verr *ValidationError
	if !errors.As(err, &verr) || len(verr.Errors) != 1 || verr.Errors[0].Field != "destinations[1]" {
		t.Fatalf("ValidateItemSizes: %v", err)
	}
	doc.Destinations = doc.Destinations[:1]
	if err := ValidateItemSizes(doc, DefaultStoredKeyOverhead); err != nil {
		t.Fatal(err)
	}
}
