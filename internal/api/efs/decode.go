package efs

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/regionfs/regionfs/internal/control"
)

// The request decoder: a body is a JSON object whose members are taken by
// their exact (case-sensitive) names; unknown members are ignored, null is
// absent, and a member of the wrong JSON type, length, pattern or range
// is a BadRequest in AWS's validation wording. The first problem wins.

// object is a decoded JSON object.
type object map[string]json.RawMessage

// parseObject decodes a request body; an empty body is an empty object.
func parseObject(body []byte) (object, error) {
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return object{}, nil
	}
	if !utf8.Valid(body) {
		return nil, errorf(ErrBadRequest, "The request body is not valid UTF-8.")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	var o object
	if err := dec.Decode(&o); err != nil || o == nil {
		return nil, errorf(ErrBadRequest, "The request body is not a JSON object.")
	}
	if _, err := dec.Token(); err == nil {
		return nil, errorf(ErrBadRequest, "The request body has content after its JSON object.")
	}
	return o, nil
}

// reader reads members of one object; path names it in messages.
type reader struct {
	obj  object
	path string
	err  *error // shared by nested readers: the first error
}

func newReader(o object) *reader {
	var err error
	return &reader{obj: o, err: &err}
}

func (r *reader) failed() bool { return *r.err != nil }

func (r *reader) fail(format string, args ...any) {
	if *r.err == nil {
		*r.err = errorf(ErrBadRequest, format, args...)
	}
}

// name is the member's name as AWS's validation messages spell it
// (lower camel case, with the path of enclosing members).
func (r *reader) name(member string) string {
	n := strings.ToLower(member[:1]) + member[1:]
	if r.path != "" {
		return r.path + "." + n
	}
	return n
}

// raw returns a member's JSON, nil when absent or null.
func (r *reader) raw(member string) json.RawMessage {
	v, ok := r.obj[member]
	if !ok || string(v) == "null" {
		return nil
	}
	return v
}

func (r *reader) str(member string) (string, bool) {
	v := r.raw(member)
	if v == nil || r.failed() {
		return "", false
	}
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		r.fail("1 validation error detected: Value at '%s' must be a string.", r.name(member))
		return "", false
	}
	return s, true
}

func (r *reader) boolean(member string) (bool, bool) {
	v := r.raw(member)
	if v == nil || r.failed() {
		return false, false
	}
	switch string(v) {
	case "true":
		return true, true
	case "false":
		return false, true
	}
	r.fail("1 validation error detected: Value at '%s' must be a boolean.", r.name(member))
	return false, false
}

func (r *reader) number(member string) (float64, bool) {
	v := r.raw(member)
	if v == nil || r.failed() {
		return 0, false
	}
	var n json.Number
	if c := v[0]; (c < '0' || c > '9') && c != '-' || json.Unmarshal(v, &n) != nil {
		r.fail("1 validation error detected: Value at '%s' must be a number.", r.name(member))
		return 0, false
	}
	f, err := n.Float64()
	if err != nil || math.IsInf(f, 0) {
		r.fail("1 validation error detected: Value '%s' at '%s' is not a representable number.", clipValue(string(n)), r.name(member))
		return 0, false
	}
	return f, true
}

// integer reads an integral number in [min, max].
func (r *reader) integer(member string, min, max int64) (int64, bool) {
	f, ok := r.number(member)
	if !ok {
		return 0, false
	}
	if f != math.Trunc(f) || f < float64(min) || f > float64(max) {
		r.fail("1 validation error detected: Value '%s' at '%s' failed to satisfy constraint: Member must be an integer between %d and %d.", fmtNum(f), r.name(member), min, max)
		return 0, false
	}
	return int64(f), true
}

func (r *reader) list(member string) ([]json.RawMessage, bool) {
	v := r.raw(member)
	if v == nil || r.failed() {
		return nil, false
	}
	var l []json.RawMessage
	if err := json.Unmarshal(v, &l); err != nil {
		r.fail("1 validation error detected: Value at '%s' must be a list.", r.name(member))
		return nil, false
	}
	return l, true
}

// objectAt reads a nested object.
func (r *reader) objectAt(member string) (*reader, bool) {
	v := r.raw(member)
	if v == nil || r.failed() {
		return nil, false
	}
	return r.sub(v, r.name(member))
}

func (r *reader) sub(v json.RawMessage, path string) (*reader, bool) {
	var o object
	if err := json.Unmarshal(v, &o); err != nil || o == nil {
		r.fail("1 validation error detected: Value at '%s' must be a structure.", path)
		return nil, false
	}
	return &reader{obj: o, path: path, err: r.err}, true
}

// strings reads a list of strings.
func (r *reader) strings(member string) ([]string, bool) {
	l, ok := r.list(member)
	if !ok {
		return nil, false
	}
	out := make([]string, 0, len(l))
	for i, v := range l {
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			r.fail("1 validation error detected: Value at '%s.%d.member' must be a string.", r.name(member), i+1)
			return nil, false
		}
		out = append(out, s)
	}
	return out, true
}

// required notes a missing member.
func (r *reader) required(member string, present bool) {
	if !present {
		r.fail("1 validation error detected: Value null at '%s' failed to satisfy constraint: Member must not be null.", r.name(member))
	}
}

// check validates a string by rule.
func (r *reader) check(member, v string, ru rule) {
	if r.failed() {
		return
	}
	if err := ru.check(r.name(member), v); err != nil {
		*r.err = err
	}
}

// rule is a string member's constraints from the model.
type rule struct {
	min, max int // characters; max 0 = unbounded
	pattern  *regexp.Regexp
}

func (ru rule) check(name, v string) error {
	n := utf8.RuneCountInString(v)
	switch {
	case !utf8.ValidString(v):
		return errorf(ErrBadRequest, "1 validation error detected: Value at '%s' is not valid UTF-8.", name)
	case n < ru.min:
		return errorf(ErrBadRequest, "1 validation error detected: Value '%s' at '%s' failed to satisfy constraint: Member must have length greater than or equal to %d.", clipValue(v), name, ru.min)
	case ru.max > 0 && n > ru.max:
		return errorf(ErrBadRequest, "1 validation error detected: Value '%s' at '%s' failed to satisfy constraint: Member must have length less than or equal to %d.", clipValue(v), name, ru.max)
	case ru.pattern != nil && !ru.pattern.MatchString(v):
		return errorf(ErrBadRequest, "%s", control.PatternMessage(name, v, ru.pattern))
	}
	return nil
}

// Rules of the model's string shapes.
var (
	fileSystemIDRule  = rule{max: 128, pattern: control.FileSystemRefPattern}
	accessPointIDRule = rule{max: 128, pattern: control.AccessPointRefPattern}
	resourceIDRule    = rule{max: 128, pattern: regexp.MustCompile(`^(arn:aws[-a-z]*:elasticfilesystem:[0-9a-z-:]+:(access-point/fsap|file-system/fs)-[0-9a-f]{8,40}|fs(ap)?-[0-9a-f]{8,40})$`)}
	mountTargetIDRule = rule{min: 13, max: 45, pattern: control.MountTargetIDPattern}
	subnetIDRule      = rule{min: 15, max: 47, pattern: regexp.MustCompile(`^subnet-[0-9a-f]{8,40}$`)}
	securityGroupRule = rule{min: 11, max: 43, pattern: regexp.MustCompile(`^sg-[0-9a-f]{8,40}`)}
	ipAddressRule     = rule{min: 7, max: 15, pattern: regexp.MustCompile(`^[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}$`)}
	ipv6AddressRule   = rule{min: 3, max: 39}
	tokenRule         = rule{min: 1, max: 64, pattern: regexp.MustCompile(`.+`)}
	kmsKeyIDRule      = rule{max: 2048, pattern: regexp.MustCompile(`^([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|mrk-[0-9a-f]{32}|alias/[a-zA-Z0-9/_-]+|(arn:aws[-a-z]*:kms:[a-z0-9-]+:\d{12}:((key/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})|(key/mrk-[0-9a-f]{32})|(alias/[a-zA-Z0-9/_-]+))))$`)}
	zoneNameRule      = rule{min: 1, max: 64, pattern: regexp.MustCompile(`.+`)}
	markerRule        = rule{min: 1, max: 128, pattern: regexp.MustCompile(`.+`)}
	tagKeyRule        = rule{min: 1, max: 128}
	tagValueRule      = rule{max: 256}
	pathRule          = rule{min: 1, max: 100}
	permissionsRule   = rule{min: 3, max: 4, pattern: regexp.MustCompile(`^[0-7]{3,4}$`)}
	policyRule        = rule{min: 1, max: 20000}
)

// Upper bounds of the model's list shapes.
const (
	maxSecurityGroups = 100
	maxTagKeys        = 50
	maxSecondaryGIDs  = 16
	maxLifecycle      = 3
	maxID             = 4294967295 // Uid, Gid
)

// tags reads a Tags member.
func (r *reader) tags(member string) ([]control.Tag, bool) {
	l, ok := r.list(member)
	if !ok {
		return nil, false
	}
	out := make([]control.Tag, 0, len(l))
	for i, v := range l {
		t, ok := r.sub(v, fmt.Sprintf("%s.%d.member", r.name(member), i+1))
		if !ok {
			return nil, false
		}
		k, hasK := t.str("Key")
		val, hasV := t.str("Value")
		t.required("Key", hasK)
		t.required("Value", hasV)
		t.check("Key", k, tagKeyRule)
		t.check("Value", val, tagValueRule)
		if r.failed() {
			return nil, false
		}
		out = append(out, control.Tag{Key: k, Value: val})
	}
	return out, true
}

// labelValue validates a path label.
func (c *call) label(name string, ru rule) (string, error) {
	v := c.labels[name]
	return v, ru.check(strings.ToLower(name[:1])+name[1:], v)
}

// labelAndBody returns the path label name (validated by ru) and a reader
// of the request body: how an operation on one resource that takes a body
// begins.
func (c *call) labelAndBody(name string, ru rule) (string, *reader, error) {
	v, err := c.label(name, ru)
	if err != nil {
		return "", nil, err
	}
	b, err := c.bodyReader()
	if err != nil {
		return "", nil, err
	}
	return v, b, nil
}

// queryString returns a query parameter ("" when absent) validated by ru.
func (c *call) queryString(name string, ru rule) (string, error) {
	if !c.query.Has(name) {
		return "", nil
	}
	v := c.query.Get(name)
	return v, ru.check(strings.ToLower(name[:1])+name[1:], v)
}

// queryInt returns an integer query parameter ≥ 1 (0 when absent).
func (c *call) queryInt(name string) (int, error) {
	if !c.query.Has(name) {
		return 0, nil
	}
	v := c.query.Get(name)
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return 0, errorf(ErrBadRequest, "1 validation error detected: Value '%s' at '%s' failed to satisfy constraint: Member must be an integer greater than or equal to 1.",
			clipValue(v), strings.ToLower(name[:1])+name[1:])
	}
	return n, nil
}

// bodyReader parses the body for an operation.
func (c *call) bodyReader() (*reader, error) {
	o, err := parseObject(c.body)
	if err != nil {
		return nil, err
	}
	return newReader(o), nil
}

func clipValue(s string) string { return control.ClipValue(s) }

func fmtNum(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }
