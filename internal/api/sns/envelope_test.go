package sns

import (
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/regionfs/regionfs/internal/engine/kv"
	"github.com/regionfs/regionfs/internal/monitor/notify"
)

// TestEnvelope pins the answers to requests whose query envelope is wrong
// (method, form, Action, Version) as they are on the wire.
func TestEnvelope(t *testing.T) {
	ns, err := notify.Open(notify.Options{KV: kv.NewMemory(), Region: "us-east-1", AccountID: "123456789012", PublicURL: "http://127.0.0.1:1", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Close() })
	h := NewHandler(ns, nil)
	for _, tc := range []struct{ method, body, code, msg string }{
		{"PUT", "Action=ListTopics", "InvalidAction", "The HTTP method PUT is not supported; use POST."},
		{"POST", "Version=2010-03-31", "MissingAction", "The request must contain the parameter Action."},
		{"POST", "Action=ListTopics&Version=2009-01-01", "InvalidAction", "Could not find operation ListTopics for version 2009-01-01."},
		{"POST", "Action=Nope&Version=2010-03-31", "InvalidAction", "The action Nope is not valid for this web service."},
		{"POST", "Action=%zz", "MalformedQueryString", "The request body is not a valid form."},
	} {
		r := httptest.NewRequest(tc.method, "/", strings.NewReader(tc.body))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		want := `<ErrorResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/"><Error><Type>Sender</Type><Code>` + tc.code + `</Code><Message>` + tc.msg + `</Message></Error><RequestId>`
		if b := w.Body.String(); w.Code != 400 || !strings.HasPrefix(b, want) {
			t.Errorf("%s %q: %d %s; want 400 %s…", tc.method, tc.body, w.Code, b, want)
		}
	}
}
