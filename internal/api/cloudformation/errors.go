package cloudformation

import (
	"github.com/regionfs/regionfs/internal/api/awserr"
	"github.com/regionfs/regionfs/internal/cfn"
)

// Errors are answered through package awserr's table: the stack engine's
// sentinels (package cfn) have CloudFormation's query codes there, and the
// handler's own refusals are cfn.ErrValidation (ValidationError) or
// awserr's API errors with a message.

func refuse(kind error, msg string) *awserr.Error { return &awserr.Error{Err: kind, Message: msg} }

func validationf(format string, args ...any) *awserr.Error {
	return awserr.Errorf(cfn.ErrValidation, format, args...)
}
