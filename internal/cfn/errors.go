package cfn

import (
	"errors"

	"github.com/regionfs/regionfs/internal/refusal"
)

// Sentinel errors of the CloudFormation domain. Every rule violation is an
// *Error wrapping one of them with CloudFormation's public message; package
// awserr's table maps them to the query protocol's error codes.
var (
	// ErrValidation is CloudFormation's ValidationError: a bad template,
	// bad parameters, an unknown stack, a stack in the wrong state.
	ErrValidation = errors.New("validation error")
	// ErrAlreadyExists: a stack or change set of that name exists.
	ErrAlreadyExists = errors.New("already exists")
	// ErrTokenAlreadyExists: a ClientRequestToken was used for another
	// request.
	ErrTokenAlreadyExists = errors.New("token already exists")
	// ErrChangeSetNotFound: no change set of that name or id.
	ErrChangeSetNotFound = errors.New("change set not found")
	// ErrInvalidChangeSetStatus: the change set cannot be executed or
	// deleted in its state.
	ErrInvalidChangeSetStatus = errors.New("invalid change set status")
	// ErrInsufficientCapabilities: the template needs a capability the
	// caller did not acknowledge.
	ErrInsufficientCapabilities = errors.New("insufficient capabilities")
	// ErrLimitExceeded: too many stacks.
	ErrLimitExceeded = errors.New("limit exceeded")
	// ErrStackSetNotFound: a StackSetName was given; there are no stack
	// sets here.
	ErrStackSetNotFound = errors.New("stack set not found")
	// ErrClosed: the stack engine is closed.
	ErrClosed = errors.New("cfn: closed")
)

// Error is a rule the domain enforced: one of the sentinels above with
// CloudFormation's public message.
type Error = refusal.Error

func validation(format string, args ...any) *Error {
	return refusal.Errorf(ErrValidation, format, args...)
}

// formatError is CloudFormation's "Template format error: …".
func formatError(format string, args ...any) *Error {
	return validation("Template format error: "+format, args...)
}

// templateError is CloudFormation's "Template error: …" (a well-formed
// template whose intrinsic functions cannot be evaluated).
func templateError(format string, args ...any) *Error {
	return validation("Template error: "+format, args...)
}
