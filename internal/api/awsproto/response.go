package awsproto

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// MaxDecompressedBytes bounds a gzip-compressed request body once
// inflated (clients compress PutMetricData; AWS caps it at 1 MB).
const MaxDecompressedBytes = 4 << 20

// Content types of the RPC protocols.
const (
	ContentTypeJSON10 = "application/x-amz-json-1.0"
	ContentTypeJSON11 = "application/x-amz-json-1.1"
	ContentTypeCBOR   = "application/cbor"
	ContentTypeXML    = "text/xml"
)

// Decode reads the input of an RPC-protocol request (query, JSON 1.x or
// CBOR) into the struct dst points to. A malformed body or a member of the
// wrong shape is a *DecodeError.
func Decode(p Protocol, r *http.Request, body []byte, dst any) error {
	body, err := inflate(r, body)
	if err != nil {
		return err
	}
	var v map[string]any
	switch p {
	case Query, EC2:
		vals, ok := form(r, body)
		if !ok {
			return &DecodeError{Reason: "The request must be a form POST (application/x-www-form-urlencoded) or a GET with a query string."}
		}
		v, err = DecodeQuery(vals, p == EC2)
	case JSON10, JSON11:
		v, err = DecodeJSON(body)
	case CBOR:
		v, err = DecodeCBOR(body)
	default:
		return &DecodeError{Reason: "The request's protocol is not one this operation speaks."}
	}
	if err != nil {
		return err
	}
	return Unmarshal(v, dst)
}

// Call is one RPC-protocol request a service's operation serves: the HTTP
// request, the protocol it speaks and its body (read already). Invalid
// words a member of the wrong type (a *DecodeError) as the service's own
// validation error.
type Call struct {
	R       *http.Request
	P       Protocol
	Body    []byte
	Invalid func(*DecodeError) error
}

// Decode reads the operation's input into the struct dst points to; a
// malformed body or a member of the wrong shape is Invalid's error.
func (c *Call) Decode(dst any) error {
	err := Decode(c.P, c.R, c.Body, dst)
	var de *DecodeError
	if errors.As(err, &de) {
		return c.Invalid(de)
	}
	return err
}

// WriteResult answers an RPC-protocol request with the output of operation
// op: result is a Go struct (Marshal) or nil for operations without output.
// The request id goes in x-amzn-RequestId (and the XML's RequestId).
func WriteResult(w http.ResponseWriter, p Protocol, svc Service, op string, result any, requestID string) {
	var v any
	if result != nil {
		v = Marshal(result)
	}
	h := w.Header()
	if requestID != "" {
		h.Set("X-Amzn-Requestid", requestID)
	}
	var body []byte
	switch p {
	case JSON10, JSON11:
		if v == nil {
			v = &Struct{}
		}
		body = EncodeJSON(v)
		h.Set("Content-Type", ContentTypeJSON10)
		if p == JSON11 {
			h.Set("Content-Type", ContentTypeJSON11)
		}
	case CBOR:
		if v == nil {
			v = &Struct{}
		}
		body = EncodeCBOR(v)
		h.Set("Content-Type", ContentTypeCBOR)
		h.Set("Smithy-Protocol", "rpc-v2-cbor")
	default:
		body = EncodeQueryResponse(svc, op, v, requestID)
		h.Set("Content-Type", ContentTypeXML)
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	w.Write(body)
}

// Inflate undoes Content-Encoding: gzip (clients compress PutMetricData;
// the signature covers the compressed bytes, which the caller has
// verified) and returns the body and a request without the encoding, for
// handlers that read the body more than once.
func Inflate(r *http.Request, body []byte) (*http.Request, []byte, error) {
	b, err := inflate(r, body)
	if err != nil || len(r.Header.Values("Content-Encoding")) == 0 {
		return r, b, err
	}
	r = r.Clone(r.Context())
	r.Header.Del("Content-Encoding")
	return r, b, nil
}

// inflate undoes Content-Encoding: gzip.
func inflate(r *http.Request, body []byte) ([]byte, error) {
	enc := strings.TrimSpace(strings.ToLower(r.Header.Get("Content-Encoding")))
	switch enc {
	case "", "identity":
		return body, nil
	case "gzip":
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			return nil, &DecodeError{Reason: "The request body is not valid gzip."}
		}
		out, err := io.ReadAll(io.LimitReader(zr, MaxDecompressedBytes+1))
		if err != nil {
			return nil, &DecodeError{Reason: "The request body is not valid gzip."}
		}
		if len(out) > MaxDecompressedBytes {
			return nil, &DecodeError{Reason: "The request body is larger than 4 MB once decompressed."}
		}
		return out, nil
	}
	return nil, &DecodeError{Reason: "The Content-Encoding " + strconv.Quote(Clip(enc)) + " is not supported."}
}
