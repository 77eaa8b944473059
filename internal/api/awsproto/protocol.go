package awsproto

import (
	"net/http"
	"net/url"
	"strings"
)

// Protocol is an AWS wire protocol.
type Protocol int

// The protocols. The zero value is no protocol (an unknown request shape is
// answered in RESTJSON).
const (
	RESTJSON Protocol = iota + 1 // restJson1: EFS
	JSON10                       // awsJson1_0: CloudWatch from aws-cli 1.45 / boto3 1.43
	JSON11                       // awsJson1_1: KMS
	Query                        // awsQuery, XML responses: CloudWatch (old clients), SNS, CloudFormation
	EC2                          // ec2Query: EC2
	CBOR                         // smithy rpcv2Cbor: CloudWatch from aws-sdk-go-v2
	RESTXML                      // restXml: S3 and friends (only to refuse them)
)

var protocolNames = map[Protocol]string{
	RESTJSON: "rest-json", JSON10: "json-1.0", JSON11: "json-1.1", Query: "query",
	EC2: "ec2", CBOR: "rpcv2-cbor", RESTXML: "rest-xml",
}

func (p Protocol) String() string {
	if s, ok := protocolNames[p]; ok {
		return s
	}
	return "unknown"
}

// Service describes how an AWS service names itself on the wire.
type Service struct {
	// Name is the SigV4 signing name (credential-scope service).
	Name string
	// XMLNamespace is the xmlns of query-protocol responses.
	XMLNamespace string
	// TargetPrefix is the X-Amz-Target prefix of JSON requests and the
	// service name in rpcv2-cbor paths (GraniteServiceVersion20100801).
	TargetPrefix string
	// QueryCompatible services (awsQueryCompatible) send the query error
	// code in x-amzn-query-error on JSON and CBOR errors.
	QueryCompatible bool
	// InternalError is the shape name of the service's own internal error
	// (KMS: KMSInternalException), written instead of InternalFailure by
	// the JSON protocols; "" for the generic one.
	InternalError string
}

// The services regionfs serves (and those it refuses by name).
var (
	EFS        = Service{Name: "elasticfilesystem"}
	EC2Service = Service{Name: "ec2", XMLNamespace: "http://ec2.amazonaws.com/doc/2016-11-15/"}
	Monitoring = Service{Name: "monitoring", XMLNamespace: "http://monitoring.amazonaws.com/doc/2010-08-01/",
		TargetPrefix: "GraniteServiceVersion20100801", QueryCompatible: true}
	SNS            = Service{Name: "sns", XMLNamespace: "http://sns.amazonaws.com/doc/2010-03-31/"}
	CloudFormation = Service{Name: "cloudformation", XMLNamespace: "http://cloudformation.amazonaws.com/doc/2010-05-15/"}
	KMS            = Service{Name: "kms", TargetPrefix: "TrentService", InternalError: "KMSInternalException"}
)

// restXMLServices are signing names of restXml services: a request for one
// of them can only be recognised by its scope.
var restXMLServices = map[string]bool{"s3": true, "s3-control": true, "route53": true, "cloudfront": true}

// Detect picks the protocol a request speaks from its shape, and, for
// restXml services, from its credential-scope service (empty when
// unknown); body is the request body.
func Detect(service string, r *http.Request, body []byte) Protocol {
	switch service {
	case EFS.Name:
		return RESTJSON
	case EC2Service.Name:
		return EC2
	case CloudFormation.Name:
		return Query
	case KMS.Name:
		return JSON11
	}
	ct := r.Header.Get("Content-Type")
	switch {
	case r.Header.Get("X-Amz-Target") != "":
		if strings.HasPrefix(ct, "application/x-amz-json-1.1") {
			return JSON11
		}
		return JSON10
	case r.Header.Get("Smithy-Protocol") != "" || strings.HasPrefix(ct, "application/cbor"):
		return CBOR
	case restXMLServices[service]:
		return RESTXML
	case strings.HasPrefix(r.URL.Path, "/2015-02-01/"):
		return RESTJSON
	}
	if v, ok := form(r, body); ok && v.Get("Action") != "" {
		if v.Get("Version") == "2016-11-15" {
			return EC2
		}
		return Query
	}
	if service == Monitoring.Name || service == SNS.Name {
		return Query
	}
	return RESTJSON
}

// form returns the query parameters of a form POST or a GET.
func form(r *http.Request, body []byte) (url.Values, bool) {
	switch {
	case r.Method == http.MethodPost && strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded"):
		v, err := url.ParseQuery(string(body))
		return v, err == nil
	case r.Method == http.MethodGet && r.URL.RawQuery != "":
		v, err := url.ParseQuery(r.URL.RawQuery)
		return v, err == nil
	}
	return nil, false
}

// Operation is the operation a JSON, CBOR, query or EC2 request names (""
// if none, or for REST protocols).
func Operation(p Protocol, r *http.Request, body []byte) string {
	switch p {
	case JSON10, JSON11:
		t := r.Header.Get("X-Amz-Target")
		return t[strings.LastIndexByte(t, '.')+1:]
	case CBOR:
		if i := strings.LastIndex(r.URL.Path, "/operation/"); i >= 0 {
			return r.URL.Path[i+len("/operation/"):]
		}
	case Query, EC2:
		if v, ok := form(r, body); ok {
			return v.Get("Action")
		}
	}
	return ""
}
