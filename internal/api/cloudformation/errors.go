package cloudformation

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/regionfs/regionfs/internal/cfn"
)

// apiError is a CloudFormation error: HTTP status, code and public message.
type apiError struct {
	Status  int
	Code    string
	Message string
}

func (e *apiError) Error() string { return e.Code + ": " + e.Message }

func validationf(format string, args ...any) *apiError {
	return &apiError{Status: 400, Code: "ValidationError", Message: fmt.Sprintf(format, args...)}
}

// errorTable maps domain errors to CloudFormation's codes, first match
// wins: context errors first, a safe default last. It is the one table of
// this protocol edge.
var errorTable = []struct {
	err    error
	status int
	code   string
}{
	{context.Canceled, 400, "RequestCanceled"},
	{context.DeadlineExceeded, 503, "ServiceUnavailable"},
	{cfn.ErrAlreadyExists, 400, "AlreadyExistsException"},
	{cfn.ErrTokenAlreadyExists, 400, "TokenAlreadyExistsException"},
	{cfn.ErrChangeSetNotFound, 404, "ChangeSetNotFound"},
	{cfn.ErrInvalidChangeSetStatus, 400, "InvalidChangeSetStatus"},
	{cfn.ErrInsufficientCapabilities, 400, "InsufficientCapabilitiesException"},
	{cfn.ErrLimitExceeded, 400, "LimitExceededException"},
	{cfn.ErrValidation, 400, "ValidationError"},
	{cfn.ErrClosed, 503, "ServiceUnavailable"},
	{errBadParam, 400, "ValidationError"},
}

func toAPIError(err error) *apiError {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae
	}
	for _, e := range errorTable {
		if errors.Is(err, e.err) {
			msg := err.Error()
			var ce *cfn.Error
			if errors.As(err, &ce) {
				msg = ce.Message
			}
			if e.err == context.Canceled || e.err == context.DeadlineExceeded || e.err == cfn.ErrClosed {
				msg = "The service is unavailable; retry."
			}
			return &apiError{Status: e.status, Code: e.code, Message: msg}
		}
	}
	return &apiError{Status: 500, Code: "InternalFailure", Message: "An internal error occurred."}
}

func newRequestID() string {
	var b [16]byte
	rand.Read(b[:])
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

func clip(s string) string {
	if len(s) > 128 {
		return s[:128] + "…"
	}
	return s
}
