package topology

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"unicode/utf16"
	"unicode/utf8"
)

// MaxJSONDepth bounds the nesting of objects and lists the decoder
// follows. The document's own shape is at most five levels deep
// (services → phases → block → names), so anything deeper is refused
// long before this; the bound is a second guard, independent of the
// schema, against input built to exhaust memory or the stack.
const MaxJSONDepth = 64

// jsonDecoder decodes one JSON text straight into a document type in a
// single pass: the grammar (RFC 8259), the shape (exact keys, no
// duplicates, no null where a value is required, integers in range) and
// the values are checked together, so there is no second decoder that
// could read the same bytes differently. Its recursion follows the Go
// type, never the input, and the input's nesting is counted against
// MaxJSONDepth; memory is the decoded value plus a path stack.
type jsonDecoder struct {
	data  []byte
	pos   int
	depth int
	path  []pathElem
	// revision, when non-nil, accepts a top-level "revision" key (the
	// document as returned by GET /v1/config) and receives its value.
	revision *int64
	// sawRevision is set when the top-level "revision" key was present.
	sawRevision bool
}

// pathElem is one step of the JSON path of the value being decoded: an
// object key, or a list index when key is "".
type pathElem struct {
	key   string
	index int
}

func (d *jsonDecoder) pathString() string {
	var b strings.Builder
	for _, e := range d.path {
		if e.key == "" {
			fmt.Fprintf(&b, "[%d]", e.index)
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(e.key)
	}
	return b.String()
}

func (d *jsonDecoder) fail(format string, args ...any) error {
	return &ParseError{Field: d.pathString(), Message: fmt.Sprintf(format, args...)}
}

func (d *jsonDecoder) syntax(what string) error {
	if d.pos >= len(d.data) {
		return d.fail("unexpected end of input")
	}
	return d.fail("invalid JSON near byte %d: %s", d.pos, what)
}

func (d *jsonDecoder) skipSpace() {
	for d.pos < len(d.data) {
		switch d.data[d.pos] {
		case ' ', '\t', '\n', '\r':
			d.pos++
		default:
			return
		}
	}
}

// peek returns the next non-space byte, 0 at the end of input.
func (d *jsonDecoder) peek() byte {
	d.skipSpace()
	if d.pos >= len(d.data) {
		return 0
	}
	return d.data[d.pos]
}

// decodeTop decodes the whole input as one object into v (a pointer to a
// struct) and refuses anything after it.
func (d *jsonDecoder) decodeTop(v reflect.Value, what string) error {
	switch c := d.peek(); c {
	case '{':
	case 0:
		return &ParseError{Message: "unexpected end of input: want a JSON object"}
	default:
		return &ParseError{Message: fmt.Sprintf("%s must be a JSON object, not %s", what, describeJSON(c))}
	}
	if err := d.object(v.Elem(), true); err != nil {
		return err
	}
	if d.peek() != 0 {
		return &ParseError{Message: fmt.Sprintf("unexpected data after the document at byte %d", d.pos)}
	}
	return nil
}

// describeJSON names the kind of JSON value starting with c, for "must be
// X, not Y" messages.
func describeJSON(c byte) string {
	switch c {
	case '{':
		return "an object"
	case '[':
		return "a list"
	case '"':
		return "a string"
	case 't', 'f':
		return "true/false"
	case 'n':
		return "null"
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		return "a number"
	}
	return "invalid JSON"
}

func (d *jsonDecoder) mismatch(t reflect.Type, c byte) error {
	if describeJSON(c) == "invalid JSON" {
		return d.syntax(fmt.Sprintf("unexpected %q", rune(c)))
	}
	if c == 'n' {
		if err := d.literal("null"); err != nil {
			return err
		}
	}
	return d.fail("must be %s, not %s", describeType(t), describeJSON(c))
}

// value decodes one JSON value into v, whose type says what is allowed.
func (d *jsonDecoder) value(v reflect.Value) error {
	t := v.Type()
	c := d.peek()
	if c == 0 {
		return d.syntax("")
	}
	if c == 'n' && (t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice) {
		if err := d.literal("null"); err != nil {
			return err
		}
		v.SetZero()
		return nil
	}
	if t == blockType {
		return d.block(v, c)
	}
	switch t.Kind() {
	case reflect.Pointer:
		elem := reflect.New(t.Elem())
		if err := d.value(elem.Elem()); err != nil {
			return err
		}
		v.Set(elem)
		return nil
	case reflect.Struct:
		if c != '{' {
			return d.mismatch(t, c)
		}
		return d.object(v, false)
	case reflect.Slice:
		if c != '[' {
			return d.mismatch(t, c)
		}
		return d.list(v)
	case reflect.String:
		if c != '"' {
			return d.mismatch(t, c)
		}
		s, err := d.str()
		if err != nil {
			return err
		}
		if t == dpidType {
			v.SetString(string(documentDPID(s)))
			return nil
		}
		v.SetString(s)
		return nil
	case reflect.Bool:
		switch c {
		case 't':
			v.SetBool(true)
			return d.literal("true")
		case 'f':
			v.SetBool(false)
			return d.literal("false")
		}
		return d.mismatch(t, c)
	case reflect.Int, reflect.Int64:
		if c != '-' && (c < '0' || c > '9') {
			return d.mismatch(t, c)
		}
		n, err := d.integer()
		if err != nil {
			return err
		}
		v.SetInt(n)
		return nil
	}
	return d.fail("unsupported field type %s", t)
}

func (d *jsonDecoder) enter() error {
	d.depth++
	if d.depth > MaxJSONDepth {
		return d.fail("nested more than %d levels deep", MaxJSONDepth)
	}
	d.pos++ // the '{' or '['
	return nil
}

// object decodes {"key": value, ...} into the struct v: every key must be
// exactly a field's JSON name (encoding/json would also take "Name" for
// "name") and appear once.
func (d *jsonDecoder) object(v reflect.Value, top bool) error {
	if err := d.enter(); err != nil {
		return err
	}
	fields := jsonFieldIndex(v.Type())
	var seen []bool
	var seenRevision bool
	first := true
	for {
		c := d.peek()
		if c == '}' && first {
			break
		}
		if c != '"' {
			if c == '}' {
				return d.syntax("'}' after ','")
			}
			return d.syntax("want a quoted field name")
		}
		key, err := d.str()
		if err != nil {
			return err
		}
		if d.peek() != ':' {
			return d.syntax("want ':' after a field name")
		}
		d.pos++
		d.path = append(d.path, pathElem{key: key})
		switch f, ok := fields.byName[key]; {
		case ok:
			if seen == nil {
				seen = make([]bool, len(fields.list))
			}
			if seen[f] {
				return d.fail("field appears twice in the same object")
			}
			seen[f] = true
			if err := d.value(v.Field(fields.list[f].index)); err != nil {
				return err
			}
		case top && d.revision != nil && key == "revision":
			if seenRevision {
				return d.fail("field appears twice in the same object")
			}
			seenRevision, d.sawRevision = true, true
			c := d.peek()
			if c != '-' && (c < '0' || c > '9') {
				if c == 'n' {
					_ = d.literal("null")
				}
				return d.fail("revision must be a non-negative integer, not %s", describeJSON(c))
			}
			n, err := d.integer()
			if err != nil || n < 0 {
				return d.fail("revision must be a non-negative integer")
			}
			*d.revision = n
		default:
			msg := fmt.Sprintf("unknown field %q", key)
			if name, ok := closestField(fields.types, key); ok {
				msg += fmt.Sprintf(" (did you mean %q?", name)
				if strings.EqualFold(name, key) {
					msg += " field names are case-sensitive"
				}
				msg += ")"
			}
			return d.fail("%s", msg)
		}
		d.path = d.path[:len(d.path)-1]
		first = false
		switch d.peek() {
		case ',':
			d.pos++
			continue
		case '}':
		default:
			return d.syntax("want ',' or '}' after a field")
		}
		break
	}
	d.pos++
	d.depth--
	return nil
}

// list decodes [value, ...] into the slice v.
func (d *jsonDecoder) list(v reflect.Value) error {
	if err := d.enter(); err != nil {
		return err
	}
	v.SetLen(0)
	if v.IsNil() {
		v.Set(reflect.MakeSlice(v.Type(), 0, 0))
	}
	if d.peek() == ']' {
		d.pos++
		d.depth--
		return nil
	}
	for i := 0; ; i++ {
		if v.Len() == v.Cap() {
			v.Grow(max(4, v.Cap()))
		}
		v.SetLen(i + 1)
		d.path = append(d.path, pathElem{index: i})
		if err := d.value(v.Index(i)); err != nil {
			return err
		}
		d.path = d.path[:len(d.path)-1]
		switch d.peek() {
		case ',':
			d.pos++
			continue
		case ']':
		default:
			return d.syntax("want ',' or ']' after a list element")
		}
		break
	}
	d.pos++
	d.depth--
	return nil
}

// block decodes the string "all" or a list of destination-set names.
func (d *jsonDecoder) block(v reflect.Value, c byte) error {
	switch c {
	case '"':
		s, err := d.str()
		if err != nil {
			return err
		}
		if s != blockAll {
			return d.fail(`block must be "all" or a list of destination-set names, got %q`, truncate(s))
		}
		v.Set(reflect.ValueOf(Block{All: true}))
		return nil
	case '[':
		var sets []string
		if err := d.list(reflect.ValueOf(&sets).Elem()); err != nil {
			return err
		}
		v.Set(reflect.ValueOf(Block{Sets: sets}))
		return nil
	case 'n':
		if err := d.literal("null"); err != nil {
			return err
		}
		return d.fail(`block must be "all" or a list of destination-set names, not null`)
	}
	if describeJSON(c) == "invalid JSON" {
		return d.syntax(fmt.Sprintf("unexpected %q", rune(c)))
	}
	return d.fail(`block must be "all" or a list of destination-set names`)
}

func (d *jsonDecoder) literal(word string) error {
	if len(d.data)-d.pos < len(word) || string(d.data[d.pos:d.pos+len(word)]) != word {
		return d.syntax("want " + word)
	}
	d.pos += len(word)
	return nil
}

// integer reads a JSON number (RFC 8259 §6 grammar) that must be an
// integer within int64.
func (d *jsonDecoder) integer() (int64, error) {
	start := d.pos
	i := d.pos
	if i < len(d.data) && d.data[i] == '-' {
		i++
	}
	switch {
	case i < len(d.data) && d.data[i] == '0':
		i++
	case i < len(d.data) && d.data[i] >= '1' && d.data[i] <= '9':
		for i < len(d.data) && d.data[i] >= '0' && d.data[i] <= '9' {
			i++
		}
	default:
		d.pos = i
		return 0, d.syntax("want a digit")
	}
	if i < len(d.data) && d.data[i] == '.' {
		i++
		if i >= len(d.data) || d.data[i] < '0' || d.data[i] > '9' {
			d.pos = i
			return 0, d.syntax("want a digit after '.'")
		}
		for i < len(d.data) && d.data[i] >= '0' && d.data[i] <= '9' {
			i++
		}
	}
	if i < len(d.data) && (d.data[i] == 'e' || d.data[i] == 'E') {
		i++
		if i < len(d.data) && (d.data[i] == '+' || d.data[i] == '-') {
			i++
		}
		if i >= len(d.data) || d.data[i] < '0' || d.data[i] > '9' {
			d.pos = i
			return 0, d.syntax("want a digit in the exponent")
		}
		for i < len(d.data) && d.data[i] >= '0' && d.data[i] <= '9' {
			i++
		}
	}
	d.pos = i
	text := string(d.data[start:i])
	n, err := strconv.ParseInt(text, 10, 64)
	if err != nil {
		return 0, d.fail("%s is not an integer in range", truncate(text))
	}
	return n, nil
}

// str reads a JSON string. Invalid UTF-8 and lone surrogates become
// U+FFFD, as encoding/json does, so the two agree on what a document says.
func (d *jsonDecoder) str() (string, error) {
	d.pos++ // opening quote
	start := d.pos
	// Fast path: plain ASCII without escapes, the whole of a normal document.
	for i := start; i < len(d.data); i++ {
		c := d.data[i]
		if c == '"' {
			d.pos = i + 1
			return string(d.data[start:i]), nil
		}
		if c == '\\' || c < 0x20 || c >= utf8.RuneSelf {
			break
		}
	}
	var b []byte
	i := start
	for {
		if i >= len(d.data) {
			d.pos = i
			return "", d.syntax("")
		}
		c := d.data[i]
		switch {
		case c == '"':
			d.pos = i + 1
			return string(b), nil
		case c < 0x20:
			d.pos = i
			return "", d.syntax("control character in a string (escape it)")
		case c == '\\':
			if i+1 >= len(d.data) {
				d.pos = i + 1
				return "", d.syntax("")
			}
			switch e := d.data[i+1]; e {
			case '"', '\\', '/':
				b = append(b, e)
			case 'b':
				b = append(b, '\b')
			case 'f':
				b = append(b, '\f')
			case 'n':
				b = append(b, '\n')
			case 'r':
				b = append(b, '\r')
			case 't':
				b = append(b, '\t')
			case 'u':
				r, n := d.unicodeEscape(i)
				if n == 0 {
					d.pos = i
					return "", d.syntax(`bad \u escape`)
				}
				b = utf8.AppendRune(b, r)
				i += n
				continue
			default:
				d.pos = i
				return "", d.syntax(fmt.Sprintf("bad escape \\%c", e))
			}
			i += 2
		case c < utf8.RuneSelf:
			b = append(b, c)
			i++
		default:
			r, n := utf8.DecodeRune(d.data[i:])
			b = utf8.AppendRune(b, r) // utf8.RuneError for invalid bytes
			i += n
		}
	}
}

// unicodeEscape decodes \uXXXX at i (with a following low surrogate when
// XXXX is a high one) and returns the rune and the bytes consumed, 0 for
// a malformed escape.
func (d *jsonDecoder) unicodeEscape(i int) (rune, int) {
	hex4 := func(at int) (rune, bool) {
		if at+4 > len(d.data) {
			return 0, false
		}
		v, err := strconv.ParseUint(string(d.data[at:at+4]), 16, 16)
		return rune(v), err == nil
	}
	r, ok := hex4(i + 2)
	if !ok {
		return 0, 0
	}
	if utf16.IsSurrogate(r) {
		if i+12 <= len(d.data) && d.data[i+6] == '\\' && d.data[i+7] == 'u' {
			if lo, ok := hex4(i + 8); ok {
				if pair := utf16.DecodeRune(r, lo); pair != utf8.RuneError {
					return pair, 12
				}
			}
		}
		return utf8.RuneError, 6
	}
	return r, 6
}

// fieldIndex is the decoder's view of one struct type.
type fieldIndex struct {
	byName map[string]int // JSON name → position in list
	list   []indexedField
	types  map[string]reflect.Type // for closestField
}

type indexedField struct {
	name  string
	index int
}

var fieldIndexCache sync.Map // reflect.Type → *fieldIndex

func jsonFieldIndex(t reflect.Type) *fieldIndex {
	if fi, ok := fieldIndexCache.Load(t); ok {
		return fi.(*fieldIndex)
	}
	fi := &fieldIndex{byName: map[string]int{}, types: jsonFields(t)}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		fi.byName[name] = len(fi.list)
		fi.list = append(fi.list, indexedField{name: name, index: i})
	}
	fieldIndexCache.Store(t, fi)
	return fi
}
