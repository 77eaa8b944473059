package region

import (
	"net/http"
	"net/url"
	"strings"
)

// Protocol is an AWS wire protocol.
type Protocol int

// Protocols.
const (
	RESTJSON Protocol = iota // EFS
	AWSJSON                  // AWS JSON 1.0 (CloudWatch from aws-cli 1.45 / boto3 1.43)
	Query                    // the query protocol with XML responses (CloudWatch, SNS)
	CBOR                     // Smithy RPC v2 CBOR (aws-sdk-go-v2 CloudWatch)
	EC2                      // EC2's query dialect
)

// Services dispatched on the credential scope.
const (
	ServiceEFS        = "elasticfilesystem"
	ServiceEC2        = "ec2"
	ServiceMonitoring = "monitoring"
	ServiceSNS        = "sns"
	// ServiceCloudFormation speaks the query protocol, ServiceKMS AWS
	// JSON 1.1 (TrentService).
	ServiceCloudFormation = "cloudformation"
	ServiceKMS            = "kms"
)

// Services are the credential-scope services served.
var Services = []string{ServiceEFS, ServiceEC2, ServiceMonitoring, ServiceSNS, ServiceCloudFormation, ServiceKMS}

// ProtocolOf picks the protocol a request speaks from its credential-scope
// service (empty when unknown) and its shape; body is the request body.
func ProtocolOf(service string, r *http.Request, body []byte) Protocol {
	switch service {
	case ServiceEFS:
		return RESTJSON
	case ServiceEC2:
		return EC2
	case ServiceMonitoring, ServiceSNS:
		return rpcProtocol(r)
	case ServiceCloudFormation:
		return Query
	case ServiceKMS:
		return AWSJSON
	}
	if strings.HasPrefix(r.URL.Path, "/2015-02-01/") {
		return RESTJSON
	}
	if p := rpcProtocol(r); p != Query {
		return p
	}
	if r.Method == http.MethodPost && strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		if v, err := url.ParseQuery(string(body)); err == nil {
			if v.Get("Version") == "2016-11-15" {
				return EC2
			}
			if v.Get("Action") != "" {
				return Query
			}
		}
	}
	if q := r.URL.Query(); q.Get("Version") == "2016-11-15" {
		return EC2
	}
	return RESTJSON
}

func rpcProtocol(r *http.Request) Protocol {
	switch {
	case r.Header.Get("X-Amz-Target") != "":
		return AWSJSON
	case r.Header.Get("Smithy-Protocol") != "" || strings.HasPrefix(r.Header.Get("Content-Type"), "application/cbor"):
		return CBOR
	}
	return Query
}

// operationName is the operation a query, JSON or CBOR request names ("" if
// none).
func operationName(p Protocol, r *http.Request, body []byte) string {
	switch p {
	case AWSJSON:
		t := r.Header.Get("X-Amz-Target")
		return t[strings.LastIndexByte(t, '.')+1:]
	case CBOR:
		if i := strings.LastIndex(r.URL.Path, "/operation/"); i >= 0 {
			return r.URL.Path[i+len("/operation/"):]
		}
	case Query, EC2:
		if v, err := url.ParseQuery(string(body)); err == nil && v.Get("Action") != "" {
			return v.Get("Action")
		}
		return r.URL.Query().Get("Action")
	}
	return ""
}

// xmlNamespace is the query-protocol namespace of a service.
func xmlNamespace(service string) string {
	switch service {
	case ServiceSNS:
		return "http://sns.amazonaws.com/doc/2010-03-31/"
	case ServiceCloudFormation:
		return "http://cloudformation.amazonaws.com/doc/2010-05-15/"
	default:
		return "http://monitoring.amazonaws.com/doc/2010-08-01/"
	}
}
