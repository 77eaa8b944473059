package cloudwatch

import (
	"context"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"github.com/regionfs/regionfs/internal/api/awserr"
	"github.com/regionfs/regionfs/internal/api/awsproto"
	"github.com/regionfs/regionfs/internal/monitor"
)

// APIVersion is the query protocol's Version.
const APIVersion = "2010-08-01"

// maxBody bounds a request body (PutMetricData: 1 MB on AWS).
const maxBody = 2 << 20

var svc = awsproto.Monitoring

// call is one request being served.
type call struct {
	h *Handler
	awsproto.Call
}

// invalid is CloudWatch's word for a member of the wrong type:
// InvalidParameterValue.
func invalid(de *awsproto.DecodeError) error {
	return &monitor.Error{Kind: monitor.ErrInvalidParameterValue, Message: de.Error()}
}

type operation func(ctx context.Context, c *call) (any, error)

var operations = map[string]operation{
	"GetMetricStatistics":     getMetricStatistics,
	"GetMetricData":           getMetricData,
	"ListMetrics":             listMetrics,
	"PutMetricData":           putMetricData,
	"PutMetricAlarm":          putMetricAlarm,
	"DescribeAlarms":          describeAlarms,
	"DescribeAlarmsForMetric": describeAlarmsForMetric,
	"DeleteAlarms":            deleteAlarms,
	"SetAlarmState":           setAlarmState,
	"DescribeAlarmHistory":    describeAlarmHistory,
	"EnableAlarmActions":      enableAlarmActions,
	"DisableAlarmActions":     disableAlarmActions,
	"TagResource":             tagResource,
	"UntagResource":           untagResource,
	"ListTagsForResource":     listTagsForResource,
	"PutCompositeAlarm":       putCompositeAlarm,
	"PutDashboard":            putDashboard,
	"GetDashboard":            getDashboard,
	"ListDashboards":          listDashboards,
	"DeleteDashboards":        deleteDashboards,
}

// Handler serves CloudWatch for one region.
type Handler struct {
	m   *monitor.Monitor
	log *slog.Logger
}

// NewHandler returns the CloudWatch API over m. Requests reach it verified
// (package region).
func NewHandler(m *monitor.Monitor, log *slog.Logger) *Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Handler{m: m, log: log}
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	reqID := awserr.RequestID(w)
	body, err := awserr.ReadBody(r, maxBody)
	p := awsproto.Detect(svc.Name, r, body)
	rs := awserr.Responder{Protocol: p, Service: svc, RequestID: reqID, Log: h.log}
	if err != nil {
		rs.Fail(w, err)
		return
	}
	// PutMetricData comes gzip-compressed from some clients.
	r, body, err = awsproto.Inflate(r, body)
	if err != nil {
		rs.Fail(w, &monitor.Error{Kind: monitor.ErrInvalidParameterValue, Message: err.Error()})
		return
	}
	if p = awsproto.Detect(svc.Name, r, body); p != rs.Protocol {
		rs.Protocol = p
	}
	op, err := operationOf(p, r, body)
	if err != nil {
		rs.Fail(w, err)
		return
	}
	rs.Op = op
	fn := operations[op]
	c := &call{h: h, Call: awsproto.Call{R: r, P: p, Body: body, Invalid: invalid}}
	out, err := fn(r.Context(), c)
	if err != nil {
		rs.Fail(w, err)
		return
	}
	awsproto.WriteResult(w, p, svc, op, out, reqID)
	h.log.Debug("cloudwatch request", "op", op, "protocol", p.String(), "req_id", reqID)
}

// operationOf names the operation and checks the request's envelope
// (method, target prefix, path, Version).
func operationOf(p awsproto.Protocol, r *http.Request, body []byte) (string, error) {
	op := awsproto.Operation(p, r, body)
	switch p {
	case awsproto.JSON10, awsproto.JSON11:
		t := r.Header.Get("X-Amz-Target")
		if !strings.HasPrefix(t, svc.TargetPrefix+".") {
			return "", awserr.Errorf(awserr.ErrUnknownOperation, "The target %s is not a CloudWatch operation.", awsproto.Clip(t))
		}
		if r.Method != http.MethodPost {
			return "", awserr.Errorf(awserr.ErrMethodNotAllowed, "CloudWatch JSON requests are POSTs.")
		}
	case awsproto.CBOR:
		if !strings.HasPrefix(r.URL.Path, "/service/"+svc.TargetPrefix+"/operation/") {
			return "", awserr.Errorf(awserr.ErrUnknownOperation, "The path %s is not a CloudWatch operation.", awsproto.Clip(r.URL.Path))
		}
		if r.Method != http.MethodPost {
			return "", awserr.Errorf(awserr.ErrMethodNotAllowed, "CloudWatch CBOR requests are POSTs.")
		}
	case awsproto.Query:
		if r.Method == http.MethodPost {
			// Go refuses forms of more than 10,000 parameters (far more
			// than any operation takes: PutMetricData has at most 1,000
			// members).
			if _, err := url.ParseQuery(string(body)); err != nil {
				return "", &monitor.Error{Kind: monitor.ErrInvalidParameterValue,
					Message: "The request parameters could not be read (at most 10,000 parameters; PutMetricData takes up to 1,000 MetricData members): " + awsproto.Clip(err.Error()) + "."}
			}
		}
		if err := awserr.QueryAction(r.Method, op, version(r, body), APIVersion, known); err != nil {
			return "", err
		}
	default:
		return "", awserr.Errorf(awserr.ErrUnknownOperation, "CloudWatch speaks the query, JSON 1.0 and CBOR protocols.")
	}
	if !known(op) {
		return "", awserr.Errorf(awserr.ErrUnknownOperation, "The action %s is not valid for this web service.", awsproto.Clip(op))
	}
	return op, nil
}

func known(op string) bool { _, ok := operations[op]; return ok }

func version(r *http.Request, body []byte) string {
	if r.Method == http.MethodGet {
		return r.URL.Query().Get("Version")
	}
	vals, _ := url.ParseQuery(string(body))
	return vals.Get("Version")
}
