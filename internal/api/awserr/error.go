package awserr

import (
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/regionfs/regionfs/internal/uuid"
)

// Errors of the API layer itself. Domain packages keep their own sentinels
// (control.ErrFileSystemNotFound, monitor.ErrResourceNotFound, …); the
// table maps both.
var (
	// ErrUnknownOperation: the service has no operation by this name or
	// path.
	ErrUnknownOperation = errors.New("unknown operation")
	// ErrMissingAction: a query request without an Action.
	ErrMissingAction = errors.New("missing action")
	// ErrMethodNotAllowed: the path exists for other HTTP methods.
	ErrMethodNotAllowed = errors.New("method not allowed")
	// ErrBodyTooLarge: the request body exceeds the limit.
	ErrBodyTooLarge = errors.New("request body too large")
	// ErrMalformedRequest: the body or query string cannot be parsed at
	// all (not JSON, not CBOR, not a form). Members of the wrong type are
	// the service's own validation error.
	ErrMalformedRequest = errors.New("malformed request")
	// ErrRegionUnavailable: the region the request is for does not answer
	// (the edge).
	ErrRegionUnavailable = errors.New("region unavailable")
	// ErrThrottled: too many requests; the client retries.
	ErrThrottled = errors.New("throttled")
	// ErrInternal: an explicit internal failure (anything outside the
	// table is one too).
	ErrInternal = errors.New("internal error")
)

// Error is a failure whose Message is written for the client. Err is what
// the table matches (a sentinel, or an error wrapping one); Fields are
// extra members of the error shape that some errors carry
// (FileSystemAlreadyExists has FileSystemId).
type Error struct {
	Err     error
	Message string
	Fields  map[string]string
}

// Errorf returns an *Error of kind with a formatted public message.
func Errorf(kind error, format string, args ...any) *Error {
	return &Error{Err: kind, Message: fmt.Sprintf(format, args...)}
}

func (e *Error) Error() string { return e.Message }

// Unwrap returns Err.
func (e *Error) Unwrap() error { return e.Err }

// PublicMessage is the message for the client.
func (e *Error) PublicMessage() string { return e.Message }

// Public is implemented by errors whose message is written for the client
// (control.Error, sigv4.Error, monitor.Error, *Error). The first Public
// error in a chain gives the message; every other error text stays in the
// logs.
type Public interface {
	error
	PublicMessage() string
}

// RequestID returns the request id the response already carries
// (X-Amzn-Requestid, which the region's API server sets), or gives the
// response a new one.
func RequestID(w http.ResponseWriter) string {
	id := w.Header().Get("X-Amzn-Requestid")
	if id == "" {
		id = NewRequestID()
		w.Header().Set("X-Amzn-Requestid", id)
	}
	return id
}

// NewRequestID returns a random UUID (version 4), the shape of AWS request
// ids.
func NewRequestID() string {
	return uuid.New()
}

// ReadBody reads r's body, of at most max bytes: an ErrMalformedRequest
// when it cannot be read, an ErrBodyTooLarge past max. It returns what it
// read either way (a caller may detect the protocol from it to answer).
func ReadBody(r *http.Request, max int) ([]byte, error) {
	body, err := io.ReadAll(io.LimitReader(r.Body, int64(max)+1))
	switch {
	case err != nil:
		return body, Errorf(ErrMalformedRequest, "The request body could not be read.")
	case len(body) > max:
		return body, Errorf(ErrBodyTooLarge, "The request body is larger than %d bytes.", max)
	}
	return body, nil
}
