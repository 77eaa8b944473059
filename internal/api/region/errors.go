package region

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/regionfs/regionfs/internal/api/ec2"
	"github.com/regionfs/regionfs/internal/api/sigv4"
)

// Errors of the API layer itself (authentication errors are package
// sigv4's).
var (
	ErrBodyTooLarge      = errors.New("request body too large")
	ErrBadBody           = errors.New("cannot read the request body")
	ErrUnknownOperation  = errors.New("unknown operation")
	ErrRegionUnavailable = errors.New("region unavailable")
	ErrMethodNotAllowed  = errors.New("method not allowed")
	ErrInternal          = errors.New("internal error")
)

// Error is an API-layer failure with its public message.
type Error struct {
	Kind    error
	Message string
}

func (e *Error) Error() string { return e.Message }
func (e *Error) Unwrap() error { return e.Kind }

// Errorf returns an *Error of kind with a formatted message.
func Errorf(kind error, format string, args ...any) *Error {
	return &Error{Kind: kind, Message: fmt.Sprintf(format, args...)}
}

// code is a wire error: HTTP status and code for REST-JSON/JSON/CBOR, for
// the query protocol, and for EC2.
type code struct {
	status           int
	rest, query, ec2 string
	ec2Status        int
	queryType        string // Sender or Receiver
}

// table maps errors to wire codes, in order: context errors first, the safe
// default last.
var table = []struct {
	err  error
	code code
}{
	{context.Canceled, code{499, "RequestCanceled", "RequestCanceled", "RequestCanceled", 499, "Sender"}},
	{context.DeadlineExceeded, code{504, "RequestTimeout", "RequestTimeout", "RequestTimeout", 504, "Receiver"}},
	{sigv4.ErrMissingAuthentication, code{403, "MissingAuthenticationTokenException", "MissingAuthenticationToken", "AuthFailure", 401, "Sender"}},
	{sigv4.ErrIncompleteSignature, code{403, "IncompleteSignatureException", "IncompleteSignature", "AuthFailure", 401, "Sender"}},
	{sigv4.ErrUnknownAccessKey, code{403, "UnrecognizedClientException", "InvalidClientTokenId", "AuthFailure", 401, "Sender"}},
	{sigv4.ErrExpired, code{403, "InvalidSignatureException", "SignatureDoesNotMatch", "RequestExpired", 400, "Sender"}},
	{sigv4.ErrSignatureMismatch, code{403, "InvalidSignatureException", "SignatureDoesNotMatch", "AuthFailure", 401, "Sender"}},
	{sigv4.ErrInvalidRegion, code{403, "InvalidSignatureException", "SignatureDoesNotMatch", "AuthFailure", 401, "Sender"}},
	{sigv4.ErrInvalidService, code{403, "InvalidSignatureException", "SignatureDoesNotMatch", "AuthFailure", 401, "Sender"}},
	{ErrBodyTooLarge, code{413, "RequestEntityTooLargeException", "RequestEntityTooLarge", "RequestEntityTooLarge", 413, "Sender"}},
	{ErrBadBody, code{400, "SerializationException", "MalformedInput", "InvalidRequest", 400, "Sender"}},
	{ErrMethodNotAllowed, code{405, "UnknownOperationException", "InvalidAction", "InvalidAction", 400, "Sender"}},
	{ErrUnknownOperation, code{400, "UnknownOperationException", "InvalidAction", "InvalidAction", 400, "Sender"}},
	{ErrRegionUnavailable, code{503, "ServiceUnavailableException", "ServiceUnavailable", "Unavailable", 503, "Receiver"}},
	{ErrInternal, code{500, "InternalFailure", "InternalFailure", "InternalError", 500, "Receiver"}},
}

func lookup(err error) code {
	for _, e := range table {
		if errors.Is(err, e.err) {
			return e.code
		}
	}
	return table[len(table)-1].code
}

func publicMessage(err error) string {
	var se *sigv4.Error
	var re *Error
	switch {
	case errors.As(err, &se):
		return se.Message
	case errors.As(err, &re):
		return re.Message
	case errors.Is(err, context.Canceled):
		return "The request was canceled"
	case errors.Is(err, context.DeadlineExceeded):
		return "The request timed out"
	}
	return "An internal error occurred"
}

// WriteError answers err in protocol p (service selects the query
// namespace). Errors outside the table are answered as internal errors with
// a generic message; the caller logs the cause.
func WriteError(w http.ResponseWriter, p Protocol, service string, err error, requestID string) {
	c := lookup(err)
	msg := publicMessage(err)
	h := w.Header()
	if requestID != "" {
		h.Set("X-Amzn-Requestid", requestID)
	}
	switch p {
	case EC2:
		ec2.WriteError(w, c.ec2Status, c.ec2, msg, requestID)
	case Query:
		b, _ := xml.Marshal(queryError{Xmlns: xmlNamespace(service), Error: queryErrorBody{Type: c.queryType, Code: c.query, Message: msg}, RequestID: requestID})
		h.Set("Content-Type", "text/xml")
		w.WriteHeader(c.status)
		w.Write(b)
	case AWSJSON:
		b, _ := json.Marshal(map[string]string{"__type": c.rest, "message": msg})
		if service == ServiceKMS {
			h.Set("Content-Type", "application/x-amz-json-1.1")
		} else {
			h.Set("Content-Type", "application/x-amz-json-1.0")
		}
		h.Set("X-Amzn-Query-Error", c.query+";"+c.queryType)
		w.WriteHeader(c.status)
		w.Write(b)
	case CBOR:
		h.Set("Content-Type", "application/cbor")
		h.Set("Smithy-Protocol", "rpc-v2-cbor")
		h.Set("X-Amzn-Query-Error", c.query+";"+c.queryType)
		w.WriteHeader(c.status)
		w.Write(cborTextMap([][2]string{{"__type", c.rest}, {"message", msg}}))
	default:
		b, _ := json.Marshal(struct {
			ErrorCode string `json:"ErrorCode"`
			Message   string `json:"Message"`
		}{c.rest, msg})
		h.Set("Content-Type", "application/json")
		h.Set("X-Amzn-Errortype", c.rest)
		h.Set("Content-Length", strconv.Itoa(len(b)))
		w.WriteHeader(c.status)
		w.Write(b)
	}
}

type queryError struct {
	XMLName   xml.Name       `xml:"ErrorResponse"`
	Xmlns     string         `xml:"xmlns,attr"`
	Error     queryErrorBody `xml:"Error"`
	RequestID string         `xml:"RequestId"`
}

type queryErrorBody struct {
	Type    string `xml:"Type"`
	Code    string `xml:"Code"`
	Message string `xml:"Message"`
}

// cborTextMap encodes a CBOR map of text strings (RFC 8949 major types 5
// and 3).
func cborTextMap(kv [][2]string) []byte {
	b := cborHead(nil, 5, uint64(len(kv)))
	for _, p := range kv {
		for _, s := range p {
			b = cborHead(b, 3, uint64(len(s)))
			b = append(b, s...)
		}
	}
	return b
}

func cborHead(b []byte, major byte, n uint64) []byte {
	m := major << 5
	switch {
	case n < 24:
		return append(b, m|byte(n))
	case n <= 0xff:
		return append(b, m|24, byte(n))
	case n <= 0xffff:
		return append(b, m|25, byte(n>>8), byte(n))
	case n <= 0xffffffff:
		return append(b, m|26, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	return append(b, m|27, byte(n>>56), byte(n>>48), byte(n>>40), byte(n>>32), byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
}
