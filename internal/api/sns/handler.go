package sns

import (
	"context"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"github.com/regionfs/regionfs/internal/api/awserr"
	"github.com/regionfs/regionfs/internal/api/awsproto"
	"github.com/regionfs/regionfs/internal/monitor/notify"
)

// APIVersion is the query protocol's Version.
const APIVersion = "2010-03-31"

// maxBody bounds a request body (a Publish carries up to 256 KiB,
// percent-encoded).
const maxBody = 2 << 20

var svc = awsproto.SNS

// call is one request being served.
type call struct {
	h *Handler
	awsproto.Call
}

// invalid is SNS's word for a member of the wrong type: InvalidParameter.
func invalid(de *awsproto.DecodeError) error {
	return &notify.Error{Kind: notify.ErrInvalidParameter, Message: "Invalid parameter: " + de.Error()}
}

type operation func(ctx context.Context, c *call) (any, error)

var operations = map[string]operation{
	"CreateTopic":               createTopic,
	"DeleteTopic":               deleteTopic,
	"ListTopics":                listTopics,
	"GetTopicAttributes":        getTopicAttributes,
	"SetTopicAttributes":        setTopicAttributes,
	"Subscribe":                 subscribe,
	"ConfirmSubscription":       confirmSubscription,
	"Unsubscribe":               unsubscribe,
	"ListSubscriptions":         listSubscriptions,
	"ListSubscriptionsByTopic":  listSubscriptionsByTopic,
	"GetSubscriptionAttributes": getSubscriptionAttributes,
	"SetSubscriptionAttributes": setSubscriptionAttributes,
	"Publish":                   publish,
}

// Handler serves SNS for one region.
type Handler struct {
	s   *notify.Service
	log *slog.Logger
}

// NewHandler returns the SNS API over s (requests reach it verified).
func NewHandler(s *notify.Service, log *slog.Logger) *Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Handler{s: s, log: log}
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	reqID := awserr.RequestID(w)
	body, err := awserr.ReadBody(r, maxBody)
	rs := awserr.Responder{Protocol: awsproto.Query, Service: svc, RequestID: reqID, Log: h.log}
	if err != nil {
		rs.Fail(w, err)
		return
	}
	if p := awsproto.Detect(svc.Name, r, body); p != awsproto.Query {
		rs.Fail(w, awserr.Errorf(awserr.ErrUnknownOperation, "SNS speaks the query protocol (a form POST with Action and Version)."))
		return
	}
	vals := r.URL.Query()
	if r.Method == http.MethodPost {
		if vals, err = url.ParseQuery(string(body)); err != nil {
			rs.Fail(w, awserr.Errorf(awserr.ErrMalformedRequest, "The request body is not a valid form."))
			return
		}
	}
	op := vals.Get("Action")
	if err := awserr.QueryAction(r.Method, op, vals.Get("Version"), APIVersion, known); err != nil {
		rs.Fail(w, err)
		return
	}
	rs.Op = op
	out, err := operations[op](r.Context(), &call{h: h, Call: awsproto.Call{R: r, P: awsproto.Query, Body: body, Invalid: invalid}})
	if err != nil {
		rs.Fail(w, err)
		return
	}
	awsproto.WriteResult(w, awsproto.Query, svc, op, out, reqID)
	h.log.Debug("sns request", "op", op, "req_id", reqID)
}

// Public serves the unsigned requests of subscribers (the SubscribeURL,
// the UnsubscribeURL and the signing certificate); the API server routes
// the requests it Claims to it without SigV4 verification.
type Public struct{ h *Handler }

// Public returns the handler of the unsigned requests.
func (h *Handler) Public() *Public { return &Public{h} }

// ServeHTTP implements http.Handler.
func (p *Public) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := p.h
	func() {
		reqID := awserr.NewRequestID()
		rs := awserr.Responder{Protocol: awsproto.Query, Service: svc, RequestID: reqID, Log: h.log}
		name, cert := h.s.SigningCert()
		if r.URL.Path == "/"+name {
			w.Header().Set("Content-Type", "application/x-pem-file")
			w.Write(cert)
			return
		}
		q := r.URL.Query()
		var out any
		var err error
		switch op := q.Get("Action"); op {
		case "ConfirmSubscription":
			rs.Op = op
			var arn string
			arn, err = h.s.ConfirmSubscription(r.Context(), q.Get("TopicArn"), q.Get("Token"), false)
			out = &confirmSubscriptionOutput{SubscriptionArn: arn}
		case "Unsubscribe":
			rs.Op = op
			err = h.s.Unsubscribe(r.Context(), q.Get("SubscriptionArn"), false)
		}
		if err != nil {
			rs.Fail(w, err)
			return
		}
		awsproto.WriteResult(w, awsproto.Query, svc, q.Get("Action"), out, reqID)
	}()
}

// Claims reports whether r is one of the unsigned requests Public serves.
func (p *Public) Claims(r *http.Request) bool {
	h := p.h
	if r.Method != http.MethodGet || r.Header.Get("Authorization") != "" || strings.Contains(r.URL.RawQuery, "X-Amz-Signature") {
		return false
	}
	if name, _ := h.s.SigningCert(); r.URL.Path == "/"+name {
		return true
	}
	if r.URL.Path != "/" {
		return false
	}
	q := r.URL.Query()
	switch q.Get("Action") {
	case "ConfirmSubscription":
		return q.Get("TopicArn") != "" && q.Get("Token") != ""
	case "Unsubscribe":
		return q.Get("SubscriptionArn") != ""
	}
	return false
}

func known(op string) bool { _, ok := operations[op]; return ok }
