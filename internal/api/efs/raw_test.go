package efs_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	apiefs "github.com/regionfs/regionfs/internal/api/efs"
	"github.com/regionfs/regionfs/internal/api/sigv4"
	"github.com/regionfs/regionfs/internal/control"
)

// rawRequestIn serves one request on h with a verified identity for
// region in its context; hdr are header name/value pairs.
func rawRequestIn(t testing.TB, h http.Handler, region, method, target, body string, hdr ...string) *httptest.ResponseRecorder {
	t.Helper()
	path, rawQuery, _ := strings.Cut(target, "?")
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.URL.RawQuery = rawQuery // as sent, whatever it holds
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	req = req.WithContext(sigv4.NewContext(req.Context(), sigv4.Identity{AccessKeyID: accessKey, Region: region, Service: "elasticfilesystem"}))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w
}

// rawServer is a control plane with the EFS handler, without SigV4.
func rawServer(t testing.TB) (*server, http.Handler) {
	t.Helper()
	s := newServer(t)
	return s, apiefs.NewHandler(s.r, slog.New(slog.DiscardHandler))
}

func decodeJSON(t *testing.T, w *httptest.ResponseRecorder) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &m); err != nil {
		t.Fatalf("response %d %q is not JSON: %v", w.Code, w.Body.String(), err)
	}
	return m
}

// wantWireError checks the AWS error shape: status, x-amzn-ErrorType,
// {"ErrorCode","Message"}.
func wantWireError(t *testing.T, w *httptest.ResponseRecorder, status int, code string) map[string]any {
	t.Helper()
	if w.Code != status || w.Header().Get("X-Amzn-Errortype") != code {
		t.Fatalf("got %d %q %s, want %d %s", w.Code, w.Header().Get("X-Amzn-Errortype"), w.Body.String(), status, code)
	}
	m := decodeJSON(t, w)
	if m["ErrorCode"] != code || m["Message"] == "" || m["Message"] == nil {
		t.Fatalf("error body %v", m)
	}
	if w.Header().Get("X-Amzn-Requestid") == "" || w.Header().Get("Content-Type") != "application/json" {
		t.Errorf("headers %v", w.Header())
	}
	return m
}

func TestWireSuccessCodesAndShapes(t *testing.T) {
	s, h := rawServer(t)
	w := rawRequest(t, h, "POST", "/2015-02-01/file-systems", `{"CreationToken":"wire","Tags":[{"Key":"Name","Value":"w"}],"SomethingNew":{"x":[1,2]}}`)
	if w.Code != 201 {
		t.Fatalf("CreateFileSystem %d %s", w.Code, w.Body.String())
	}
	fs := decodeJSON(t, w)
	id := fs["FileSystemId"].(string)
	if _, ok := fs["CreationTime"].(float64); !ok {
		t.Errorf("CreationTime is not a JSON number: %T", fs["CreationTime"])
	}
	if size := fs["SizeInBytes"].(map[string]any); size["Timestamp"] == nil {
		t.Errorf("SizeInBytes %v", size)
	}
	for _, k := range []string{"OwnerId", "CreationToken", "FileSystemId", "FileSystemArn", "LifeCycleState", "NumberOfMountTargets", "PerformanceMode", "Tags", "FileSystemProtection", "Encrypted", "ThroughputMode"} {
		if _, ok := fs[k]; !ok {
			t.Errorf("FileSystemDescription lacks %s: %v", k, fs)
		}
	}
	s.waitFS(id, "available")
	arn := url.PathEscape("arn:aws:elasticfilesystem:us-east-1:123456789012:file-system/" + id)
	for _, tc := range []struct {
		method, path, body string
		status             int
		empty              bool
	}{
		{"GET", "/2015-02-01/file-systems", "", 200, false},
		{"GET", "/2015-02-01/file-systems?FileSystemId=" + arn, "", 200, false},
		{"PUT", "/2015-02-01/file-systems/" + id + "/protection", `{"ReplicationOverwriteProtection":"ENABLED"}`, 200, false},
		{"POST", "/2015-02-01/resource-tags/" + arn, `{"Tags":[{"Key":"k","Value":"v"}]}`, 200, true},
		{"GET", "/2015-02-01/resource-tags/" + arn, "", 200, false},
		{"DELETE", "/2015-02-01/resource-tags/" + arn + "?tagKeys=k&tagKeys=k%2F2", "", 200, true},
		{"POST", "/2015-02-01/create-tags/" + id, `{"Tags":[{"Key":"a","Value":"b"}]}`, 204, true},
		{"GET", "/2015-02-01/tags/" + id + "/", "", 200, false},
		{"GET", "/2015-02-01/tags/" + id, "", 200, false},
		{"POST", "/2015-02-01/delete-tags/" + id, `{"TagKeys":["a"]}`, 204, true},
		{"PUT", "/2015-02-01/file-systems/" + id + "/lifecycle-configuration", `{"LifecyclePolicies":[{"TransitionToIA":"AFTER_30_DAYS"}]}`, 200, false},
		{"GET", "/2015-02-01/file-systems/" + id + "/lifecycle-configuration", "", 200, false},
		{"PUT", "/2015-02-01/file-systems/" + id + "/backup-policy", `{"BackupPolicy":{"Status":"ENABLED"}}`, 200, false},
		{"GET", "/2015-02-01/file-systems/" + id + "/backup-policy", "", 200, false},
		{"PUT", "/2015-02-01/file-systems/" + id + "/policy", `{"Policy":"{\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"*\"}]}"}`, 200, false},
		{"GET", "/2015-02-01/file-systems/" + id + "/policy", "", 200, false},
		{"DELETE", "/2015-02-01/file-systems/" + id + "/policy", "", 200, true},
		{"GET", "/2015-02-01/account-preferences", `{"MaxResults":5}`, 200, false},
		{"PUT", "/2015-02-01/account-preferences", `{"ResourceIdType":"LONG_ID"}`, 200, false},
		{"GET", "/2015-02-01/access-points", "", 200, false},
		{"GET", "/2015-02-01/mount-targets?FileSystemId=" + id, "", 200, false},
	} {
		w := rawRequest(t, h, tc.method, tc.path, tc.body, "Content-Type", "application/json")
		if w.Code != tc.status || (w.Body.Len() == 0) != tc.empty {
			t.Errorf("%s %s: %d %q, want %d (empty %v)", tc.method, tc.path, w.Code, w.Body.String(), tc.status, tc.empty)
		}
	}
	w = rawRequest(t, h, "PUT", "/2015-02-01/file-systems/"+id, `{"ThroughputMode":"elastic"}`)
	if d := decodeJSON(t, w); w.Code != 202 || d["LifeCycleState"] != "updating" || d["ThroughputMode"] != "elastic" {
		t.Errorf("UpdateFileSystem: %d %v", w.Code, d)
	}
	s.waitFS(id, "available")
	w = rawRequest(t, h, "DELETE", "/2015-02-01/file-systems/"+arn, "")
	if w.Code != 204 || w.Body.Len() != 0 {
		t.Errorf("DeleteFileSystem by ARN: %d %q", w.Code, w.Body.String())
	}
}

func TestWireErrors(t *testing.T) {
	s, h := rawServer(t)
	id := *s.createFS("err").FileSystemId
	big := strings.Repeat("x", apiefs.MaxBodyBytes+1)
	for _, tc := range []struct {
		name, method, path, body string
		status                   int
		code                     string
	}{
		{"unknown path", "GET", "/2015-02-01/volumes", "", 404, "UnknownOperationException"},
		{"other version", "GET", "/2019-01-01/file-systems", "", 404, "UnknownOperationException"},
		{"wrong method", "PATCH", "/2015-02-01/file-systems", "", 405, "UnknownOperationException"},
		{"replication is elsewhere", "GET", "/2015-02-01/file-systems/replication-configurations", "", 404, "UnknownOperationException"},
		{"malformed JSON", "POST", "/2015-02-01/file-systems", `{"CreationToken":`, 400, "BadRequest"},
		{"array body", "POST", "/2015-02-01/file-systems", `["CreationToken"]`, 400, "BadRequest"},
		{"two objects", "POST", "/2015-02-01/file-systems", `{"CreationToken":"a"}{}`, 400, "BadRequest"},
		{"not UTF-8", "POST", "/2015-02-01/file-systems", "{\"CreationToken\":\"\xff\"}", 400, "BadRequest"},
		{"wrong type", "POST", "/2015-02-01/file-systems", `{"CreationToken":17}`, 400, "BadRequest"},
		{"wrong bool", "POST", "/2015-02-01/file-systems", `{"CreationToken":"b","Encrypted":"yes"}`, 400, "BadRequest"},
		{"wrong number", "POST", "/2015-02-01/file-systems", `{"CreationToken":"b","ThroughputMode":"provisioned","ProvisionedThroughputInMibps":"10"}`, 400, "BadRequest"},
		{"huge number", "POST", "/2015-02-01/file-systems", `{"CreationToken":"b","ThroughputMode":"provisioned","ProvisionedThroughputInMibps":1e999}`, 400, "BadRequest"},
		{"missing token", "POST", "/2015-02-01/file-systems", `{}`, 400, "BadRequest"},
		{"empty body", "POST", "/2015-02-01/file-systems", ``, 400, "BadRequest"},
		{"case matters", "POST", "/2015-02-01/file-systems", `{"creationtoken":"c"}`, 400, "BadRequest"},
		{"tags not a list", "POST", "/2015-02-01/file-systems", `{"CreationToken":"b","Tags":{"Key":"a"}}`, 400, "BadRequest"},
		{"tag without value", "POST", "/2015-02-01/file-systems", `{"CreationToken":"b","Tags":[{"Key":"a"}]}`, 400, "BadRequest"},
		{"oversized body", "POST", "/2015-02-01/file-systems", big, 413, "RequestEntityTooLargeException"},
		{"bad id label", "DELETE", "/2015-02-01/file-systems/fs-XYZ", "", 400, "BadRequest"},
		{"bad mount target id", "DELETE", "/2015-02-01/mount-targets/fsmt-1", "", 400, "BadRequest"},
		{"bad MaxItems", "GET", "/2015-02-01/file-systems?MaxItems=ten", "", 400, "BadRequest"},
		{"zero MaxItems", "GET", "/2015-02-01/file-systems?MaxItems=0", "", 400, "BadRequest"},
		{"long Marker", "GET", "/2015-02-01/file-systems?Marker=" + strings.Repeat("m", 129), "", 400, "BadRequest"},
		{"bad query", "GET", "/2015-02-01/file-systems?Marker=%zz", "", 400, "BadRequest"},
		{"no tag keys", "DELETE", "/2015-02-01/resource-tags/" + id, "", 400, "BadRequest"},
		{"uid out of range", "POST", "/2015-02-01/access-points", `{"ClientToken":"x","FileSystemId":"` + id + `","PosixUser":{"Uid":1.5,"Gid":0}}`, 400, "BadRequest"},
		{"gids not a list", "POST", "/2015-02-01/access-points", `{"ClientToken":"x","FileSystemId":"` + id + `","PosixUser":{"Uid":1,"Gid":0,"SecondaryGids":7}}`, 400, "BadRequest"},
		{"creation info incomplete", "POST", "/2015-02-01/access-points", `{"ClientToken":"x","FileSystemId":"` + id + `","RootDirectory":{"Path":"/a","CreationInfo":{"OwnerUid":1}}}`, 400, "BadRequest"},
		{"backup policy missing", "PUT", "/2015-02-01/file-systems/" + id + "/backup-policy", `{}`, 400, "BadRequest"},
		{"lifecycle not objects", "PUT", "/2015-02-01/file-systems/" + id + "/lifecycle-configuration", `{"LifecyclePolicies":["AFTER_7_DAYS"]}`, 400, "BadRequest"},
		{"policy not a string", "PUT", "/2015-02-01/file-systems/" + id + "/policy", `{"Policy":{"Statement":[]}}`, 400, "BadRequest"},
		{"groups not strings", "PUT", "/2015-02-01/mount-targets/fsmt-0123456789abcdef0/security-groups", `{"SecurityGroups":[1]}`, 400, "BadRequest"},
		{"not found", "DELETE", "/2015-02-01/file-systems/fs-0123456789abcdef0", "", 404, "FileSystemNotFound"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before, _, _ := s.r.DescribeFileSystems(ctx, control.FileSystemQuery{})
			w := rawRequest(t, h, tc.method, tc.path, tc.body, "Content-Type", "application/json")
			wantWireError(t, w, tc.status, tc.code)
			after, _, _ := s.r.DescribeFileSystems(ctx, control.FileSystemQuery{})
			if len(before) != len(after) {
				t.Errorf("a refused request changed the file systems: %d → %d", len(before), len(after))
			}
		})
	}
	// FileSystemAlreadyExists carries FileSystemId.
	w := rawRequest(t, h, "POST", "/2015-02-01/file-systems", `{"CreationToken":"err"}`)
	if m := wantWireError(t, w, 409, "FileSystemAlreadyExists"); m["FileSystemId"] != id {
		t.Errorf("FileSystemAlreadyExists body %v", m)
	}
	// Without a verified identity, nothing is served.
	req := httptest.NewRequest("GET", "/2015-02-01/file-systems", nil)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	wantWireError(t, rec, 403, "MissingAuthenticationTokenException")
	wantWireError(t, rawRequestIn(t, h, "us-west-2", "GET", "/2015-02-01/file-systems", ""), 403, "InvalidSignatureException")
}

func TestWireInternalError(t *testing.T) {
	s, h := rawServer(t)
	s.kv.SetCommitError(func(bool) error { return errors.New("disk on fire") })
	w := rawRequest(t, h, "POST", "/2015-02-01/file-systems", `{"CreationToken":"x"}`)
	m := wantWireError(t, w, 500, "InternalServerError")
	if strings.Contains(fmt.Sprint(m["Message"]), "fire") {
		t.Errorf("internal cause leaked: %v", m)
	}
	s.kv.SetCommitError(nil)
	if fss, _, _ := s.r.DescribeFileSystems(ctx, control.FileSystemQuery{}); len(fss) != 0 {
		t.Errorf("a failed commit left %d file systems", len(fss))
	}
}
