package efs

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/regionfs/regionfs/internal/api/awserr"
	"github.com/regionfs/regionfs/internal/api/sigv4"
	"github.com/regionfs/regionfs/internal/control"
)

// MaxBodyBytes bounds request bodies: the largest legitimate one is a file
// system policy (20,000 characters, up to 6 bytes each once JSON-escaped).
const MaxBodyBytes = 256 << 10

// apiVersion is the first segment of every EFS path.
const apiVersion = "2015-02-01"

// Handler serves the EFS REST-JSON API of one region.
type Handler struct {
	r      *control.Region
	log    *slog.Logger
	routes []route
}

// NewHandler returns the EFS API over r. Requests must reach it verified
// (package region puts the SigV4 identity in the context); a request
// without an identity is refused.
func NewHandler(r *control.Region, log *slog.Logger) http.Handler {
	h := &Handler{r: r, log: log}
	h.routes = h.table()
	return h
}

// call is one request being served.
type call struct {
	h      *Handler
	w      http.ResponseWriter
	req    *http.Request
	reqID  string
	labels map[string]string
	query  url.Values
	body   []byte
}

type route struct {
	method  string
	op      string
	path    []string // segments after the version; "{X}" is a label
	trailer bool     // the path ends with "/" (DescribeTags)
	serve   func(*call) error
}

// match reports whether segs fit the route's path, filling labels.
func (rt *route) match(segs []string, trailing bool) (map[string]string, bool) {
	if len(segs) != len(rt.path) || trailing && !rt.trailer {
		return nil, false
	}
	var labels map[string]string
	for i, p := range rt.path {
		if strings.HasPrefix(p, "{") {
			if segs[i] == "" {
				return nil, false
			}
			if labels == nil {
				labels = map[string]string{}
			}
			labels[p[1:len(p)-1]] = segs[i]
			continue
		}
		if segs[i] != p {
			return nil, false
		}
	}
	return labels, true
}

// ServeHTTP routes a request on its escaped path, so that labels may hold
// percent-encoded "/" (ARNs).
func (h *Handler) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	reqID := awserr.RequestID(w)
	c := &call{h: h, w: w, req: req, reqID: reqID}
	id, ok := sigv4.FromContext(req.Context())
	if !ok {
		c.fail("", errorf(sigv4.ErrMissingAuthentication, "Missing Authentication Token"))
		return
	}
	if id.Region != h.r.Name() {
		c.fail("", errorf(sigv4.ErrInvalidRegion, "Credential should be scoped to a valid region."))
		return
	}
	rt, labels, err := h.find(req)
	if err != nil {
		c.fail("", err)
		return
	}
	c.labels = labels
	q, err := url.ParseQuery(req.URL.RawQuery)
	if err != nil {
		c.fail(rt.op, errorf(ErrBadRequest, "The query string is malformed."))
		return
	}
	c.query = q
	if c.body, err = readBody(w, req); err != nil {
		c.fail(rt.op, err)
		return
	}
	if err := rt.serve(c); err != nil {
		c.fail(rt.op, err)
	}
}

// find returns the route of a request.
func (h *Handler) find(req *http.Request) (*route, map[string]string, error) {
	p := req.URL.EscapedPath()
	rest, ok := strings.CutPrefix(p, "/"+apiVersion+"/")
	if !ok {
		return nil, nil, errorf(awserr.ErrUnknownOperation, "No EFS operation has the path %s.", clipPath(p))
	}
	trailing := strings.HasSuffix(rest, "/")
	rest = strings.TrimSuffix(rest, "/")
	raw := strings.Split(rest, "/")
	segs := make([]string, len(raw))
	for i, s := range raw {
		u, err := url.PathUnescape(s)
		if err != nil {
			return nil, nil, errorf(ErrBadRequest, "The path %s is not correctly percent-encoded.", clipPath(p))
		}
		segs[i] = u
	}
	methodMismatch := false
	for i := range h.routes {
		rt := &h.routes[i]
		labels, ok := rt.match(segs, trailing)
		if !ok {
			continue
		}
		if rt.method != req.Method {
			methodMismatch = true
			continue
		}
		return rt, labels, nil
	}
	if methodMismatch {
		return nil, nil, errorf(awserr.ErrMethodNotAllowed, "No EFS operation is %s %s.", req.Method, clipPath(p))
	}
	return nil, nil, errorf(awserr.ErrUnknownOperation, "No EFS operation has the path %s.", clipPath(p))
}

func readBody(w http.ResponseWriter, req *http.Request) ([]byte, error) {
	if req.ContentLength > MaxBodyBytes {
		return nil, errorf(awserr.ErrBodyTooLarge, "The request body of %d bytes exceeds the limit of %d bytes.", req.ContentLength, MaxBodyBytes)
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, req.Body, MaxBodyBytes))
	if err != nil {
		var mb *http.MaxBytesError
		if errors.As(err, &mb) {
			return nil, errorf(awserr.ErrBodyTooLarge, "The request body exceeds the limit of %d bytes.", MaxBodyBytes)
		}
		return nil, errorf(ErrBadRequest, "The request body could not be read.")
	}
	return b, nil
}

// reply writes a JSON response.
func (c *call) reply(status int, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	h := c.w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	c.w.WriteHeader(status)
	c.w.Write(b)
	return nil
}

// noContent writes an empty response.
func (c *call) noContent(status int) error {
	c.w.Header().Set("Content-Length", "0")
	c.w.WriteHeader(status)
	return nil
}

func clipPath(p string) string {
	if len(p) > 200 {
		return p[:200] + "…"
	}
	return p
}
