package replication

import (
	"errors"
	"fmt"
)

// Error is a refusal of the replication configuration domain: Kind is
// one of the sentinels (ErrReplicationNotFound, ErrConflict, …), Message
// is written for the API's client, Cause (optional) is for the logs only.
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

// PublicMessage is the message for the API's client (package awserr).
func (e *Error) PublicMessage() string { return e.Message }

// publicMessage is err's message for a client: an *Error's own, or a
// generic one that reveals nothing of err.
func publicMessage(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "The replication request failed."
}
