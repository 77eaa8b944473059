package cloudwatch

import (
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/regionfs/regionfs/internal/engine/kv"
	"github.com/regionfs/regionfs/internal/monitor"
)

// TestQueryEnvelope pins the answers to query-protocol requests whose
// envelope is wrong (method, form, Action, Version) as they are on the
// wire.
func TestQueryEnvelope(t *testing.T) {
	m, err := monitor.Open(monitor.Options{KV: kv.NewMemory(), Region: "us-east-1", AccountID: account, Tick: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	h := NewHandler(m, nil)
	for _, tc := range []struct{ method, body, code, msg string }{
		{"PUT", "Action=ListMetrics", "InvalidAction", "The HTTP method PUT is not supported; use POST."},
		{"POST", "Version=2010-08-01", "MissingAction", "The request must contain the parameter Action."},
		{"POST", "Action=ListMetrics&Version=2009-01-01", "InvalidAction", "Could not find operation ListMetrics for version 2009-01-01."},
		{"POST", "Action=Nope&Version=2010-08-01", "InvalidAction", "The action Nope is not valid for this web service."},
	} {
		r := httptest.NewRequest(tc.method, "/", strings.NewReader(tc.body))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		want := `<ErrorResponse xmlns="http://monitoring.amazonaws.com/doc/2010-08-01/"><Error><Type>Sender</Type><Code>` + tc.code + `</Code><Message>` + tc.msg + `</Message></Error><RequestId>`
		if b := w.Body.String(); w.Code != 400 || !strings.HasPrefix(b, want) {
			t.Errorf("%s %q: %d %s; want 400 %s…", tc.method, tc.body, w.Code, b, want)
		}
	}
}
