package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/efs"
	efstypes "github.com/aws/aws-sdk-go-v2/service/efs/types"
)

// TestOpsClientWithoutEnvironment: the operator commands say what is
// missing and point at env.sh; a missing credential is reported without
// asking the EC2 metadata service (which made `status` wait 8 s).
func TestOpsClientWithoutEnvironment(t *testing.T) {
	home := t.TempDir()
	clean := func() {
		for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
			"AWS_DEFAULT_PROFILE", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_EFS",
			"AWS_EC2_METADATA_DISABLED", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
			"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"} {
			t.Setenv(k, "")
		}
		t.Setenv("AWS_CONFIG_FILE", filepath.Join(home, "config"))
		t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(home, "credentials"))
	}
	for _, tc := range []struct {
		name string
		env  map[string]string
		want string
	}{
		{"no region", map[string]string{"AWS_ACCESS_KEY_ID": "AKIAOPSTEST00000001", "AWS_SECRET_ACCESS_KEY": "x"}, "no region: set AWS_REGION or pass --region"},
		{"no endpoint", map[string]string{"AWS_REGION": "us-east-1"}, "no endpoint: set AWS_ENDPOINT_URL_EFS or pass --endpoint"},
		{"no credentials", map[string]string{"AWS_REGION": "us-east-1", "AWS_ENDPOINT_URL_EFS": "http://127.0.0.1:1"}, "no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clean()
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			for _, cmd := range [][]string{{"status"}, {"failover", "fs-0123456789abcdef0"}} {
				_, err := runRoot(t, cmd...)
				if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), ". regionfs-data/env.sh") {
					t.Fatalf("%v: %v, want %q and the env.sh hint", cmd, err, tc.want)
				}
				if strings.Contains(err.Error(), "IMDS") {
					t.Fatalf("%v asked the EC2 metadata service: %v", cmd, err)
				}
			}
		})
	}
}

// TestOpsClientCalls: a client newOpsClient makes answers a call (its
// HTTP client, wrapped to send copies of request bodies, is a working one:
// LoadDefaultConfig leaves none set, and wrapping nil panicked at the
// first call), and sends a POST's body whole.
func TestOpsClientCalls(t *testing.T) {
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got = append(got, r.Method+" "+r.URL.Path+" "+string(b))
		w.Header().Set("Content-Type", "application/json")
		switch r.Method {
		case http.MethodGet:
			io.WriteString(w, `{"FileSystems":[]}`)
		default:
			io.WriteString(w, `{"FileSystemId":"fs-0123456789abcdef0","PolicyStatus":"ENABLED"}`)
		}
	}))
	defer srv.Close()
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIAOPSTEST00000001")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "x")
	t.Setenv("AWS_CA_BUNDLE", "") // with one, LoadDefaultConfig sets an HTTP client
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "credentials"))
	c, err := newOpsClient(t.Context(), "us-east-1", srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.efs.DescribeFileSystems(t.Context(), &efs.DescribeFileSystemsInput{}); err != nil {
		t.Fatalf("DescribeFileSystems: %v", err)
	}
	in := &efs.PutBackupPolicyInput{FileSystemId: aws.String("fs-0123456789abcdef0"), BackupPolicy: &efstypes.BackupPolicy{Status: efstypes.StatusEnabled}}
	if _, err := c.inRegion("us-west-2").efs.PutBackupPolicy(t.Context(), in); err != nil {
		t.Fatalf("PutBackupPolicy: %v", err)
	}
	if len(got) != 2 || !strings.HasPrefix(got[1], "PUT ") || !strings.Contains(got[1], `"Status":"ENABLED"`) {
		t.Fatalf("requests: %q", got)
	}
}
