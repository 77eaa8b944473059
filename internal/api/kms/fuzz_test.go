package kms

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/regionfs/regionfs/internal/control/keys"
	"github.com/regionfs/regionfs/internal/engine/kms"
)

// FuzzRequests: any operation and body get a well-formed answer below
// 500, never a crash.
func FuzzRequests(f *testing.F) {
	for _, s := range [][2]string{
		{"CreateKey", `{"Description":"x","Tags":[{"TagKey":"a","TagValue":"b"}]}`},
		{"DescribeKey", `{"KeyId":"alias/aws/elasticfilesystem"}`},
		{"ScheduleKeyDeletion", `{"KeyId":"arn:aws:kms:us-east-1:123456789012:key/x","PendingWindowInDays":3}`},
		{"CreateAlias", `{"AliasName":"alias/a","TargetKeyId":1}`},
		{"ListKeys", `{"Limit":0,"Marker":"m9"}`},
		{"PutKeyPolicy", `{"KeyId":"k","Policy":"{"}`},
		{"Nope", `[`},
	} {
		f.Add(s[0], s[1])
	}
	def, _ := kms.Generate("cdeb22c5-ef31-629d-bed1-063e81a1f3c0", "alias/aws/elasticfilesystem")
	ring, _ := kms.New(def)
	if err := ring.Attach(filepath.Join(f.TempDir(), "keyring.json")); err != nil {
		f.Fatal(err)
	}
	k, err := keys.Open(keys.Options{Region: "us-east-1", AccountID: "123456789012", Keyring: ring, MaxKeys: 50})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { k.Close() })
	h := NewHandler(k, slog.New(slog.DiscardHandler))
	f.Fuzz(func(t *testing.T, op, body string) {
		r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
		r.Header.Set("X-Amz-Target", "TrentService."+op)
		r.Header.Set("Content-Type", "application/x-amz-json-1.1")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code >= 500 && !strings.Contains(w.Body.String(), "LimitExceeded") {
			t.Fatalf("%s %q → %d %s", op, body, w.Code, w.Body.String())
		}
	})
}
