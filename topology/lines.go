package topology

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// Lines maps JSON paths, as FieldError and ParseError name them
// ("pools[3].prefix", "services[0].phases[1].block[0]", "ports"), to the
// 1-based line of data on which that value starts. data is a JSON or YAML
// document, told apart as Parse does. A path that is not in data (a
// required field that is missing) gets the line of its nearest ancestor
// that is, so "pools[3].prefix: prefix is required" points at pool 3.
// The document itself ("") is line 1. Every path gets 0 when data is not
// JSON or YAML at all; the parse error then says where.
//
// It is a second, position-aware pass over the input, run only when there
// are problems to report (op25bctl lint), so the fast decoder of a valid
// 100k-pool document pays nothing for it.
func Lines(data []byte, paths []string) map[string]int {
	want := make(map[string]bool, len(paths)*2)
	for _, p := range paths {
		for q := p; ; q = parentPath(q) {
			if want[q] {
				break
			}
			want[q] = true
			if q == "" {
				break
			}
		}
	}
	found := map[string]int{}
	data = bytes.TrimPrefix(data, utf8BOM) // 3 bytes on line 1: lines do not move
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	var ok bool
	if len(trimmed) > 0 && trimmed[0] == '{' {
		ok = jsonLines(data, want, found)
	} else {
		ok = yamlLines(data, want, found)
	}
	if ok {
		found[""] = 1 // the document starts on line 1, whatever comments come first
	}
	out := make(map[string]int, len(paths))
	for _, p := range paths {
		line := 0
		if ok {
			line = 1
		}
		for q := p; ; q = parentPath(q) {
			if l, hit := found[q]; hit {
				line = l
				break
			}
			if q == "" {
				break
			}
		}
		out[p] = line
	}
	return out
}

// parentPath drops the last step of a JSON path: "a[1].b" → "a[1]" → "a" → "".
func parentPath(p string) string {
	if strings.HasSuffix(p, "]") {
		if i := strings.LastIndexByte(p, '['); i >= 0 {
			return p[:i]
		}
	}
	if i := strings.LastIndexByte(p, '.'); i >= 0 {
		return p[:i]
	}
	return ""
}

func childPath(parent, key string) string {
	if parent == "" {
		return key
	}
	return parent + "." + key
}

// LineOfOffset is the 1-based line of byte offset off in data.
func LineOfOffset(data []byte, off int64) int {
	if off > int64(len(data)) {
		off = int64(len(data))
	}
	if off < 0 {
		off = 0
	}
	return bytes.Count(data[:off], []byte("\n")) + 1
}

// jsonLines walks the tokens of data and records the line of each wanted
// path. It reports false when data is not JSON it can walk.
func jsonLines(data []byte, want map[string]bool, found map[string]int) bool {
	// Line starts, for a binary search per recorded value.
	starts := []int{0}
	for i, c := range data {
		if c == '\n' {
			starts = append(starts, i+1)
		}
	}
	lineAt := func(off int) int {
		return sort.Search(len(starts), func(i int) bool { return starts[i] > off })
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	// valueStart is where the next value begins: the decoder's offset is
	// the end of the previous token, before any ':' or ','.
	valueStart := func() int {
		i := int(dec.InputOffset())
		for i < len(data) && strings.IndexByte(" \t\r\n:,", data[i]) >= 0 {
			i++
		}
		return i
	}
	var walk func(path string) error
	walk = func(path string) error {
		if want[path] {
			found[path] = lineAt(valueStart())
		}
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		switch tok {
		case json.Delim('{'):
			for dec.More() {
				key, err := dec.Token()
				if err != nil {
					return err
				}
				k, _ := key.(string)
				if err := walk(childPath(path, k)); err != nil {
					return err
				}
			}
			_, err = dec.Token()
		case json.Delim('['):
			for i := 0; dec.More(); i++ {
				if err := walk(fmt.Sprintf("%s[%d]", path, i)); err != nil {
					return err
				}
			}
			_, err = dec.Token()
		}
		return err
	}
	err := walk("")
	return err == nil || err == io.EOF
}

// yamlLines records the line of each wanted path from yaml.v3's node tree.
func yamlLines(data []byte, want map[string]bool, found map[string]int) bool {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil || len(root.Content) == 0 {
		return false
	}
	var walk func(n *yaml.Node, path string, line int)
	walk = func(n *yaml.Node, path string, line int) {
		if want[path] {
			found[path] = line
		}
		switch n.Kind {
		case yaml.DocumentNode:
			for _, c := range n.Content {
				walk(c, path, c.Line)
			}
		// An alias is a leaf here: following it could loop ("&a [*a]"), and
		// its values are written, with their lines, where the anchor is.
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				// A value on the lines below its key ("pools:" then the
				// list) is reported at the key, where an editor finds it.
				walk(v, childPath(path, k.Value), k.Line)
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				walk(c, fmt.Sprintf("%s[%d]", path, i), c.Line)
			}
		}
	}
	walk(&root, "", 1)
	return true
}
