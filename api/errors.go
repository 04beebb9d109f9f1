package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/op25b/op25b/api/apitypes"
	"github.com/op25b/op25b/topology"
	"github.com/op25b/op25b/topology/store"
)

// Error codes of the {"error":{"code",...}} body. Clients branch on the
// code, not on the message.
// They are defined in apitypes, where clients find them.
const (
	CodeBadRequest       = apitypes.CodeBadRequest
	CodeInvalidJSON      = apitypes.CodeInvalidJSON
	CodeInvalidDocument  = apitypes.CodeInvalidDocument
	CodeNameMismatch     = apitypes.CodeNameMismatch
	CodeUnauthorized     = apitypes.CodeUnauthorized
	CodeForbidden        = apitypes.CodeForbidden
	CodeNotFound         = apitypes.CodeNotFound
	CodeMethodNotAllowed = apitypes.CodeMethodNotAllowed
	CodeConflict         = apitypes.CodeConflict
	CodeReferenced       = apitypes.CodeReferenced
	CodeTooLarge         = apitypes.CodeTooLarge
	CodeUnavailable      = apitypes.CodeUnavailable
	CodeNoSpace          = apitypes.CodeNoSpace
	CodeInternal         = apitypes.CodeInternal
)

// Error is the API's error value and wire format. Handlers return it (or
// an error that errorFor maps to it).
type Error struct {
	Status  int          `json:"-"`
	Code    string       `json:"code"`
	Message string       `json:"message"`
	Field   string       `json:"field"`
	Details []FieldIssue `json:"details,omitempty"`
}

// FieldIssue is one validation problem; Details lists all of them because
// topology.Validate reports every problem at once, not just the first.
type FieldIssue = apitypes.FieldIssue

func (e *Error) Error() string {
	if e.Field != "" {
		return e.Code + ": " + e.Field + ": " + e.Message
	}
	return e.Code + ": " + e.Message
}

func newError(status int, code, field, message string) *Error {
	return &Error{Status: status, Code: code, Field: field, Message: message}
}

// errorFor maps any handler error to its wire form. Only errors that are
// not the client's fault (a bug, a store failure that is not "unavailable")
// become a 500; every input problem is classified before reaching here.
func errorFor(err error) *Error {
	var apiErr *Error
	var verr *topology.ValidationError
	var tooBig *http.MaxBytesError
	var perr *topology.ParseError
	var conflict *store.ConflictError
	var pruned *store.PrunedError
	switch {
	case errors.As(err, &apiErr):
		return apiErr
	case errors.As(err, &perr):
		return newError(http.StatusBadRequest, CodeInvalidJSON, perr.Field, perr.Message)
	case errors.As(err, &verr):
		e := newError(http.StatusBadRequest, CodeInvalidDocument, "", verr.Error())
		for _, fe := range verr.Errors {
			e.Details = append(e.Details, FieldIssue{Field: fe.Field, Message: fe.Message})
		}
		if len(verr.Errors) > 0 {
			e.Field = verr.Errors[0].Field
		}
		return e
	case errors.As(err, &tooBig):
		return newError(http.StatusRequestEntityTooLarge, CodeTooLarge, "", "request body exceeds the limit")
	case errors.As(err, &conflict):
		return conflictError(conflict.Current, conflict.Based)
	case errors.Is(err, store.ErrConflict):
		return newError(http.StatusConflict, CodeConflict, "", err.Error()+
			"; re-base: GET /v1/config, redo the change on that document and send it with its revision")
	case errors.As(err, &pruned):
		return newError(http.StatusNotFound, CodeNotFound, "revision", pruned.Error())
	case errors.Is(err, store.ErrNotFound):
		return newError(http.StatusNotFound, CodeNotFound, "", err.Error())
	case errors.Is(err, store.ErrNoSpace):
		return newError(http.StatusServiceUnavailable, CodeNoSpace, "", err.Error())
	case errors.Is(err, store.ErrUnavailable), errors.Is(err, store.ErrInvalidStored), errors.Is(err, context.DeadlineExceeded):
		return newError(http.StatusServiceUnavailable, CodeUnavailable, "", err.Error())
	}
	return newError(http.StatusInternalServerError, CodeInternal, "", "internal error")
}

// conflictError says what a client whose change is based on an old
// revision should do: re-base, or overwrite on purpose.
func conflictError(current, based int64) *Error {
	return newError(http.StatusConflict, CodeConflict, "", fmt.Sprintf(
		"the document is at revision %d, but this change is based on revision %d: someone changed it since. "+
			"Re-base: GET /v1/config (revision %d), redo the change on that document and send it with its revision; "+
			"or send the change without If-Match and without a revision to overwrite", current, based, current))
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	// The status line is already sent; a failed write means the client went away.
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, r *http.Request, logger *slog.Logger, err error) {
	e := errorFor(err)
	if e.Status >= 500 {
		logger.Error("api request failed", "method", r.Method, "path", r.URL.Path, "code", e.Code, "err", err)
	}
	if e.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="op25b"`)
	}
	writeJSON(w, e.Status, struct {
		Error *Error `json:"error"`
	}{e})
}
