package testkit

import (
	"net/http"
	"net/http/httptest"
	"strings"
)

// PostForm serves a form POST of body to / on h and returns the recorded
// answer.
func PostForm(h http.Handler, body string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}
