package notify

import (
	"errors"
	"fmt"
)

// Sentinel errors (SNS's codes through package awserr).
var (
	// ErrInvalidParameter: InvalidParameter.
	ErrInvalidParameter = errors.New("invalid parameter")
	// ErrNotFound: the topic or subscription does not exist (NotFound).
	ErrNotFound = errors.New("not found")
	// ErrAuthorization: an unauthenticated unsubscribe of a subscription
	// that requires authentication (AuthorizationError).
	ErrAuthorization = errors.New("authorization error")
	// ErrTopicLimit, ErrSubscriptionLimit: TopicLimitExceeded,
	// SubscriptionLimitExceeded.
	ErrTopicLimit        = errors.New("topic limit exceeded")
	ErrSubscriptionLimit = errors.New("subscription limit exceeded")
	// ErrClosed: the service is shutting down.
	ErrClosed = errors.New("notify: closed")
)

// Error is a refusal with its public message.
type Error struct {
	Kind    error
	Message string
}

func (e *Error) Error() string { return e.Message }

// Unwrap returns the sentinel.
func (e *Error) Unwrap() error { return e.Kind }

// PublicMessage is the message for the client (package awserr).
func (e *Error) PublicMessage() string { return e.Message }

func invalid(format string, args ...any) *Error {
	return &Error{Kind: ErrInvalidParameter, Message: "Invalid parameter: " + fmt.Sprintf(format, args...)}
}

func notFound(format string, args ...any) *Error {
	return &Error{Kind: ErrNotFound, Message: fmt.Sprintf(format, args...)}
}

func clip(s string) string {
	if len(s) > 256 {
		return s[:256] + "…"
	}
	return s
}
