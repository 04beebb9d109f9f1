package topology

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"strings"
	"sync"

	"gopkg.in/yaml.v3"

	"github.com/op25b/op25b/internal/textdist"
)

// ParseError is a document that could not be decoded at all: bad syntax, an
// unknown or misspelt field, a value of the wrong type, trailing data. Field
// is the JSON path when known ("pools[3].prefx"), else "".
type ParseError struct {
	Field   string
	Message string
}

func (e *ParseError) Error() string {
	if e.Field == "" {
		return "parse document: " + e.Message
	}
	return "parse document: " + e.Field + ": " + e.Message
}

var utf8BOM = []byte("\xef\xbb\xbf")

// Parse decodes a JSON or YAML document: JSON if the first non-space byte is
// '{', YAML otherwise. It does not validate.
func Parse(data []byte) (*Document, error) {
	trimmed := bytes.TrimLeft(bytes.TrimPrefix(data, utf8BOM), " \t\r\n")
	if len(trimmed) > 0 && trimmed[0] == '{' {
		return ParseJSON(data)
	}
	return ParseYAML(data)
}

// ParseJSON decodes one JSON document strictly: unknown fields, keys that
// differ only in case (encoding/json would silently accept "Name"),
// duplicate keys, null where a value is required, values of the wrong type,
// nesting beyond MaxJSONDepth and trailing data are errors, reported with
// their JSON path. It reads the input once (see jsonDecoder) and does not
// validate: call Validate.
func ParseJSON(data []byte) (*Document, error) {
	var doc Document
	if err := decodeJSON(data, &doc, nil, "the document"); err != nil {
		return nil, err
	}
	return &doc, nil
}

// ParseJSONWithRevision is ParseJSON for a document that may carry a
// top-level "revision" (as GET /v1/config returns it, so that GET → edit →
// PUT works). The revision is decoded in the same single pass and under
// the same rules as every other key: it must be a non-negative integer and
// may appear once; present reports whether it was there at all.
func ParseJSONWithRevision(data []byte) (doc *Document, revision int64, present bool, err error) {
	var d Document
	dec, err := decodeJSONWith(data, &d, &revision, "the document")
	if err != nil {
		return nil, 0, false, err
	}
	return &d, revision, dec.sawRevision, nil
}

// ParseJSONItem decodes one item of the document (a *Pool, *Relay,
// *DestinationSet, *Service, *Bridge, *Exemption or *Quarantine) as strictly as ParseJSON; error
// paths are relative to the item ("prefx", "phases[0].from").
func ParseJSONItem(data []byte, item any) error {
	v := reflect.ValueOf(item)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		return fmt.Errorf("ParseJSONItem: want a pointer to a struct, got %T", item)
	}
	return decodeJSON(data, item, nil, "an item")
}

func decodeJSON(data []byte, into any, revision *int64, what string) error {
	_, err := decodeJSONWith(data, into, revision, what)
	return err
}

func decodeJSONWith(data []byte, into any, revision *int64, what string) (*jsonDecoder, error) {
	// Editors on some NOC desktops save a byte-order mark; it carries no
	// meaning in JSON (RFC 8259 §8.1 lets parsers ignore it).
	data = bytes.TrimPrefix(data, utf8BOM)
	d := &jsonDecoder{data: data, revision: revision}
	if err := d.decodeTop(reflect.ValueOf(into), what); err != nil {
		return nil, err
	}
	return d, nil
}

var (
	blockType = reflect.TypeFor[Block]()
	dpidType  = reflect.TypeFor[DPID]()
)

// closestField finds the known field a typo most likely meant: same letters
// in another case, or at most two edits away.
func closestField(fields map[string]reflect.Type, key string) (string, bool) {
	best, bestDist := "", 3
	for name := range fields {
		d := textdist.Levenshtein(strings.ToLower(name), strings.ToLower(key))
		if d < bestDist || d == bestDist && name < best {
			best, bestDist = name, d
		}
	}
	return best, best != ""
}

func describeType(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Pointer:
		return describeType(t.Elem())
	case reflect.Struct:
		return "an object"
	case reflect.Slice:
		return "a list"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int:
		return "an integer"
	}
	return t.String()
}

var jsonFieldCache sync.Map // reflect.Type → map[string]reflect.Type

// jsonFields maps the exact JSON keys of a struct type to their types.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	if m, ok := jsonFieldCache.Load(t); ok {
		return m.(map[string]reflect.Type)
	}
	m := make(map[string]reflect.Type, t.NumField())
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		m[name] = f.Type
	}
	jsonFieldCache.Store(t, m)
	return m
}

// ParseYAML decodes one YAML document strictly (unknown fields and
// duplicate keys are errors, with their line) for operators who keep the
// policy in YAML. More than one YAML document in the input is an error. It
// does not validate.
func ParseYAML(data []byte) (*Document, error) {
	var node yaml.Node
	if err := yaml.NewDecoder(bytes.NewReader(data)).Decode(&node); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &ParseError{Message: "the document is empty"}
		}
		return nil, &ParseError{Message: strings.TrimPrefix(err.Error(), "yaml: ")}
	}
	if len(node.Content) == 0 || node.Content[0].Kind != yaml.MappingNode {
		return nil, &ParseError{Message: "the document must be a YAML mapping (pools:, services:, ...)"}
	}
	if err := yamlDepth(&node); err != nil {
		return nil, err
	}

	var doc Document
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&doc); err != nil {
		var te *yaml.TypeError
		if errors.As(err, &te) {
			return nil, &ParseError{Message: yamlProblems(te)}
		}
		return nil, &ParseError{Message: strings.TrimPrefix(err.Error(), "yaml: ")}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, &ParseError{Message: "more than one YAML document in the input (a second '---')"}
	}
	return &doc, nil
}

// yamlDepth refuses a YAML tree nested deeper than MaxJSONDepth, walking
// it with an explicit stack (no recursion) before the typed decode, whose
// recursion follows the input. Aliases are not followed here: yaml.v3
// bounds their expansion itself.
func yamlDepth(root *yaml.Node) error {
	type item struct {
		n     *yaml.Node
		depth int
	}
	stack := []item{{root, 0}}
	for len(stack) > 0 {
		it := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if it.depth > MaxJSONDepth {
			return &ParseError{Message: fmt.Sprintf("line %d: nested more than %d levels deep", it.n.Line, MaxJSONDepth)}
		}
		for _, c := range it.n.Content {
			stack = append(stack, item{c, it.depth + 1})
		}
	}
	return nil
}

var (
	yamlUnknownField = regexp.MustCompile(`field (\S+) not found in type topology\.(\w+)`)
	yamlGoType       = regexp.MustCompile(` into (\[\])?\*?(?:topology\.)?(\w+)`)
)

// yamlProblems rewrites yaml.v3's per-line errors, which speak Go ("field
// servce not found in type topology.Pool"), into one line an operator reads
// ("line 5: unknown field \"servce\" in a pool").
func yamlProblems(te *yaml.TypeError) string {
	parts := make([]string, len(te.Errors))
	for i, e := range te.Errors {
		e = yamlUnknownField.ReplaceAllStringFunc(e, func(m string) string {
			sub := yamlUnknownField.FindStringSubmatch(m)
			return fmt.Sprintf("unknown field %q in %s", sub[1], yamlItemName(sub[2]))
		})
		parts[i] = yamlGoType.ReplaceAllStringFunc(e, func(m string) string {
			sub := yamlGoType.FindStringSubmatch(m)
			want := yamlItemName(sub[2])
			if sub[1] != "" {
				want = "a list of " + want
			}
			return ", expected " + want
		})
	}
	return strings.Join(parts, "; ")
}

func yamlItemName(goType string) string {
	switch goType {
	case "Document":
		return "the document"
	case "Pool":
		return "a pool"
	case "Relay":
		return "a relay"
	case "DestinationSet":
		return "a destination set"
	case "Service":
		return "a service"
	case "Phase":
		return "a phase"
	case "Bridge":
		return "a bridge"
	case "Exemption":
		return "an exemption"
	case "Quarantine":
		return "a quarantine"
	case "string", "DPID":
		return "a string"
	case "int":
		return "an integer"
	case "bool":
		return "true or false"
	}
	return goType
}
