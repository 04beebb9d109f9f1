package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/op25b/op25b/topology"
)

// readBody reads the whole body under the size limit (413 above it) and
// within the body deadline (bodyTime), which is independent of how
// long the handler then takes.
func (s *server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	limit := s.bodyTime(r.ContentLength)
	rc := http.NewResponseController(w)
	deadlineSet := rc.SetReadDeadline(time.Now().Add(limit)) == nil
	complete := false
	defer func() {
		switch {
		case !deadlineSet:
		case complete:
			// Once the body is in, the connection's read deadline must
			// not cancel the request while the handler works (net/http
			// cancels the request's context when a background read fails).
			_ = rc.SetReadDeadline(time.Time{})
		default:
			// The body did not arrive: leave the deadline in place so that
			// net/http does not wait for the rest of it before closing.
			w.Header().Set("Connection", "close")
		}
	}()
	body := http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes)
	// One buffer of the announced size (within the limit, +1 to see EOF)
	// instead of io.ReadAll's doublings, which cost twice the body in
	// garbage; a body longer than announced grows it like append.
	size := int64(512)
	if r.ContentLength > 0 {
		size = min(r.ContentLength, s.cfg.MaxBodyBytes) + 1
	}
	data := make([]byte, 0, size)
	var err error
	for {
		if len(data) == cap(data) {
			data = append(data, 0)[:len(data)]
		}
		var n int
		n, err = body.Read(data[len(data):cap(data)])
		data = data[:len(data)+n]
		if err != nil {
			if err == io.EOF {
				err = nil
			}
			break
		}
	}
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, err
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return nil, newError(http.StatusBadRequest, CodeBadRequest, "", fmt.Sprintf(
				"request body not received within %s (%s plus 1s per MiB announced in Content-Length)", limit.Round(time.Millisecond), s.cfg.BodyReadTimeout))
		}
		return nil, newError(http.StatusBadRequest, CodeBadRequest, "", "reading request body: "+err.Error())
	}
	complete = true
	return data, nil
}

// bodyTime is how long a body of contentLength bytes (-1: unknown) may
// take to arrive: Config.BodyReadTimeout, plus one second per MiB
// announced, so that a 16 MiB document over a slow management link still
// fits while a client trickling bytes holds its connection for seconds,
// not the minute a whole request may take.
func (s *server) bodyTime(contentLength int64) time.Duration {
	d := s.cfg.BodyReadTimeout
	if contentLength > 0 {
		d += time.Duration(min(contentLength, s.cfg.MaxBodyBytes)>>20) * time.Second
	}
	return d
}

// parseDocument decodes a PUT /v1/config body strictly, in one pass
// (topology.ParseJSONWithRevision). A top-level "revision" (as returned by
// GET /v1/config) is accepted so that GET → edit → PUT works, and acts as
// If-Match; it obeys the same rules as every other key, so it can neither
// appear twice nor switch any check off. A body that is not an object —
// `null` would otherwise decode to an empty document and wipe the policy —
// is refused.
func parseDocument(data []byte) (*topology.Document, int64, error) {
	doc, rev, _, err := topology.ParseJSONWithRevision(data)
	if err != nil {
		return nil, 0, jsonError(err)
	}
	return doc, rev, nil
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
