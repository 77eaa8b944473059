package efsrepl

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/regionfs/regionfs/internal/engine"
	"github.com/regionfs/regionfs/internal/replication"
)

// apiError is an EFS error: x-amzn-ErrorType: Code, body
// {"ErrorCode","Message"}.
type apiError struct {
	Status  int
	Code    string
	Message string
}

func (e *apiError) Error() string { return e.Code + ": " + e.Message }

func badRequest(format string, args ...any) *apiError {
	return &apiError{Status: http.StatusBadRequest, Code: "BadRequest", Message: fmt.Sprintf(format, args...)}
}

// errorTable maps errors to EFS errors, first match wins: context errors
// first, a safe default last. The message of a mapped error is its own
// text (it names ids and states, never internals).
var errorTable = []struct {
	err    error
	status int
	code   string
}{
	{context.Canceled, http.StatusInternalServerError, "InternalServerError"},
	{context.DeadlineExceeded, http.StatusInternalServerError, "InternalServerError"},
	{replication.ErrFileSystemNotFound, http.StatusNotFound, "FileSystemNotFound"},
	{replication.ErrReplicationNotFound, http.StatusNotFound, "ReplicationNotFound"},
	{replication.ErrAlreadyExists, http.StatusConflict, "ReplicationAlreadyExists"},
	{replication.ErrLifeCycle, http.StatusConflict, "IncorrectFileSystemLifeCycleState"},
	{replication.ErrConflict, http.StatusConflict, "ConflictException"},
	{replication.ErrValidation, http.StatusBadRequest, "ValidationException"},
	{replication.ErrBadRequest, http.StatusBadRequest, "BadRequest"},
	// A peer region that does not answer: the caller is told at once (a
	// 4xx, so that clients do not retry for a minute) and can act, e.g.
	// delete the configuration in the destination region instead.
	{replication.ErrUnreachable, http.StatusConflict, "ConflictException"},
	{replication.ErrUnknownRegion, http.StatusBadRequest, "ValidationException"},
	{engine.ErrNotReady, http.StatusConflict, "ConflictException"},
	{engine.ErrFSNotFound, http.StatusNotFound, "FileSystemNotFound"},
	{engine.ErrClosed, http.StatusServiceUnavailable, "InsufficientThroughputCapacity"},
}

// toAPIError maps err; unknown errors are logged and answered as internal.
func (h *Handler) toAPIError(r *http.Request, err error) *apiError {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae
	}
	var ce *replication.CallError
	if errors.As(err, &ce) {
		// The peer region's answer, as it chose it.
		return &apiError{Status: ce.Status, Code: ce.Code, Message: ce.Message}
	}
	for _, e := range errorTable {
		if errors.Is(err, e.err) {
			msg := err.Error()
			if e.err == context.Canceled || e.err == context.DeadlineExceeded {
				msg = "the request was cancelled or timed out"
			}
			return &apiError{Status: e.status, Code: e.code, Message: msg}
		}
	}
	h.log.Error("replication request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	return &apiError{Status: http.StatusInternalServerError, Code: "InternalServerError", Message: "internal error"}
}

func writeError(w http.ResponseWriter, e *apiError) {
	w.Header().Set("x-amzn-ErrorType", e.Code)
	writeJSON(w, e.Status, struct {
		ErrorCode string `json:"ErrorCode"`
		Message   string `json:"Message"`
	}{e.Code, e.Message})
}

func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	writeError(w, h.toAPIError(r, err))
}
