package region

import (
	"log/slog"
	"net/http"

	"github.com/regionfs/regionfs/internal/api/awserr"
	"github.com/regionfs/regionfs/internal/api/awsproto"
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

// Services are the credential-scope services served; a correctly signed
// request for any other is told that regionfs does not implement it.
var Services = []string{ServiceEFS, ServiceEC2, ServiceMonitoring, ServiceSNS, ServiceCloudFormation, ServiceKMS}

// serviceOf is the wire description of a credential-scope service (an
// unknown one gets only its name).
func serviceOf(name string) awsproto.Service {
	for _, s := range []awsproto.Service{awsproto.EFS, awsproto.EC2Service, awsproto.Monitoring, awsproto.SNS, awsproto.CloudFormation, awsproto.KMS} {
		if s.Name == name {
			return s
		}
	}
	return awsproto.Service{Name: name}
}

// WriteError answers err for a request the API layer refuses itself
// (authentication, body size, unknown operations, an unavailable region),
// in the protocol the request speaks; service is its credential-scope
// service ("" when unknown) and body its body (nil when unread). Errors
// outside awserr's table are answered as internal errors; their cause is
// logged on log (when set) with the request id.
func WriteError(w http.ResponseWriter, r *http.Request, service string, body []byte, err error, requestID string, log *slog.Logger) {
	awserr.Responder{
		Protocol:  awsproto.Detect(service, r, body),
		Service:   serviceOf(service),
		RequestID: requestID,
		Log:       log,
	}.Fail(w, err)
}
