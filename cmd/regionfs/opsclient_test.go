package main

import (
	"path/filepath"
	"strings"
	"testing"
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
