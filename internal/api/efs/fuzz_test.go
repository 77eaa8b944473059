package efs_test

import (
	"encoding/json"
	"strings"
	"testing"
)

// FuzzRequests sends arbitrary bodies and query strings to every EFS
// operation: the handler never panics, never fails internally, and always
// answers either success or the AWS error shape.
func FuzzRequests(f *testing.F) {
	s, h := rawServer(f)
	fs := s.createFS("fuzz")
	id := *fs.FileSystemId
	ops := []struct{ method, path string }{
		{"POST", "/2015-02-01/file-systems"},
		{"GET", "/2015-02-01/file-systems"},
		{"PUT", "/2015-02-01/file-systems/{id}"},
		{"DELETE", "/2015-02-01/file-systems/fs-0123456789abcdef0"},
		{"PUT", "/2015-02-01/file-systems/{id}/protection"},
		{"PUT", "/2015-02-01/file-systems/{id}/lifecycle-configuration"},
		{"GET", "/2015-02-01/file-systems/{id}/lifecycle-configuration"},
		{"PUT", "/2015-02-01/file-systems/{id}/backup-policy"},
		{"GET", "/2015-02-01/file-systems/{id}/backup-policy"},
		{"PUT", "/2015-02-01/file-systems/{id}/policy"},
		{"GET", "/2015-02-01/file-systems/{id}/policy"},
		{"DELETE", "/2015-02-01/file-systems/{id}/policy"},
		{"POST", "/2015-02-01/mount-targets"},
		{"GET", "/2015-02-01/mount-targets"},
		{"DELETE", "/2015-02-01/mount-targets/fsmt-0123456789abcdef0"},
		{"GET", "/2015-02-01/mount-targets/fsmt-0123456789abcdef0/security-groups"},
		{"PUT", "/2015-02-01/mount-targets/fsmt-0123456789abcdef0/security-groups"},
		{"POST", "/2015-02-01/access-points"},
		{"GET", "/2015-02-01/access-points"},
		{"DELETE", "/2015-02-01/access-points/fsap-0123456789abcdef0"},
		{"POST", "/2015-02-01/resource-tags/{id}"},
		{"DELETE", "/2015-02-01/resource-tags/{id}"},
		{"GET", "/2015-02-01/resource-tags/{id}"},
		{"POST", "/2015-02-01/create-tags/{id}"},
		{"POST", "/2015-02-01/delete-tags/{id}"},
		{"GET", "/2015-02-01/tags/{id}/"},
		{"GET", "/2015-02-01/account-preferences"},
		{"PUT", "/2015-02-01/account-preferences"},
	}
	seeds := []struct {
		op          int
		query, body string
	}{
		{0, "", `{"CreationToken":"seed","PerformanceMode":"maxIO","Encrypted":true,"ThroughputMode":"provisioned","ProvisionedThroughputInMibps":12.5,"Tags":[{"Key":"k","Value":"v"}]}`},
		{0, "", `{"CreationToken":"seed2","AvailabilityZoneName":"us-east-1a","Backup":false,"KmsKeyId":"alias/aws/elasticfilesystem"}`},
		{1, "MaxItems=2&Marker=abc&CreationToken=x", ""},
		{2, "", `{"ThroughputMode":"provisioned","ProvisionedThroughputInMibps":1e300}`},
		{4, "", `{"ReplicationOverwriteProtection":"DISABLED"}`},
		{5, "", `{"LifecyclePolicies":[{"TransitionToIA":"AFTER_30_DAYS"},{"TransitionToPrimaryStorageClass":"AFTER_1_ACCESS"}]}`},
		{7, "", `{"BackupPolicy":{"Status":"ENABLED"}}`},
		{9, "", `{"Policy":"{\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"*\"}]}","BypassPolicyLockoutSafetyCheck":true}`},
		{12, "", `{"FileSystemId":"{id}","SubnetId":"subnet-0a1b2c3d4e5f60002","IpAddress":"127.1.2.9","SecurityGroups":["sg-0a1b2c3d4e5f60001"]}`},
		{13, "FileSystemId={id}&MaxItems=1", ""},
		{16, "", `{"SecurityGroups":["sg-0a1b2c3d4e5f60002"]}`},
		{17, "", `{"ClientToken":"c","FileSystemId":"{id}","PosixUser":{"Uid":1,"Gid":2,"SecondaryGids":[3]},"RootDirectory":{"Path":"/a/b","CreationInfo":{"OwnerUid":1,"OwnerGid":2,"Permissions":"0755"}}}`},
		{18, "MaxResults=1&NextToken=x&FileSystemId={id}", ""},
		{20, "", `{"Tags":[{"Key":"a","Value":"b"}]}`},
		{21, "tagKeys=a&tagKeys=b", ""},
		{22, "MaxResults=1", ""},
		{23, "", `{"Tags":[{"Key":"Name","Value":"n"}]}`},
		{24, "", `{"TagKeys":["Name"]}`},
		{25, "MaxItems=1", ""},
		{26, "", `{"MaxResults":1,"NextToken":"t"}`},
		{27, "", `{"ResourceIdType":"SHORT_ID"}`},
		{0, "", `{"CreationToken":null,"Tags":[null,{}]}`},
		{17, "", `{"ClientToken":"d","FileSystemId":"{id}","PosixUser":{"Uid":-1e20,"Gid":"x"}}`},
	}
	for _, sd := range seeds {
		f.Add(uint8(sd.op), sd.query, []byte(sd.body))
	}
	f.Fuzz(func(t *testing.T, op uint8, query string, body []byte) {
		o := ops[int(op)%len(ops)]
		target := strings.ReplaceAll(o.path, "{id}", id)
		q := strings.ReplaceAll(query, "{id}", id)
		if q != "" {
			target += "?" + q
		}
		w := rawRequest(t, h, o.method, target, strings.ReplaceAll(string(body), "{id}", id))
		if w.Code >= 500 {
			t.Fatalf("%s %s %q: %d %s", o.method, target, body, w.Code, w.Body.String())
		}
		if w.Code >= 300 {
			var e struct{ ErrorCode, Message string }
			if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.ErrorCode == "" || e.Message == "" || w.Header().Get("X-Amzn-Errortype") != e.ErrorCode {
				t.Fatalf("%s %s: %d, not an AWS error: %q", o.method, target, w.Code, w.Body.String())
			}
		} else if w.Body.Len() > 0 && !json.Valid(w.Body.Bytes()) {
			t.Fatalf("%s %s: invalid JSON response %q", o.method, target, w.Body.String())
		}
	})
}
