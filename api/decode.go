package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/op25b/op25b/topology"
)

// readBody reads the whole body under the size limit (413 above it).
func (s *server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	body := http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes)
	data, err := io.ReadAll(body)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, err
		}
		return nil, newError(http.StatusBadRequest, CodeBadRequest, "", "reading request body: "+err.Error())
	}
	return data, nil
}

// requireObject rejects bodies that are not a JSON object before they
// reach a decoder: `null` would decode to an empty document and silently
// wipe the policy, which is the opposite of "bad input changes nothing".
func requireObject(data []byte) error {
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	if len(trimmed) == 0 {
		return newError(http.StatusBadRequest, CodeInvalidJSON, "", "empty body: want a JSON object")
	}
	if trimmed[0] != '{' {
		return newError(http.StatusBadRequest, CodeInvalidJSON, "", "body is not a JSON object")
	}
	return nil
}

// parseDocument decodes a PUT /v1/config body strictly. A top-level
// "revision" (as returned by GET /v1/config) is accepted so that
// GET → edit → PUT works, and acts as If-Match.
func parseDocument(data []byte) (*topology.Document, int64, error) {
	if err := requireObject(data); err != nil {
		return nil, 0, err
	}
	rest, rev, err := splitRevision(data)
	if err != nil {
		return nil, 0, err
	}
	doc, err := topology.ParseJSON(rest)
	if err != nil {
		return nil, 0, jsonError(err)
	}
	return doc, rev, nil
}

func splitRevision(data []byte) ([]byte, int64, error) {
	if !bytes.Contains(data, []byte(`"revision"`)) {
		return data, 0, nil
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		return nil, 0, jsonError(err)
	}
	raw, ok := top["revision"]
	if !ok {
		return data, 0, nil
	}
	var rev int64
	if err := json.Unmarshal(raw, &rev); err != nil || rev < 0 {
		return nil, 0, newError(http.StatusBadRequest, CodeInvalidJSON, "revision", "revision must be a non-negative integer")
	}
	delete(top, "revision")
	rest, err := json.Marshal(top)
	if err != nil {
		return nil, 0, jsonError(err)
	}
	return rest, rev, nil
}

// jsonError classifies a decode error as the client's (400), naming the
// field where encoding/json tells us.
func jsonError(err error) *Error {
	var perr *topology.ParseError
	if errors.As(err, &perr) {
		return newError(http.StatusBadRequest, CodeInvalidJSON, perr.Field, perr.Message)
	}
	e := newError(http.StatusBadRequest, CodeInvalidJSON, "", err.Error())
	var typeErr *json.UnmarshalTypeError
	switch {
	case errors.As(err, &typeErr):
		e.Field = typeErr.Field
	case strings.Contains(err.Error(), "unknown field "):
		msg := err.Error()
		name := msg[strings.Index(msg, "unknown field ")+len("unknown field "):]
		if unq, uerr := strconv.Unquote(strings.Fields(name + " ")[0]); uerr == nil {
			e.Field = unq
		}
	}
	return e
}

// ifMatch reads the optimistic-concurrency precondition: the If-Match
// header (a revision, optionally quoted as an ETag) or the body's revision.
// Both present and different is a contradiction, not a guess.
func ifMatch(r *http.Request, bodyRevision int64) (int64, error) {
	h := strings.TrimSpace(r.Header.Get("If-Match"))
	if h == "" {
		return bodyRevision, nil
	}
	h = strings.TrimPrefix(h, "W/")
	rev, err := strconv.ParseInt(strings.Trim(h, `"`), 10, 64)
	if err != nil || rev <= 0 {
		return 0, newError(http.StatusBadRequest, CodeBadRequest, "If-Match", fmt.Sprintf("If-Match must be a revision number, got %q", r.Header.Get("If-Match")))
	}
	if bodyRevision != 0 && bodyRevision != rev {
		return 0, newError(http.StatusBadRequest, CodeBadRequest, "revision", fmt.Sprintf("body revision %d contradicts If-Match %d", bodyRevision, rev))
	}
	return rev, nil
}

func etag(rev int64) string { return `"` + strconv.FormatInt(rev, 10) + `"` }
