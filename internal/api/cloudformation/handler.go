package cloudformation

import (
	"context"
	"encoding/xml"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"time"

	"github.com/regionfs/regionfs/internal/api/awserr"
	"github.com/regionfs/regionfs/internal/api/awsproto"
	"github.com/regionfs/regionfs/internal/cfn"
)

// Namespace is the XML namespace of CloudFormation responses.
const Namespace = "http://cloudformation.amazonaws.com/doc/2010-05-15/"

// Version is the API version the handler serves.
const Version = "2010-05-15"

// maxBody bounds a request: a 51,200-byte template, URL-encoded, and the
// other parameters.
const maxBody = 1 << 20

// DefaultSettleWait bounds how long an operation-starting call waits for
// the operation to finish before answering.
const DefaultSettleWait = 15 * time.Second

type operation func(h *Handler, ctx context.Context, p params) (any, error)

var operations = map[string]operation{
	"CreateStack":                 (*Handler).createStack,
	"UpdateStack":                 (*Handler).updateStack,
	"DeleteStack":                 (*Handler).deleteStack,
	"DescribeStacks":              (*Handler).describeStacks,
	"ListStacks":                  (*Handler).listStacks,
	"DescribeStackEvents":         (*Handler).describeStackEvents,
	"DescribeStackResources":      (*Handler).describeStackResources,
	"DescribeStackResource":       (*Handler).describeStackResource,
	"ListStackResources":          (*Handler).listStackResources,
	"GetTemplate":                 (*Handler).getTemplate,
	"GetTemplateSummary":          (*Handler).getTemplateSummary,
	"ValidateTemplate":            (*Handler).validateTemplate,
	"CreateChangeSet":             (*Handler).createChangeSet,
	"DescribeChangeSet":           (*Handler).describeChangeSet,
	"ExecuteChangeSet":            (*Handler).executeChangeSet,
	"DeleteChangeSet":             (*Handler).deleteChangeSet,
	"ListChangeSets":              (*Handler).listChangeSets,
	"ListExports":                 (*Handler).listExports,
	"ListImports":                 (*Handler).listImports,
	"UpdateTerminationProtection": (*Handler).updateTerminationProtection,
}

// Handler serves the CloudFormation API of one region.
type Handler struct {
	e   *cfn.Engine
	log *slog.Logger
	// SettleWait: see the package doc (0: answer at once).
	SettleWait time.Duration
}

// NewHandler returns the handler of a region's stack engine.
func NewHandler(e *cfn.Engine, log *slog.Logger) *Handler {
	return &Handler{e: e, log: log, SettleWait: DefaultSettleWait}
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	reqID := awserr.RequestID(w)
	p, err := decode(r)
	if err != nil {
		h.fail(w, r, reqID, "", err)
		return
	}
	action := p.get("Action")
	op, ok := operations[action]
	if !ok {
		if action == "" {
			h.fail(w, r, reqID, action, refuse(awserr.ErrMissingAction, "Could not find operation null for version "+Version))
			return
		}
		h.fail(w, r, reqID, action, refuse(awserr.ErrUnknownOperation, "Could not find operation "+awsproto.Clip(action)+" for version "+Version))
		return
	}
	if v := p.get("Version"); v != "" && v != Version {
		h.fail(w, r, reqID, action, refuse(awserr.ErrUnknownOperation, "Could not find operation "+awsproto.Clip(action)+" for version "+awsproto.Clip(v)))
		return
	}
	res, err := op(h, r.Context(), p)
	if err != nil {
		h.fail(w, r, reqID, action, err)
		return
	}
	body, err := marshalResponse(action, res, reqID)
	if err != nil {
		h.fail(w, r, reqID, action, err)
		return
	}
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(http.StatusOK)
	w.Write(body)
	h.log.Debug("cloudformation request", "op", action, "req_id", reqID)
}

// marshalResponse wraps a result: <OpResponse><OpResult>…</OpResult>
// <ResponseMetadata/></OpResponse> (no Result element for operations
// without output).
func marshalResponse(action string, res any, reqID string) ([]byte, error) {
	type meta struct {
		RequestID string `xml:"RequestId"`
	}
	type wrapper struct {
		XMLName xml.Name
		Xmlns   string `xml:"xmlns,attr"`
		Result  any
		Meta    meta `xml:"ResponseMetadata"`
	}
	w := wrapper{XMLName: xml.Name{Local: action + "Response"}, Xmlns: Namespace, Meta: meta{reqID}, Result: res}
	b, err := xml.Marshal(w)
	if err != nil {
		return nil, err
	}
	return append([]byte(xml.Header), b...), nil
}

// fail writes err as a query-protocol error through awserr's table;
// internal failures are logged with the request id.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, reqID, action string, err error) {
	awserr.Responder{Protocol: awsproto.Query, Service: awsproto.CloudFormation, RequestID: reqID, Op: action, Log: h.log}.Fail(w, err)
}

func decode(r *http.Request) (params, error) {
	var raw string
	switch r.Method {
	case http.MethodPost:
		if ct := r.Header.Get("Content-Type"); ct != "" {
			mt, _, err := mime.ParseMediaType(ct)
			if err != nil || mt != "application/x-www-form-urlencoded" {
				return params{}, validationf("Content-Type must be application/x-www-form-urlencoded")
			}
		}
		b, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
		if err != nil {
			return params{}, validationf("The request body could not be read")
		}
		if len(b) > maxBody {
			return params{}, refuse(awserr.ErrBodyTooLarge, "The request body is too large")
		}
		raw = string(b)
	case http.MethodGet:
		raw = r.URL.RawQuery
	default:
		return params{}, validationf("The HTTP method %s is not supported; use POST", awsproto.Clip(r.Method))
	}
	v, err := url.ParseQuery(raw)
	if err != nil {
		return params{}, refuse(awserr.ErrMalformedRequest, "The query string is malformed")
	}
	for k, vs := range v {
		if len(vs) > 1 {
			return params{}, validationf("The parameter %s is given more than once", awsproto.Clip(k))
		}
	}
	return params{v: v}, nil
}

// settle waits for a stack's operation to end (see the package doc).
func (h *Handler) settle(ctx context.Context, stackID string) {
	if h.SettleWait > 0 && stackID != "" {
		h.e.Wait(ctx, stackID, h.SettleWait)
	}
}
