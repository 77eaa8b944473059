package sigv4

import "errors"

// Sentinel errors, one per way a request can fail authentication. Each
// protocol maps them to its own wire code in its errors table; the message
// of the *Error wrapping them is public and says exactly what was wrong.
var (
	// ErrMissingAuthentication: no Authorization header and no presigned
	// query parameters.
	ErrMissingAuthentication = errors.New("missing authentication token")
	// ErrIncompleteSignature: the signature is malformed or lacks a part.
	ErrIncompleteSignature = errors.New("incomplete signature")
	// ErrUnknownAccessKey: the access key id (or a session token) is not
	// one this server knows.
	ErrUnknownAccessKey = errors.New("unrecognized access key")
	// ErrSignatureMismatch: the signature does not match the one computed
	// here, or the credential scope is inconsistent with the request.
	ErrSignatureMismatch = errors.New("signature does not match")
	// ErrExpired: the request time is outside the allowed clock skew, or a
	// presigned request is past its expiry.
	ErrExpired = errors.New("signature expired")
	// ErrInvalidRegion: the scope names a region this server does not serve.
	ErrInvalidRegion = errors.New("credential scoped to an invalid region")
	// ErrUnsupportedService: the request is correctly signed for a
	// service this server does not implement (s3, sqs, …).
	ErrUnsupportedService = errors.New("service not implemented")
)

// Error is an authentication failure: one of the sentinels above and the
// public message AWS would send for it.
type Error struct {
	Kind    error
	Message string
}

func (e *Error) Error() string { return e.Message }

// PublicMessage is the message for the caller (package awserr).
func (e *Error) PublicMessage() string { return e.Message }
func (e *Error) Unwrap() error         { return e.Kind }

func fail(kind error, msg string) *Error { return &Error{Kind: kind, Message: msg} }
