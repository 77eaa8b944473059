package ec2

import (
	"encoding/xml"
	"log/slog"
	"mime"
	"net/http"
	"net/url"

	"github.com/regionfs/regionfs/internal/api/awserr"
	"github.com/regionfs/regionfs/internal/api/awsproto"
	"github.com/regionfs/regionfs/internal/control/network"
)

// Namespace is the XML namespace of EC2 responses.
const Namespace = "http://ec2.amazonaws.com/doc/2016-11-15/"

// maxBody bounds a request body; Describe calls are small.
const maxBody = 1 << 20

type operation func(h *Handler, p params) (any, error)

var operations = map[string]operation{
	"DescribeSubnets":               (*Handler).describeSubnets,
	"DescribeSecurityGroups":        (*Handler).describeSecurityGroups,
	"DescribeAvailabilityZones":     (*Handler).describeAvailabilityZones,
	"DescribeVpcs":                  (*Handler).describeVpcs,
	"DescribeRegions":               (*Handler).describeRegions,
	"CreateSecurityGroup":           (*Handler).createSecurityGroup,
	"DeleteSecurityGroup":           (*Handler).deleteSecurityGroup,
	"AuthorizeSecurityGroupIngress": (*Handler).authorizeIngress,
	"AuthorizeSecurityGroupEgress":  (*Handler).authorizeEgress,
	"RevokeSecurityGroupIngress":    (*Handler).revokeIngress,
	"RevokeSecurityGroupEgress":     (*Handler).revokeEgress,
	"DescribeSecurityGroupRules":    (*Handler).describeSecurityGroupRules,
	"CreateTags":                    (*Handler).createTags,
	"DeleteTags":                    (*Handler).deleteTags,
}

// mutating operations check DryRun themselves (after validating).
var mutating = map[string]bool{"CreateSecurityGroup": true, "DeleteSecurityGroup": true, "AuthorizeSecurityGroupIngress": true,
	"AuthorizeSecurityGroupEgress": true, "RevokeSecurityGroupIngress": true, "RevokeSecurityGroupEgress": true,
	"CreateTags": true, "DeleteTags": true}

// Handler serves the EC2 subset for one region.
type Handler struct {
	r   Region
	log *slog.Logger
	// net, when set, holds the region's security groups (mutable);
	// otherwise Region.Groups are described read-only.
	net   *network.Network
	inUse network.InUse
}

// SetNetwork makes the handler serve the security groups of net (the
// mutating operations included); inUse lists a group's dependents.
func (h *Handler) SetNetwork(net *network.Network, inUse network.InUse) {
	h.net, h.inUse = net, inUse
}

// NewHandler returns the EC2 handler of r.
func NewHandler(r Region, log *slog.Logger) *Handler {
	return &Handler{r: r, log: log}
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	reqID := awserr.RequestID(w)
	p, err := decode(req)
	if err != nil {
		h.fail(w, req, reqID, err)
		return
	}
	p.reqID = reqID
	action := p.get("Action")
	op, ok := operations[action]
	if !ok {
		if action == "" {
			h.fail(w, req, reqID, errorf(awserr.ErrMissingAction, "The request must contain the parameter Action"))
			return
		}
		h.fail(w, req, reqID, errorf(awserr.ErrUnknownOperation, "The action %s is not valid for this web service.", awsproto.Clip(action)))
		return
	}
	res, err := op(h, p)
	if err == nil && p.get("DryRun") == "true" && !mutating[action] {
		err = errorf(awserr.ErrEC2DryRun, "Request would have succeeded, but DryRun flag is set.")
	}
	if err != nil {
		h.fail(w, req, reqID, err)
		return
	}
	b, err := xml.Marshal(res)
	if err != nil {
		h.fail(w, req, reqID, err)
		return
	}
	w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	w.WriteHeader(http.StatusOK)
	w.Write([]byte(xml.Header))
	w.Write(b)
	h.log.Debug("ec2 request", "op", action, "req_id", reqID)
}

func (h *Handler) fail(w http.ResponseWriter, req *http.Request, reqID string, err error) {
	awserr.Responder{Protocol: awsproto.EC2, Service: awsproto.EC2Service, RequestID: reqID, Op: req.Method + " " + req.URL.Path, Log: h.log}.Fail(w, err)
}

// decode reads the query parameters from a form body (POST) or the query
// string (GET).
func decode(req *http.Request) (params, error) {
	var raw string
	switch req.Method {
	case http.MethodPost:
		if ct := req.Header.Get("Content-Type"); ct != "" {
			mt, _, err := mime.ParseMediaType(ct)
			if err != nil || mt != "application/x-www-form-urlencoded" {
				return params{}, errorf(awserr.ErrEC2InvalidParameterValue, "Content-Type must be application/x-www-form-urlencoded")
			}
		}
		b, err := awserr.ReadBody(req, maxBody)
		if err != nil {
			return params{}, err
		}
		raw = string(b)
	case http.MethodGet:
		raw = req.URL.RawQuery
	default:
		return params{}, errorf(awserr.ErrMethodNotAllowed, "The HTTP method %s is not supported; use POST", req.Method)
	}
	v, err := url.ParseQuery(raw)
	if err != nil {
		return params{}, errorf(awserr.ErrMalformedRequest, "The query string is malformed")
	}
	for k, vs := range v {
		if len(vs) > 1 {
			return params{}, invalidParameter("The parameter %s is given more than once", awsproto.Clip(k))
		}
	}
	return params{v: v}, nil
}

type tag struct {
	Key   string `xml:"key"`
	Value string `xml:"value"`
}

func nameTags(name string) []tag {
	if name == "" {
		return nil
	}
	return []tag{{"Name", name}}
}

// filtered returns the items that every filter matches (matches is the
// item kind's matchFilters or matchOwn).
func filtered[T any](items []T, filters []filter, matches func(T, []filter) (bool, error)) ([]T, error) {
	var out []T
	for _, it := range items {
		ok, err := matches(it, filters)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, it)
		}
	}
	return out, nil
}

// matchFilters reports whether an item passes every filter: match answers
// the filters of the item's own fields (known false for a name it does
// not have), any other is a tag filter over tags, or invalid.
func matchFilters(filters []filter, tags []tag, match func(f filter) (ok, known bool)) (bool, error) {
	return matchOwn(filters, func(f filter) (bool, bool) {
		if ok, known := match(f); known {
			return ok, true
		}
		return tagFilter(f, tags)
	})
}

// matchOwn is matchFilters for an item without tags: a filter match does
// not know is invalid. Every filter is looked at, so an invalid one is
// refused whatever the filters before it said.
func matchOwn(filters []filter, match func(f filter) (ok, known bool)) (bool, error) {
	all := true
	for _, f := range filters {
		ok, known := match(f)
		if !known {
			return false, invalidFilter(f.name)
		}
		all = all && ok
	}
	return all, nil
}

// tagFilter applies a tag:KEY, tag-key or tag-value filter to tags; ok is
// false when f is not a tag filter.
func tagFilter(f filter, tags []tag) (matched, ok bool) {
	switch {
	case len(f.name) > 4 && f.name[:4] == "tag:":
		for _, t := range tags {
			if t.Key == f.name[4:] && anyMatch(f.values, t.Value) {
				return true, true
			}
		}
		return false, true
	case f.name == "tag-key":
		for _, t := range tags {
			if anyMatch(f.values, t.Key) {
				return true, true
			}
		}
		return false, true
	case f.name == "tag-value":
		for _, t := range tags {
			if anyMatch(f.values, t.Value) {
				return true, true
			}
		}
		return false, true
	}
	return false, false
}

func invalidFilter(name string) error {
	return invalidParameter("The filter '%s' is invalid", awsproto.Clip(name))
}

func boolString(b bool) string {
	if b {
		return "true"
	}
	return "false"
}
