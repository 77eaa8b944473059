package drills

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/regionfs/regionfs/internal/drill"
)

// service records what the handlers ask of the drill service and answers
// with what the test set.
type service struct {
	mu      sync.Mutex // guards the fields below
	started []drill.Input
	checked []drill.CheckResult
	listFS  string
	listMax int
	drills  map[string]drill.Drill
	err     error
}

func (s *service) Start(_ context.Context, in drill.Input) (drill.Drill, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return drill.Drill{}, s.err
	}
	s.started = append(s.started, in)
	return drill.Drill{DrillID: "drill-0123456789abcdef0", FileSystemID: in.FileSystemID, State: drill.StateRunning}, nil
}

func (s *service) Get(_ context.Context, id string) (drill.Drill, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.drills[id]
	if !ok {
		return drill.Drill{}, &drill.Error{Kind: drill.ErrDrillNotFound, Message: "Drill '" + id + "' does not exist in region us-west-2."}
	}
	return d, nil
}

func (s *service) List(_ context.Context, fsID string, max int) []drill.Drill {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.listFS, s.listMax = fsID, max
	var out []drill.Drill
	for _, d := range s.drills {
		out = append(out, d)
	}
	return out
}

func (s *service) ReportCheck(_ context.Context, id string, r drill.CheckResult) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.drills[id]; !ok {
		return &drill.Error{Kind: drill.ErrDrillNotFound, Message: "no such drill"}
	}
	s.checked = append(s.checked, r)
	return nil
}

func do(t *testing.T, h http.Handler, method, target, body string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, target, strings.NewReader(body))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// The operations decode their members, pass them on and answer JSON; other
// requests go to the EFS API behind.
func TestOperations(t *testing.T) {
	s := &service{drills: map[string]drill.Drill{"drill-00000000000000001": {DrillID: "drill-00000000000000001", State: drill.StateChecking}}}
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) })
	h := Wrap(next, s, nil)

	rec := do(t, h, "POST", "/2015-02-01/regionfs/drills", `{"FileSystemId":"fs-0123456789abcdef0","SubnetId":"subnet-0123456789abcdef0",
		"SecurityGroups":["sg-0123456789abcdef0"],"Keep":true,"HoldSeconds":90,"MaxRPOSeconds":1.5,"MaxRTOSeconds":30,
		"NotificationTopicArn":"arn:aws:sns:us-west-2:123456789012:drills"}`)
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"DrillId":"drill-0123456789abcdef0"`) {
		t.Fatalf("StartDrill: %d %s", rec.Code, rec.Body)
	}
	want := drill.Input{FileSystemID: "fs-0123456789abcdef0", SubnetID: "subnet-0123456789abcdef0", SecurityGroups: []string{"sg-0123456789abcdef0"},
		Keep: true, Hold: 90 * time.Second, MaxRPO: 1500 * time.Millisecond, MaxRTO: 30 * time.Second, NotificationTopicARN: "arn:aws:sns:us-west-2:123456789012:drills"}
	if got := s.started[0]; got.FileSystemID != want.FileSystemID || got.SubnetID != want.SubnetID || got.SecurityGroups[0] != want.SecurityGroups[0] ||
		got.Keep != want.Keep || got.Hold != want.Hold || got.MaxRPO != want.MaxRPO || got.MaxRTO != want.MaxRTO ||
		got.NotificationTopicARN != want.NotificationTopicARN || got.Check != "" {
		t.Fatalf("StartDrill passed %+v, want %+v", got, want)
	}

	rec = do(t, h, "GET", "/2015-02-01/regionfs/drills/drill-00000000000000001", "")
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"State":"CHECKING"`) {
		t.Fatalf("DescribeDrill: %d %s", rec.Code, rec.Body)
	}
	rec = do(t, h, "GET", "/2015-02-01/regionfs/drills?FileSystemId=fs-0123456789abcdef0&MaxItems=5", "")
	var list struct{ Drills []drill.Drill }
	if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &list) != nil || len(list.Drills) != 1 || s.listFS != "fs-0123456789abcdef0" || s.listMax != 5 {
		t.Fatalf("ListDrills: %d %s (%q, %d)", rec.Code, rec.Body, s.listFS, s.listMax)
	}
	rec = do(t, h, "POST", "/2015-02-01/regionfs/drills/drill-00000000000000001/check", `{"Passed":false,"ExitCode":3,"Output":"bad","Command":"check.sh","Seconds":2}`)
	if rec.Code != http.StatusOK || len(s.checked) != 1 || s.checked[0].ExitCode != 3 || s.checked[0].Passed || s.checked[0].Command != "check.sh" {
		t.Fatalf("ReportDrillCheck: %d %s %+v", rec.Code, rec.Body, s.checked)
	}
	if rec := do(t, h, "GET", "/2015-02-01/file-systems", ""); rec.Code != http.StatusTeapot {
		t.Fatalf("an EFS request was not passed on: %d", rec.Code)
	}
}

// Bad input gets the protocol's error (status, x-amzn-ErrorType, a message
// for the client) and reaches no drill.
func TestBadInput(t *testing.T) {
	s := &service{drills: map[string]drill.Drill{}}
	h := Wrap(nil, s, nil)
	for _, tc := range []struct {
		name, method, target, body string
		status                     int
		code, msg                  string
	}{
		{"not JSON", "POST", "/2015-02-01/regionfs/drills", `{`, 400, "BadRequest", "not valid JSON"},
		{"wrong type", "POST", "/2015-02-01/regionfs/drills", `{"Keep":"yes"}`, 400, "BadRequest", "member Keep has the wrong type"},
		{"negative hold", "POST", "/2015-02-01/regionfs/drills", `{"FileSystemId":"fs-0123456789abcdef0","HoldSeconds":-1}`, 400, "BadRequest", "HoldSeconds must be between"},
		{"huge objective", "POST", "/2015-02-01/regionfs/drills", `{"FileSystemId":"fs-0123456789abcdef0","MaxRTOSeconds":1e300}`, 400, "BadRequest", "MaxRTOSeconds"},
		{"too large", "POST", "/2015-02-01/regionfs/drills", `{"FileSystemId":"` + strings.Repeat("x", maxRequestBytes) + `"}`, 400, "BadRequest", "larger than"},
		{"bad drill id", "GET", "/2015-02-01/regionfs/drills/drill-xyz", "", 400, "BadRequest", "is not a drill id"},
		{"unknown drill", "GET", "/2015-02-01/regionfs/drills/drill-0000000000000000f", "", 404, "DrillNotFound", "does not exist"},
		{"bad file system", "GET", "/2015-02-01/regionfs/drills?FileSystemId=../x", "", 400, "BadRequest", "Value '../x' at 'fileSystemId' failed to satisfy constraint"},
		{"bad max", "GET", "/2015-02-01/regionfs/drills?MaxItems=0", "", 400, "BadRequest", "MaxItems"},
		{"check of an unknown drill", "POST", "/2015-02-01/regionfs/drills/drill-0000000000000000f/check", `{"Passed":true}`, 404, "DrillNotFound", ""},
		{"check seconds", "POST", "/2015-02-01/regionfs/drills/drill-0000000000000000f/check", `{"Seconds":-3}`, 400, "BadRequest", "Seconds"},
		{"no such operation", "DELETE", "/2015-02-01/regionfs/drills", "", 404, "UnknownOperation", "No EFS operation"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := do(t, h, tc.method, tc.target, tc.body)
			if rec.Code != tc.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, tc.status, rec.Body)
			}
			if tc.code != "" && !strings.HasPrefix(rec.Header().Get("X-Amzn-Errortype"), tc.code) {
				t.Errorf("x-amzn-ErrorType %q, want %s", rec.Header().Get("X-Amzn-Errortype"), tc.code)
			}
			if !strings.Contains(rec.Body.String(), tc.msg) {
				t.Errorf("body %s lacks %q", rec.Body, tc.msg)
			}
			for _, leak := range []string{"bad request:", "drill:", "json:"} {
				if strings.Contains(rec.Body.String(), leak) {
					t.Errorf("internal text %q reaches the client: %s", leak, rec.Body)
				}
			}
		})
	}
	if len(s.started) != 0 || len(s.checked) != 0 {
		t.Fatalf("bad requests reached the service: %+v %+v", s.started, s.checked)
	}
}

// FuzzRequests: no request body or path crashes the handlers or gets a
// server error.
func FuzzRequests(f *testing.F) {
	f.Add("POST", "/2015-02-01/regionfs/drills", `{"FileSystemId":"fs-0123456789abcdef0","HoldSeconds":1}`)
	f.Add("POST", "/2015-02-01/regionfs/drills/drill-00000000000000001/check", `{"Passed":true,"Output":"ok"}`)
	f.Add("GET", "/2015-02-01/regionfs/drills?MaxItems=3&FileSystemId=fs-0123456789abcdef0", "")
	f.Add("GET", "/2015-02-01/regionfs/drills/drill-00000000000000001", "")
	f.Fuzz(func(t *testing.T, method, target, body string) {
		if method != "GET" && method != "POST" {
			method = "POST"
		}
		if !strings.HasPrefix(target, "/") || strings.ContainsAny(target, " \r\n\t#") {
			return
		}
		req, err := http.NewRequest(method, "http://edge"+target, strings.NewReader(body))
		if err != nil {
			return
		}
		s := &service{drills: map[string]drill.Drill{"drill-00000000000000001": {DrillID: "drill-00000000000000001"}}}
		rec := httptest.NewRecorder()
		Wrap(nil, s, nil).ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%s %s %q: %d %s", method, target, body, rec.Code, rec.Body)
		}
	})
}
