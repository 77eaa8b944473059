package awsproto

import (
	"net/http/httptest"
	"strings"
	"testing"
)

func TestReadRESTJSON(t *testing.T) {
	for _, c := range []struct {
		name, body string
		wantA      int
		wantErr    string
	}{
		{"empty", "", 0, ""},
		{"unknown member ignored", `{"A":7,"B":true}`, 7, ""},
		{"not JSON", `{`, 0, "the request body is not valid JSON"},
		{"wrong type", `{"A":"x"}`, 0, "member A has the wrong type: expected int"},
		{"too large", `{"A":7}` + strings.Repeat(" ", 32), 0, "request body larger than 32 bytes"},
	} {
		var v struct{ A int }
		err := ReadRESTJSON(httptest.NewRequest("POST", "/", strings.NewReader(c.body)), 32, &v)
		if c.wantErr == "" && (err != nil || v.A != c.wantA) {
			t.Errorf("%s: got %+v, %v; want A=%d", c.name, v, err, c.wantA)
		}
		if c.wantErr != "" && (err == nil || err.Error() != c.wantErr) {
			t.Errorf("%s: error %v, want %q", c.name, err, c.wantErr)
		}
	}
}
