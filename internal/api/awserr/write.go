package awserr

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"log/slog"
	"net/http"
	"sort"
	"strconv"

	"github.com/regionfs/regionfs/internal/api/awsproto"
)

// Responder writes the errors of one request: its protocol, its service,
// its request id and where internal failures are logged.
type Responder struct {
	Protocol  awsproto.Protocol
	Service   awsproto.Service
	RequestID string
	// Op names the operation in log lines.
	Op string
	// Log receives internal failures (Error, with their cause) and refusals
	// (Debug); nil logs nothing.
	Log *slog.Logger
}

// Fail writes err and returns the wire error written. Errors outside the
// table are internal: the client sees only the request id, the cause goes
// to the log.
func (r Responder) Fail(w http.ResponseWriter, err error) Wire {
	c, known := Lookup(err)
	wire := c.wire(column(r.Protocol))
	if !known && r.Service.InternalError != "" && column(r.Protocol) == columnJSON {
		wire.Code = r.Service.InternalError
	}
	if r.Log != nil {
		if known {
			r.Log.Debug("api request refused", "service", r.Service.Name, "op", r.Op, "req_id", r.RequestID, "code", wire.Code, "err", err)
		} else {
			r.Log.Error("api request failed", "service", r.Service.Name, "op", r.Op, "req_id", r.RequestID, "err", err)
		}
	}
	write(w, r.Protocol, r.Service, c, wire, Message(err, r.RequestID), fields(err, known), r.RequestID)
	return wire
}

func column(p awsproto.Protocol) protocolColumn {
	switch p {
	case awsproto.JSON10, awsproto.JSON11, awsproto.CBOR:
		return columnJSON
	case awsproto.Query, awsproto.RESTXML:
		return columnQuery
	case awsproto.EC2:
		return columnEC2
	}
	return columnREST
}

// fields returns the extra members of a known error.
func fields(err error, known bool) map[string]string {
	var e *Error
	if known && errors.As(err, &e) {
		return e.Fields
	}
	return nil
}

func write(w http.ResponseWriter, p awsproto.Protocol, svc awsproto.Service, c Code, wire Wire, msg string, extra map[string]string, reqID string) {
	h := w.Header()
	if reqID != "" {
		h.Set("X-Amzn-Requestid", reqID)
	}
	var body []byte
	switch p {
	case awsproto.JSON10, awsproto.JSON11, awsproto.CBOR:
		s := &awsproto.Struct{Members: []awsproto.Member{{Name: "__type", Value: wire.Code}, {Name: "message", Value: msg}}}
		s.Members = append(s.Members, extraMembers(extra)...)
		if svc.QueryCompatible {
			h.Set("X-Amzn-Query-Error", c.Query.Code+";"+c.Fault())
		}
		switch p {
		case awsproto.CBOR:
			h.Set("Content-Type", awsproto.ContentTypeCBOR)
			h.Set("Smithy-Protocol", "rpc-v2-cbor")
			body = awsproto.EncodeCBOR(s)
		case awsproto.JSON11:
			h.Set("Content-Type", awsproto.ContentTypeJSON11)
			body = awsproto.EncodeJSON(s)
		default:
			h.Set("Content-Type", awsproto.ContentTypeJSON10)
			body = awsproto.EncodeJSON(s)
		}
	case awsproto.Query:
		body = queryError(svc.XMLNamespace, c.Fault(), wire.Code, msg, reqID)
		h.Set("Content-Type", awsproto.ContentTypeXML)
	case awsproto.RESTXML:
		body = restXMLError(wire.Code, msg, reqID)
		h.Set("Content-Type", "application/xml")
	case awsproto.EC2:
		body = EC2Error(wire.Code, msg, reqID)
		h.Set("Content-Type", "text/xml;charset=UTF-8")
	default:
		m := map[string]string{"ErrorCode": wire.Code, "Message": msg}
		for k, v := range extra {
			if k != "ErrorCode" && k != "Message" {
				m[k] = v
			}
		}
		body, _ = json.Marshal(m) // a map of strings always marshals
		h.Set("X-Amzn-Errortype", wire.Code)
		h.Set("Content-Type", "application/json")
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(wire.Status)
	w.Write(body)
}

func extraMembers(extra map[string]string) []awsproto.Member {
	keys := make([]string, 0, len(extra))
	for k := range extra {
		if k != "__type" && k != "message" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	out := make([]awsproto.Member, len(keys))
	for i, k := range keys {
		out[i] = awsproto.Member{Name: k, Value: extra[k]}
	}
	return out
}

// queryError is the awsQuery error document:
// <ErrorResponse xmlns><Error><Type/><Code/><Message/></Error><RequestId/></ErrorResponse>.
func queryError(ns, fault, code, msg, reqID string) []byte {
	var b bytes.Buffer
	b.WriteString(`<ErrorResponse`)
	if ns != "" {
		b.WriteString(` xmlns="`)
		xml.EscapeText(&b, []byte(ns))
		b.WriteString(`"`)
	}
	b.WriteString(`><Error><Type>`)
	xml.EscapeText(&b, []byte(fault))
	b.WriteString(`</Type><Code>`)
	xml.EscapeText(&b, []byte(code))
	b.WriteString(`</Code><Message>`)
	xml.EscapeText(&b, []byte(msg))
	b.WriteString(`</Message></Error><RequestId>`)
	xml.EscapeText(&b, []byte(reqID))
	b.WriteString(`</RequestId></ErrorResponse>`)
	return b.Bytes()
}

// restXMLError is S3's error document: <Error><Code/><Message/><RequestId/></Error>.
func restXMLError(code, msg, reqID string) []byte {
	var b bytes.Buffer
	b.WriteString(xml.Header + `<Error><Code>`)
	xml.EscapeText(&b, []byte(code))
	b.WriteString(`</Code><Message>`)
	xml.EscapeText(&b, []byte(msg))
	b.WriteString(`</Message><RequestId>`)
	xml.EscapeText(&b, []byte(reqID))
	b.WriteString(`</RequestId></Error>`)
	return b.Bytes()
}

// EC2Error is the ec2Query error document:
// <Response><Errors><Error><Code/><Message/></Error></Errors><RequestID/></Response>.
func EC2Error(code, msg, reqID string) []byte {
	var b bytes.Buffer
	b.WriteString(xml.Header + `<Response><Errors><Error><Code>`)
	xml.EscapeText(&b, []byte(code))
	b.WriteString(`</Code><Message>`)
	xml.EscapeText(&b, []byte(msg))
	b.WriteString(`</Message></Error></Errors><RequestID>`)
	xml.EscapeText(&b, []byte(reqID))
	b.WriteString(`</RequestID></Response>`)
	return b.Bytes()
}
