// Package refusal is the error a domain package returns when it refuses a
// request: Kind, one of the domain's sentinel errors, says which rule
// (package api/awserr maps it to each protocol's code and status), and
// Message is the public message for the client, sent as it is.
//
// The domains of CloudFormation (cfn), CloudWatch (monitor), SNS
// (monitor/notify), KMS (control/keys) and security groups
// (control/network) name it as their own Error type.
package refusal

import "fmt"

// Error is a refusal: a sentinel and the client's message.
type Error struct {
	Kind    error
	Message string
}

func (e *Error) Error() string { return e.Message }

// Unwrap returns the sentinel.
func (e *Error) Unwrap() error { return e.Kind }

// PublicMessage is the message for the client (package awserr).
func (e *Error) PublicMessage() string { return e.Message }

// Errorf returns a refusal of kind with a formatted message.
func Errorf(kind error, format string, args ...any) *Error {
	return &Error{Kind: kind, Message: fmt.Sprintf(format, args...)}
}
