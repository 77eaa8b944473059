package ec2

import (
	"encoding/xml"
	"fmt"
	"net/http"
)

// Error is an EC2 error as the client sees it.
type Error struct {
	Status  int
	Code    string
	Message string
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

func errorf(status int, code, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

func invalidParameter(format string, args ...any) *Error {
	return errorf(http.StatusBadRequest, "InvalidParameterValue", format, args...)
}

type errorResponse struct {
	XMLName   xml.Name `xml:"Response"`
	Errors    []errXML `xml:"Errors>Error"`
	RequestID string   `xml:"RequestID"`
}

type errXML struct {
	Code    string `xml:"Code"`
	Message string `xml:"Message"`
}

// WriteError writes an EC2 error response:
// <Response><Errors><Error><Code/><Message/></Error></Errors><RequestID/></Response>.
func WriteError(w http.ResponseWriter, status int, code, message, requestID string) {
	b, err := xml.Marshal(errorResponse{Errors: []errXML{{code, message}}, RequestID: requestID})
	if err != nil { // cannot happen with strings
		b = []byte("<Response/>")
	}
	w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	w.WriteHeader(status)
	w.Write([]byte(xml.Header))
	w.Write(b)
}
