package kms

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/regionfs/regionfs/internal/control/keys"
)

// apiError is a KMS error.
type apiError struct {
	Status  int
	Code    string
	Message string
}

func (e *apiError) Error() string { return e.Code + ": " + e.Message }

// errorTable maps domain errors to KMS codes, first match wins: context
// errors first, a safe default last. It is this edge's one table.
var errorTable = []struct {
	err    error
	status int
	code   string
}{
	{context.Canceled, 400, "RequestCanceled"},
	{context.DeadlineExceeded, 500, "DependencyTimeoutException"},
	{keys.ErrNotFound, 400, "NotFoundException"},
	{keys.ErrInvalidArn, 400, "InvalidArnException"},
	{keys.ErrAlreadyExists, 400, "AlreadyExistsException"},
	{keys.ErrInvalidState, 400, "KMSInvalidStateException"},
	{keys.ErrDisabled, 400, "DisabledException"},
	{keys.ErrValidation, 400, "ValidationException"},
	{keys.ErrInvalidAlias, 400, "InvalidAliasNameException"},
	{keys.ErrTag, 400, "TagException"},
	{keys.ErrMalformedPolicy, 400, "MalformedPolicyDocumentException"},
	{keys.ErrLimitExceeded, 400, "LimitExceededException"},
	{keys.ErrUnsupported, 400, "UnsupportedOperationException"},
	{keys.ErrAccessDenied, 400, "AccessDeniedException"},
	{keys.ErrClosed, 500, "KMSInternalException"},
}

func toAPIError(err error) *apiError {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae
	}
	for _, e := range errorTable {
		if errors.Is(err, e.err) {
			msg := err.Error()
			var ke *keys.Error
			if errors.As(err, &ke) {
				msg = ke.Message
			}
			if e.err == context.Canceled || e.err == context.DeadlineExceeded || e.err == keys.ErrClosed {
				msg = "The service is unavailable; retry."
			}
			return &apiError{e.status, e.code, msg}
		}
	}
	return &apiError{500, "KMSInternalException", "An internal error occurred."}
}

func (h *Handler) fail(w http.ResponseWriter, reqID, op string, err error) {
	e := toAPIError(err)
	if e.Status >= 500 {
		h.log.Error("kms request failed", "op", op, "req_id", reqID, "err", err)
	} else {
		h.log.Debug("kms request rejected", "op", op, "req_id", reqID, "code", e.Code, "msg", e.Message)
	}
	b, _ := json.Marshal(map[string]string{"__type": e.Code, "message": e.Message})
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-Errortype", e.Code)
	w.WriteHeader(e.Status)
	w.Write(b)
}
