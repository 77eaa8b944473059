package monitor

import (
	"errors"

	"github.com/regionfs/regionfs/internal/refusal"
)

// Sentinel errors of CloudWatch's rules. Every refusal the package makes
// wraps one of them in an *Error with the public message; package awserr
// maps them to CloudWatch's codes.
var (
	// ErrInvalidParameterValue: a value out of range, malformed or not
	// one of the allowed (InvalidParameterValue).
	ErrInvalidParameterValue = errors.New("invalid parameter value")
	// ErrMissingParameter: a required parameter is absent (MissingParameter).
	ErrMissingParameter = errors.New("missing parameter")
	// ErrInvalidParameterCombination: parameters that exclude each other,
	// or too many datapoints asked for (InvalidParameterCombination).
	ErrInvalidParameterCombination = errors.New("invalid parameter combination")
	// ErrResourceNotFound: an alarm that does not exist (ResourceNotFound).
	ErrResourceNotFound = errors.New("resource not found")
	// ErrTagResourceNotFound: the resource of a tag operation does not
	// exist (ResourceNotFoundException).
	ErrTagResourceNotFound = errors.New("tag resource not found")
	// ErrAlreadyExists: a create-only PutMetricAlarm (AlarmInput.CreatedBy,
	// CloudFormation's) found an alarm of the name that another made.
	ErrAlreadyExists = errors.New("already exists")
	// ErrLimitExceeded: too many alarms (LimitExceeded).
	ErrLimitExceeded = errors.New("limit exceeded")
	// ErrInvalidNextToken: a pagination token this service did not issue.
	ErrInvalidNextToken = errors.New("invalid next token")
	// ErrInvalidFormat: a value that must be JSON is not (InvalidFormat).
	ErrInvalidFormat = errors.New("invalid format")
	// ErrValidation: a composite alarm's rule that does not parse or
	// names alarms that do not exist, or a deletion that would leave a
	// composite alarm without a child (ValidationError).
	ErrValidation = errors.New("validation error")
	// ErrDashboardInvalid: a dashboard body CloudWatch refuses
	// (InvalidParameterInput).
	ErrDashboardInvalid = errors.New("dashboard invalid")
	// ErrDashboardNotFound: a dashboard that does not exist
	// (ResourceNotFound, shape DashboardNotFoundError).
	ErrDashboardNotFound = errors.New("dashboard not found")
	// ErrClosed: the monitor is shutting down.
	ErrClosed = errors.New("monitor: closed")
	// ErrNoSpace: the data disk is below its free-space floor; metric
	// data and alarm changes are not stored until there is room again.
	ErrNoSpace = errors.New("monitor: no space")
)

// Error is a refusal: one of the sentinels above with a message for the
// API's client.
type Error = refusal.Error

func invalid(format string, args ...any) *Error {
	return refusal.Errorf(ErrInvalidParameterValue, format, args...)
}

func missing(name string) *Error {
	return refusal.Errorf(ErrMissingParameter, "The parameter %s is required.", name)
}

func combination(format string, args ...any) *Error {
	return refusal.Errorf(ErrInvalidParameterCombination, format, args...)
}

func clip(s string) string {
	if len(s) > 256 {
		return s[:256] + "…"
	}
	return s
}
