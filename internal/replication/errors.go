package replication

import (
	"fmt"
)

// Error is a failure of the transport with a message fit for whoever
// asked (an operator, or an API client through the control plane): Kind
// is one of the sentinels (ErrUnknownRegion, ErrUnreachable), Message
// says what happened, Cause (optional) is for the logs only.
type Error struct {
	Kind    error
	Message string
	Cause   error
}

func errorf(kind error, format string, args ...any) *Error {
	return &Error{Kind: kind, Message: fmt.Sprintf(format, args...)}
}

func (e *Error) Error() string {
	if e.Cause != nil {
		return e.Message + " (" + e.Cause.Error() + ")"
	}
	return e.Message
}

// Unwrap returns the kind and the cause.
func (e *Error) Unwrap() []error {
	if e.Cause != nil {
		return []error{e.Kind, e.Cause}
	}
	return []error{e.Kind}
}

// PublicMessage is the message for whoever asked (the API layer shows it).
func (e *Error) PublicMessage() string { return e.Message }
