package topology

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"gopkg.in/yaml.v3"
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
// duplicate keys, null where a value is required, values of the wrong type
// and trailing data are errors, reported with their JSON path. It does not
// validate: call Validate.
func ParseJSON(data []byte) (*Document, error) {
	// Editors on some NOC desktops save a byte-order mark; it carries no
	// meaning in JSON (RFC 8259 §8.1 lets parsers ignore it).
	data = bytes.TrimPrefix(data, utf8BOM)

	// Fast path, for the common case of a correct document: encoding/json
	// plus a byte scan for what it lets through (case-folded or duplicate
	// keys, null). Anything suspicious goes to the token walker, which is
	// about 3x slower on 100k pools but knows the path of every problem.
	if doc, ok := parseJSONFast(data); ok {
		return doc, nil
	}
	return parseJSONWalk(data)
}

func parseJSONFast(data []byte) (*Document, bool) {
	if !strictKeys(data) {
		return nil, false
	}
	var doc Document
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		return nil, false
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, false
	}
	return &doc, true
}

// parseJSONWalk walks the tokens against the Document type first, for
// errors with paths, then decodes.
func parseJSONWalk(data []byte) (*Document, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	w := &jsonWalker{dec: dec}
	if err := w.value(reflect.TypeFor[Document](), "", true); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, &ParseError{Message: fmt.Sprintf("unexpected data after the document at byte %d", dec.InputOffset())}
	}
	// The walk leaves only Block's own checks (e.g. "block": "none").
	var doc Document
	dec = json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		return nil, &ParseError{Message: strings.TrimPrefix(err.Error(), "json: ")}
	}
	return &doc, nil
}

// knownKeys is every JSON key of the document types; all are lower-case.
var knownKeys = func() map[string]bool {
	keys := map[string]bool{}
	for _, t := range []reflect.Type{reflect.TypeFor[Document](), reflect.TypeFor[Pool](), reflect.TypeFor[Relay](),
		reflect.TypeFor[DestinationSet](), reflect.TypeFor[Service](), reflect.TypeFor[Phase](), reflect.TypeFor[Bridge]()} {
		for k := range jsonFields(t) {
			keys[k] = true
		}
	}
	return keys
}()

// strictKeys scans JSON text and reports false when it must take the slow
// path: the top level is not an object, an object key is not spelt exactly
// like a field of some document type (encoding/json matches keys
// case-insensitively), a key repeats within one object, a key contains an
// escape, or a literal null appears. It does not check syntax: the decoder
// that runs after it does.
func strictKeys(data []byte) bool {
	type frame struct {
		object    bool
		expectKey bool
		keys      [][]byte
	}
	var stack []frame
	i := 0
	for i < len(data) && (data[i] == ' ' || data[i] == '\t' || data[i] == '\n' || data[i] == '\r') {
		i++
	}
	if i == len(data) || data[i] != '{' {
		return false
	}
	for ; i < len(data); i++ {
		switch c := data[i]; c {
		case '{', '[':
			n := len(stack)
			if n < cap(stack) {
				stack = stack[:n+1]
				stack[n].object, stack[n].expectKey, stack[n].keys = c == '{', c == '{', stack[n].keys[:0]
			} else {
				stack = append(stack, frame{object: c == '{', expectKey: c == '{'})
			}
		case '}', ']':
			if len(stack) == 0 {
				return false
			}
			stack = stack[:len(stack)-1]
		case ',':
			if len(stack) > 0 && stack[len(stack)-1].object {
				stack[len(stack)-1].expectKey = true
			}
		case 'n':
			return false // null: let the walker say where it is not allowed
		case '"':
			start := i + 1
			escaped := false
			for i++; i < len(data) && data[i] != '"'; i++ {
				if data[i] == '\\' {
					escaped = true
					i++
				}
			}
			if len(stack) == 0 {
				return false
			}
			top := &stack[len(stack)-1]
			if !top.object || !top.expectKey {
				continue
			}
			if escaped || i > len(data) {
				return false
			}
			key := data[start:i]
			if !knownKeys[string(key)] {
				return false
			}
			for _, k := range top.keys {
				if bytes.Equal(k, key) {
					return false
				}
			}
			top.keys = append(top.keys, key)
			top.expectKey = false
		}
	}
	return true
}

type jsonWalker struct {
	dec *json.Decoder
}

var blockType = reflect.TypeFor[Block]()

func (w *jsonWalker) token(path string) (json.Token, error) {
	tok, err := w.dec.Token()
	if err == io.EOF {
		return nil, &ParseError{Field: path, Message: "unexpected end of input"}
	}
	if err != nil {
		return nil, &ParseError{Field: path, Message: fmt.Sprintf("invalid JSON near byte %d: %s", w.dec.InputOffset(), strings.TrimPrefix(err.Error(), "json: "))}
	}
	return tok, nil
}

// value consumes one JSON value and checks it has the shape of t.
func (w *jsonWalker) value(t reflect.Type, path string, top bool) error {
	tok, err := w.token(path)
	if err != nil {
		return err
	}
	if tok == nil { // null
		if top {
			return &ParseError{Message: "the document must be a JSON object, not null"}
		}
		if t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
			return nil
		}
		return &ParseError{Field: path, Message: fmt.Sprintf("must be %s, not null", describeType(t))}
	}
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t == blockType:
		return w.block(tok, path)
	case t.Kind() == reflect.Struct:
		if tok != json.Delim('{') {
			return w.mismatch(tok, t, path)
		}
		return w.object(t, path)
	case t.Kind() == reflect.Slice:
		if tok != json.Delim('[') {
			return w.mismatch(tok, t, path)
		}
		for i := 0; w.dec.More(); i++ {
			if err := w.value(t.Elem(), fmt.Sprintf("%s[%d]", path, i), false); err != nil {
				return err
			}
		}
		_, err := w.token(path)
		return err
	case t.Kind() == reflect.String:
		if _, ok := tok.(string); !ok {
			return w.mismatch(tok, t, path)
		}
	case t.Kind() == reflect.Bool:
		if _, ok := tok.(bool); !ok {
			return w.mismatch(tok, t, path)
		}
	case t.Kind() == reflect.Int:
		n, ok := tok.(json.Number)
		if !ok {
			return w.mismatch(tok, t, path)
		}
		if _, err := strconv.ParseInt(string(n), 10, 0); err != nil {
			return &ParseError{Field: path, Message: fmt.Sprintf("%s is not an integer in range", n)}
		}
	default:
		return &ParseError{Field: path, Message: "unsupported field type " + t.String()}
	}
	return nil
}

// block checks the shape "all" or ["set", ...]; Block.UnmarshalJSON checks
// the value.
func (w *jsonWalker) block(tok json.Token, path string) error {
	if _, ok := tok.(string); ok {
		return nil
	}
	if tok != json.Delim('[') {
		return &ParseError{Field: path, Message: `block must be "all" or a list of destination-set names`}
	}
	for i := 0; w.dec.More(); i++ {
		if err := w.value(reflect.TypeFor[string](), fmt.Sprintf("%s[%d]", path, i), false); err != nil {
			return err
		}
	}
	_, err := w.token(path)
	return err
}

func (w *jsonWalker) object(t reflect.Type, path string) error {
	fields := jsonFields(t)
	seen := make(map[string]bool, len(fields))
	for w.dec.More() {
		tok, err := w.token(path)
		if err != nil {
			return err
		}
		key, _ := tok.(string)
		child := key
		if path != "" {
			child = path + "." + key
		}
		ft, ok := fields[key]
		if !ok {
			msg := fmt.Sprintf("unknown field %q", key)
			if name, ok := closestField(fields, key); ok {
				msg += fmt.Sprintf(" (did you mean %q?", name)
				if strings.EqualFold(name, key) {
					msg += " field names are case-sensitive"
				}
				msg += ")"
			}
			return &ParseError{Field: child, Message: msg}
		}
		if seen[key] {
			return &ParseError{Field: child, Message: "field appears twice in the same object"}
		}
		seen[key] = true
		if err := w.value(ft, child, false); err != nil {
			return err
		}
	}
	_, err := w.token(path)
	return err
}

// closestField finds the known field a typo most likely meant: same letters
// in another case, or at most two edits away.
func closestField(fields map[string]reflect.Type, key string) (string, bool) {
	best, bestDist := "", 3
	for name := range fields {
		d := editDistance(strings.ToLower(name), strings.ToLower(key))
		if d < bestDist || d == bestDist && name < best {
			best, bestDist = name, d
		}
	}
	return best, best != ""
}

// editDistance is the Levenshtein distance; keys are short and the field
// sets tiny, and only a rejected document pays for it.
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 64
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func (w *jsonWalker) mismatch(tok json.Token, t reflect.Type, path string) error {
	var got string
	switch tok.(type) {
	case json.Delim:
		if tok == json.Delim('{') {
			got = "an object"
		} else {
			got = "a list"
		}
	case string:
		got = "a string"
	case bool:
		got = "true/false"
	case json.Number:
		got = "a number"
	default:
		got = fmt.Sprintf("%v", tok)
	}
	msg := fmt.Sprintf("must be %s, not %s", describeType(t), got)
	if path == "" {
		msg = "the document must be a JSON object, not " + got
	}
	return &ParseError{Field: path, Message: msg}
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
	case "string":
		return "a string"
	case "int":
		return "an integer"
	case "bool":
		return "true or false"
	}
	return goType
}
