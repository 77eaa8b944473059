package monitor

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/regionfs/regionfs/internal/engine/kv"
	"github.com/regionfs/regionfs/internal/refusal"
)

// Limits of dashboards.
const (
	MaxDashboards        = 5000
	MaxDashboardWidgets  = 500
	MaxDashboardBodySize = 1 << 20 // bytes
	dashboardsPerPage    = 1000
)

// Dashboard is a CloudWatch dashboard: a name and its JSON body, stored
// as given (regionfs does not render it).
type Dashboard struct {
	Name     string
	ARN      string `json:"-"`
	Body     string
	Modified time.Time
	Tags     []Tag `json:",omitempty"`
}

// DashboardMessage is a DashboardValidationMessage: a problem at a JSON
// path of the body (a warning when PutDashboard accepts the body).
type DashboardMessage struct {
	DataPath string `json:"dataPath"`
	Message  string `json:"message"`
}

// Key: 'w' 'd' name → dashboard (JSON).
const tagDashboard = 'd'

func dashboardKey(name string) []byte { return append([]byte{pfxWatch, tagDashboard}, name...) }

// DashboardARN is the ARN of the dashboard named name (dashboards are
// global on AWS: no region in the ARN).
func (m *Monitor) DashboardARN(name string) string {
	return "arn:aws:cloudwatch::" + m.o.AccountID + ":dashboard/" + name
}

var dashboardName = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

func checkDashboardName(param, name string) error {
	switch {
	case name == "":
		return missing(param)
	case len(name) > 255:
		return refusal.Errorf(ErrDashboardInvalid, "The value for field %s must be at most 255 characters long.", param)
	case !dashboardName.MatchString(name):
		return refusal.Errorf(ErrDashboardInvalid, "The value for field %s contains invalid characters. It can only contain alphanumerics, dash (-) and underscore (_).", param)
	}
	return nil
}

// DashboardInput is a PutDashboard request.
type DashboardInput struct {
	Name string
	Body string
	// Tags of a new dashboard; nil keeps an existing one's.
	Tags []Tag
	// CreatedBy makes the call create-only for its maker, as
	// AlarmInput.CreatedBy does (CloudFormation's stack tags).
	CreatedBy []Tag
}

// PutDashboard creates a dashboard or replaces its body. A body with
// errors is refused (InvalidParameterInput, the messages in the error's
// text as CloudWatch writes them); one with only warnings is stored and
// the warnings returned.
func (m *Monitor) PutDashboard(ctx context.Context, in DashboardInput) ([]DashboardMessage, error) {
	name, body, tags := in.Name, in.Body, in.Tags
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := checkDashboardName("DashboardName", name); err != nil {
		return nil, err
	}
	if body == "" {
		return nil, missing("DashboardBody")
	}
	if len(body) > MaxDashboardBodySize {
		return nil, refusal.Errorf(ErrDashboardInvalid, "The dashboard body is %d bytes; at most %d are allowed.", len(body), MaxDashboardBodySize)
	}
	if err := checkTags("Tags", tags); err != nil {
		return nil, err
	}
	errs, warnings := m.checkDashboardBody(body)
	if len(errs) > 0 {
		list, _ := json.MarshalIndent(errs, "", "  ")
		return nil, refusal.Errorf(ErrDashboardInvalid, "The dashboard body is invalid, there are %d validation errors:\n%s", len(errs), list)
	}
	m.dashMu.Lock()
	defer m.dashMu.Unlock()
	old, err := m.dashboard(name)
	if err != nil && !errors.Is(err, ErrDashboardNotFound) {
		return nil, err
	}
	if old != nil && len(in.CreatedBy) > 0 && !hasTags(old.Tags, in.CreatedBy) {
		return nil, refusal.Errorf(ErrAlreadyExists, "A dashboard named %s already exists.", clip(name))
	}
	if old == nil {
		n := 0
		if err := kv.Scan(m.o.KV, []byte{pfxWatch, tagDashboard}, []byte{pfxWatch, tagDashboard + 1}, func(k, v []byte) error { n++; return nil }); err != nil {
			return nil, err
		}
		if n >= MaxDashboards {
			return nil, refusal.Errorf(ErrLimitExceeded, "The maximum number of dashboards (%d) is reached.", MaxDashboards)
		}
	}
	d := Dashboard{Name: name, Body: body, Modified: m.o.Clock().UTC(), Tags: append(slices.Clip(tags), in.CreatedBy...)}
	if old != nil && tags == nil {
		d.Tags = old.Tags
	}
	if err := m.room(int64(len(body))+alarmBytes, false); err != nil {
		return nil, err
	}
	v, _ := json.Marshal(d) // plain data
	b := m.o.KV.NewBatch()
	defer b.Close()
	b.Set(dashboardKey(name), v)
	if err := b.Commit(true); err != nil {
		return nil, fmt.Errorf("monitor: save dashboard: %w", err)
	}
	return warnings, nil
}

// dashboard reads the dashboard named name.
func (m *Monitor) dashboard(name string) (*Dashboard, error) {
	v, err := m.o.KV.Get(dashboardKey(name))
	if errors.Is(err, kv.ErrNotFound) {
		return nil, refusal.Errorf(ErrDashboardNotFound, "Dashboard %s does not exist", clip(name))
	}
	if err != nil {
		return nil, fmt.Errorf("monitor: dashboard %q: %w", name, err)
	}
	var d Dashboard
	if err := json.Unmarshal(v, &d); err != nil {
		return nil, fmt.Errorf("monitor: dashboard %q: %w", name, err)
	}
	d.ARN = m.DashboardARN(d.Name)
	return &d, nil
}

// GetDashboard returns a dashboard.
func (m *Monitor) GetDashboard(ctx context.Context, name string) (Dashboard, error) {
	if err := ctx.Err(); err != nil {
		return Dashboard{}, err
	}
	if name == "" {
		return Dashboard{}, missing("DashboardName")
	}
	d, err := m.dashboard(name)
	if err != nil {
		return Dashboard{}, err
	}
	return *d, nil
}

// DashboardEntry is a dashboard in ListDashboards.
type DashboardEntry struct {
	Name      string
	ARN       string
	Modified  time.Time
	SizeBytes int64
}

// ListDashboards lists dashboards whose names start with prefix, 1000 at
// a time in name order.
func (m *Monitor) ListDashboards(ctx context.Context, prefix, next string) ([]DashboardEntry, string, error) {
	if err := ctx.Err(); err != nil {
		return nil, "", err
	}
	if prefix != "" {
		if err := checkDashboardName("DashboardNamePrefix", prefix); err != nil {
			return nil, "", invalid("%s", err.(*Error).Message)
		}
	}
	after, err := decodeToken(tokenDashboards, next)
	if err != nil {
		return nil, "", err
	}
	lo := append([]byte{pfxWatch, tagDashboard}, prefix...)
	if after > prefix {
		lo = append(dashboardKey(after), 0)
	}
	hi := []byte{pfxWatch, tagDashboard + 1}
	if prefix != "" {
		hi = prefixEnd(dashboardKey(prefix))
	}
	out := []DashboardEntry{}
	token := ""
	err = kv.Scan(m.o.KV, lo, hi, func(k, v []byte) error {
		if token != "" {
			return nil
		}
		if len(out) == dashboardsPerPage {
			token = encodeToken(tokenDashboards, out[len(out)-1].Name)
			return nil
		}
		var d Dashboard
		if err := json.Unmarshal(v, &d); err != nil {
			return fmt.Errorf("monitor: dashboard %q: %w", k[2:], err)
		}
		out = append(out, DashboardEntry{Name: d.Name, ARN: m.DashboardARN(d.Name), Modified: d.Modified, SizeBytes: int64(len(d.Body))})
		return nil
	})
	if err != nil {
		return nil, "", err
	}
	return out, token, nil
}

// prefixEnd is the first key after every key that starts with p.
func prefixEnd(p []byte) []byte {
	end := bytes.Clone(p)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}

// DeleteDashboards deletes dashboards; when one does not exist, none is
// deleted.
func (m *Monitor) DeleteDashboards(ctx context.Context, names []string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(names) == 0 {
		return missing("DashboardNames")
	}
	m.dashMu.Lock()
	defer m.dashMu.Unlock()
	for _, n := range names {
		if _, err := m.dashboard(n); err != nil {
			return err
		}
	}
	b := m.o.KV.NewBatch()
	defer b.Close()
	for _, n := range names {
		b.Delete(dashboardKey(n))
	}
	if err := m.room(alarmBytes, false); err != nil {
		return err
	}
	if err := b.Commit(true); err != nil {
		return fmt.Errorf("monitor: delete dashboards: %w", err)
	}
	return nil
}

// Widget types CloudWatch dashboards have.
var widgetTypes = []string{"metric", "text", "log", "alarm", "explorer", "custom"}

// checkDashboardBody validates a body against CloudWatch's dashboard
// structure: errors refuse it; warnings are things that will not show
// (another region's metrics, alarms that do not exist, properties that
// are not CloudWatch's).
func (m *Monitor) checkDashboardBody(body string) (errs, warnings []DashboardMessage) {
	fail := func(path, format string, args ...any) {
		errs = append(errs, DashboardMessage{path, fmt.Sprintf(format, args...)})
	}
	warn := func(path, format string, args ...any) {
		warnings = append(warnings, DashboardMessage{path, fmt.Sprintf(format, args...)})
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal([]byte(body), &top); err != nil || top == nil {
		fail("", "Should be an object: the dashboard body is not one JSON object")
		return errs, nil
	}
	for _, k := range slices.Sorted(maps.Keys(top)) {
		switch k {
		case "widgets", "start", "end", "periodOverride", "variables":
		default:
			warn("/"+k, "Unknown property %q is ignored", clip(k))
		}
	}
	for _, k := range []string{"start", "end"} {
		if raw, ok := top[k]; ok {
			var s string
			if json.Unmarshal(raw, &s) != nil {
				fail("/"+k, "Should be string")
			}
		}
	}
	if raw, ok := top["periodOverride"]; ok {
		var s string
		if json.Unmarshal(raw, &s) != nil || (s != "auto" && s != "inherit") {
			fail("/periodOverride", "Should be equal to one of the allowed values: auto, inherit")
		}
	}
	raw, ok := top["widgets"]
	if !ok {
		fail("", "Should have required property 'widgets'")
		return errs, warnings
	}
	var widgets []json.RawMessage
	if json.Unmarshal(raw, &widgets) != nil || widgets == nil {
		fail("/widgets", "Should be array")
		return errs, warnings
	}
	if len(widgets) > MaxDashboardWidgets {
		fail("/widgets", "Should NOT have more than %d items", MaxDashboardWidgets)
		return errs, warnings
	}
	m.alarms.mu.Lock()
	defer m.alarms.mu.Unlock()
	for i, w := range widgets {
		m.checkWidget(fmt.Sprintf("/widgets/%d", i), w, fail, warn)
	}
	return errs, warnings
}

type reporter func(path, format string, args ...any)

// checkWidget validates one widget (alarms.mu held).
func (m *Monitor) checkWidget(path string, raw json.RawMessage, fail, warn reporter) {
	var w map[string]json.RawMessage
	if json.Unmarshal(raw, &w) != nil || w == nil {
		fail(path, "Should be object")
		return
	}
	var typ string
	if t, ok := w["type"]; !ok {
		fail(path, "Should have required property 'type'")
	} else if json.Unmarshal(t, &typ) != nil || !slices.Contains(widgetTypes, typ) {
		fail(path+"/type", "Should be equal to one of the allowed values: %s", strings.Join(widgetTypes, ", "))
		typ = ""
	}
	num := func(name string, lo, hi int) (int, bool) {
		v, ok := w[name]
		if !ok {
			return 0, false
		}
		var f float64
		if json.Unmarshal(v, &f) != nil || f != float64(int(f)) {
			fail(path+"/"+name, "Should be integer")
			return 0, true
		}
		if int(f) < lo || int(f) > hi {
			fail(path+"/"+name, "Should be between %d and %d", lo, hi)
		}
		return int(f), true
	}
	x, hasX := num("x", 0, 23)
	_, hasY := num("y", 0, 1<<20)
	width, hasWidth := num("width", 1, 24)
	num("height", 1, 1000)
	if hasX != hasY {
		fail(path, "Should have both properties 'x' and 'y', or neither")
	}
	if hasX && hasWidth && x+width > 24 {
		warn(path, "The widget is %d wide at x %d: it ends past the dashboard's 24 columns", width, x)
	}
	for _, k := range slices.Sorted(maps.Keys(w)) {
		switch k {
		case "type", "x", "y", "width", "height", "properties":
		default:
			warn(path+"/"+k, "Unknown property %q is ignored", clip(k))
		}
	}
	praw, ok := w["properties"]
	if !ok {
		fail(path, "Should have required property 'properties'")
		return
	}
	var props map[string]json.RawMessage
	if json.Unmarshal(praw, &props) != nil || props == nil {
		fail(path+"/properties", "Should be object")
		return
	}
	ppath := path + "/properties"
	str := func(name string) (string, bool) {
		v, ok := props[name]
		if !ok {
			return "", false
		}
		var s string
		if json.Unmarshal(v, &s) != nil {
			fail(ppath+"/"+name, "Should be string")
			return "", false
		}
		return s, true
	}
	region, hasRegion := str("region")
	if hasRegion && region != m.o.Region {
		warn(ppath+"/region", "regionfs serves the metrics and alarms of %s only: this widget's data of %s will not show here", m.o.Region, clip(region))
	}
	switch typ {
	case "text":
		if _, ok := props["markdown"]; !ok {
			fail(ppath, "Should have required property 'markdown'")
		} else {
			str("markdown")
		}
	case "metric":
		_, hasMetrics := props["metrics"]
		_, hasAnnotations := props["annotations"]
		if !hasMetrics && !hasAnnotations {
			fail(ppath, "Should have required property 'metrics'")
			fail(ppath, "The metric widget should have specified a region and a data source or an alarm annotation")
		}
		if hasMetrics {
			var metrics []json.RawMessage
			if json.Unmarshal(props["metrics"], &metrics) != nil {
				fail(ppath+"/metrics", "Should be array")
			}
			for j, mr := range metrics {
				var row []json.RawMessage
				if json.Unmarshal(mr, &row) != nil {
					fail(fmt.Sprintf("%s/metrics/%d", ppath, j), "Should be array")
					fail(fmt.Sprintf("%s/metrics/%d", ppath, j), "Field \"metrics\" has to be an array of array of strings, with an optional metricRenderer object as last element")
				}
			}
			if !hasRegion {
				fail(ppath, "Should have required property 'region'")
			}
		}
		if hasAnnotations {
			var ann struct {
				Alarms []string `json:"alarms"`
			}
			if json.Unmarshal(props["annotations"], &ann) != nil {
				fail(ppath+"/annotations", "Should be object")
			}
			m.checkWidgetAlarms(ppath+"/annotations/alarms", ann.Alarms, warn)
		}
	case "alarm":
		var alarms []string
		if v, ok := props["alarms"]; !ok {
			fail(ppath, "Should have required property 'alarms'")
		} else if json.Unmarshal(v, &alarms) != nil {
			fail(ppath+"/alarms", "Should be array of strings")
		}
		m.checkWidgetAlarms(ppath+"/alarms", alarms, warn)
	case "log":
		if _, ok := props["query"]; !ok {
			fail(ppath, "Should have required property 'query'")
		} else {
			str("query")
		}
		warn(ppath, "regionfs has no CloudWatch Logs: this widget will show no data")
	}
}

// checkWidgetAlarms warns of alarm ARNs that name no alarm here
// (alarms.mu held).
func (m *Monitor) checkWidgetAlarms(path string, arns []string, warn reporter) {
	prefix := "arn:aws:cloudwatch:" + m.o.Region + ":" + m.o.AccountID + ":alarm:"
	for j, a := range arns {
		name, ok := strings.CutPrefix(a, prefix)
		if !ok || !m.alarms.existsLocked(name) {
			warn(fmt.Sprintf("%s/%d", path, j), "The alarm %s does not exist in %s", clip(a), m.o.Region)
		}
	}
}
