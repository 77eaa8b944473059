package notify

import (
	"errors"
	"fmt"

	"github.com/regionfs/regionfs/internal/refusal"
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
	// ErrAlreadyExists: a create-only CreateTopic (CreateTopicAs,
	// CloudFormation's) found a topic of the name that another made.
	ErrAlreadyExists = errors.New("already exists")
	// ErrClosed: the service is shutting down.
	ErrClosed = errors.New("notify: closed")
	// ErrNoSpace: the data disk is below its free-space floor; messages,
	// topics and subscriptions are not taken until there is room again.
	ErrNoSpace = errors.New("notify: no space")
)

// Error is a refusal: one of the sentinels above with its public message.
type Error = refusal.Error

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
