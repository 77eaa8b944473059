package efsrepl

import (
	"net/http/httptest"
	"net/url"
	"testing"
)

// Request decoding never panics and answers bad input with a 4xx.
func FuzzRequests(f *testing.F) {
	f.Add("POST", "fs-0123456789abcdef0", `{"Destinations":[{"Region":"us-west-2"}]}`, "")
	f.Add("GET", "fs-0123456789abcdef0", "", "MaxResults=0&NextToken=x")
	f.Add("DELETE", "arn:aws:elasticfilesystem:us-east-1:123456789012:file-system/fs-0123456789abcdef0", "", "deletionMode=NOPE")
	f.Add("POST", "fs-1", `{"Destinations":[{"Region":"us-west-2","KmsKeyId":"alias/x","FileSystemId":"fs-0123456789abcdef1","RoleArn":"arn:aws:iam::123456789012:role/r"}]}`, "")
	f.Fuzz(func(t *testing.T, method, id, body, query string) {
		h := Wrap(nil, &fakeManager{}, nil)
		var path string
		switch method {
		case "GET":
			path = "/2015-02-01/file-systems/replication-configurations"
			query += "&FileSystemId=" + url.QueryEscape(id)
		default:
			method = map[bool]string{true: "POST", false: "DELETE"}[method == "POST"]
			path = "/2015-02-01/file-systems/" + url.PathEscape(id) + "/replication-configuration"
		}
		u, err := url.Parse("http://x" + path)
		if err != nil {
			return
		}
		u.RawQuery = query
		req := httptest.NewRequest(method, "http://x/", stringsReader(body))
		req.URL = u
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%s %s?%s %q → %d %s", method, path, query, body, rec.Code, rec.Body)
		}
		if rec.Code >= 400 && rec.Header().Get("x-amzn-ErrorType") == "" {
			t.Fatalf("error without x-amzn-ErrorType: %d", rec.Code)
		}
	})
}
