package control_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/regionfs/regionfs/internal/control"
	"github.com/regionfs/regionfs/internal/testkit"
)

func TestLifecycleConfiguration(t *testing.T) {
	v := newEnv(t)
	fs := v.availableFS("lc")
	elastic := v.availableFS("el", func(in *control.CreateFileSystemInput) { in.ThroughputMode = control.ThroughputElastic })
	got, err := v.r.DescribeLifecycleConfiguration(ctx, fs.ID)
	if err != nil || len(got) != 0 {
		t.Fatal(got, err)
	}
	ia := control.LifecyclePolicy{TransitionToIA: "AFTER_30_DAYS"}
	back := control.LifecyclePolicy{TransitionToPrimaryStorageClass: "AFTER_1_ACCESS"}
	arch := control.LifecyclePolicy{TransitionToArchive: "AFTER_90_DAYS"}
	tests := []struct {
		name string
		fs   string
		in   []control.LifecyclePolicy
		err  error
	}{
		{"ia and back", fs.ID, []control.LifecyclePolicy{ia, back}, nil},
		{"all three", elastic.ID, []control.LifecyclePolicy{ia, back, arch}, nil},
		{"archive needs elastic", fs.ID, []control.LifecyclePolicy{arch}, control.ErrBadRequest},
		{"archive before ia", elastic.ID, []control.LifecyclePolicy{{TransitionToIA: "AFTER_90_DAYS"}, {TransitionToArchive: "AFTER_60_DAYS"}}, control.ErrBadRequest},
		{"archive equal to ia", elastic.ID, []control.LifecyclePolicy{{TransitionToIA: "AFTER_90_DAYS"}, {TransitionToArchive: "AFTER_90_DAYS"}}, control.ErrBadRequest},
		{"two in one", fs.ID, []control.LifecyclePolicy{{TransitionToIA: "AFTER_7_DAYS", TransitionToPrimaryStorageClass: "AFTER_1_ACCESS"}}, control.ErrBadRequest},
		{"empty policy", fs.ID, []control.LifecyclePolicy{{}}, control.ErrBadRequest},
		{"ia twice", fs.ID, []control.LifecyclePolicy{ia, ia}, control.ErrBadRequest},
		{"back twice", fs.ID, []control.LifecyclePolicy{back, back}, control.ErrBadRequest},
		{"four", elastic.ID, []control.LifecyclePolicy{ia, back, arch, ia}, control.ErrBadRequest},
		{"bad ia", fs.ID, []control.LifecyclePolicy{{TransitionToIA: "AFTER_2_DAYS"}}, control.ErrBadRequest},
		{"bad back", fs.ID, []control.LifecyclePolicy{{TransitionToPrimaryStorageClass: "AFTER_2_ACCESSES"}}, control.ErrBadRequest},
		{"bad archive", elastic.ID, []control.LifecyclePolicy{{TransitionToArchive: "NEVER"}}, control.ErrBadRequest},
		{"unknown fs", "fs-0123456789abcdef0", nil, control.ErrFileSystemNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before, _ := v.r.DescribeLifecycleConfiguration(ctx, tc.fs)
			got, err := v.r.PutLifecycleConfiguration(ctx, tc.fs, tc.in)
			wantErr(t, err, tc.err)
			after, _ := v.r.DescribeLifecycleConfiguration(ctx, tc.fs)
			if tc.err != nil {
				if !slices.Equal(before, after) {
					t.Errorf("a refused put changed the configuration: %v → %v", before, after)
				}
				return
			}
			if !slices.Equal(got, tc.in) || !slices.Equal(after, tc.in) {
				t.Errorf("put %v, got %v, stored %v", tc.in, got, after)
			}
		})
	}
	v.reopen()
	got, _ = v.r.DescribeLifecycleConfiguration(ctx, elastic.ID)
	if !slices.Equal(got, []control.LifecyclePolicy{ia, back, arch}) {
		t.Errorf("after restart: %v", got)
	}
	if _, err := v.r.PutLifecycleConfiguration(ctx, fs.ID, nil); err != nil {
		t.Fatal(err)
	}
	if got, _ := v.r.DescribeLifecycleConfiguration(ctx, fs.ID); len(got) != 0 {
		t.Errorf("empty put kept %v", got)
	}
	c := newEnvFS(t, v)
	_, err = v.r.PutLifecycleConfiguration(ctx, c, nil)
	wantErr(t, err, control.ErrIncorrectLifeCycleState)
	_, err = v.r.DescribeLifecycleConfiguration(ctx, "fs-0123456789abcdef0")
	wantErr(t, err, control.ErrFileSystemNotFound)
}

func TestBackupPolicy(t *testing.T) {
	v := newEnv(t, func(o *control.Options) { o.TransitionDelay = time.Minute })
	fs := v.createFS("bk")
	_, err := v.r.PutBackupPolicy(ctx, fs.ID, control.BackupEnabled)
	wantErr(t, err, control.ErrIncorrectLifeCycleState)
	v.clock.Advance(time.Minute)
	v.r.PokeForTest()
	v.waitFS(fs.ID, control.StateAvailable)
	_, err = v.r.DescribeBackupPolicy(ctx, fs.ID)
	wantErr(t, err, control.ErrPolicyNotFound)
	for _, s := range []string{control.BackupEnabling, control.BackupDisabling, "enabled", ""} {
		_, err = v.r.PutBackupPolicy(ctx, fs.ID, s)
		wantErr(t, err, control.ErrBadRequest)
	}
	got, err := v.r.PutBackupPolicy(ctx, fs.ID, control.BackupEnabled)
	if err != nil || got != control.BackupEnabling {
		t.Fatal(got, err)
	}
	if s, _ := v.r.DescribeBackupPolicy(ctx, fs.ID); s != control.BackupEnabling {
		t.Fatal(s)
	}
	v.reopen()
	v.clock.Advance(time.Minute)
	v.r.PokeForTest()
	if !testkit.Until(10*time.Second, func() bool { s, _ := v.r.DescribeBackupPolicy(ctx, fs.ID); return s == control.BackupEnabled }) {
		t.Fatal("backups never enabled")
	}
	if got, _ := v.r.PutBackupPolicy(ctx, fs.ID, control.BackupEnabled); got != control.BackupEnabled {
		t.Errorf("enabling again: %s", got)
	}
	if got, _ := v.r.PutBackupPolicy(ctx, fs.ID, control.BackupDisabled); got != control.BackupDisabling {
		t.Errorf("disabling: %s", got)
	}
	v.clock.Advance(time.Minute)
	v.r.PokeForTest()
	if !testkit.Until(10*time.Second, func() bool { s, _ := v.r.DescribeBackupPolicy(ctx, fs.ID); return s == control.BackupDisabled }) {
		t.Fatal("backups never disabled")
	}
	// Backup at creation; One Zone defaults to it.
	for _, in := range []control.CreateFileSystemInput{{CreationToken: "b1", Backup: ptr(true)}, {CreationToken: "b2", AvailabilityZoneName: "us-east-1a"}} {
		f, err := v.r.CreateFileSystem(ctx, in)
		wantErr(t, err, nil)
		if s, err := v.r.DescribeBackupPolicy(ctx, f.ID); s != control.BackupEnabled || err != nil {
			t.Errorf("%s: %q %v", in.CreationToken, s, err)
		}
	}
	f, _ := v.r.CreateFileSystem(ctx, control.CreateFileSystemInput{CreationToken: "b3", AvailabilityZoneName: "us-east-1a", Backup: ptr(false)})
	_, err = v.r.DescribeBackupPolicy(ctx, f.ID)
	wantErr(t, err, control.ErrPolicyNotFound)
	_, err = v.r.DescribeBackupPolicy(ctx, "fs-0123456789abcdef0")
	wantErr(t, err, control.ErrFileSystemNotFound)
	_, err = v.r.PutBackupPolicy(ctx, "fs-0123456789abcdef0", control.BackupEnabled)
	wantErr(t, err, control.ErrFileSystemNotFound)
}

func TestFileSystemPolicy(t *testing.T) {
	v := newEnv(t)
	fs := v.availableFS("pol")
	_, err := v.r.DescribeFileSystemPolicy(ctx, fs.ID)
	wantErr(t, err, control.ErrPolicyNotFound)
	wantErr(t, v.r.DeleteFileSystemPolicy(ctx, fs.ID), nil)
	good := `{"Version":"2012-10-17","Id":"x","Statement":[{"Sid":"s","Effect":"Allow","Principal":{"AWS":"*"},"Action":["elasticfilesystem:ClientMount"],"Resource":"*","Condition":{"Bool":{"aws:SecureTransport":"true"}}}]}`
	single := "{\n  \"Statement\": {\"Effect\": \"Deny\", \"NotAction\": \"elasticfilesystem:ClientWrite\", \"Principal\": \"*\"}\n}"
	for _, tc := range []struct {
		name, policy string
		err          error
	}{
		{"good", good, nil},
		{"single statement", single, nil},
		{"empty", "", control.ErrBadRequest},
		{"too long", `{"Statement":[{"Effect":"Allow","Action":"x","Sid":"` + strings.Repeat("a", 20000) + `"}]}`, control.ErrBadRequest},
		{"not json", "{", control.ErrInvalidPolicy},
		{"array", `[{"Effect":"Allow"}]`, control.ErrInvalidPolicy},
		{"trailing", good + "x", control.ErrInvalidPolicy},
		{"no statement", `{"Version":"2012-10-17"}`, control.ErrInvalidPolicy},
		{"empty statement", `{"Statement":[]}`, control.ErrInvalidPolicy},
		{"bad version", `{"Version":"2020-01-01","Statement":[{"Effect":"Allow","Action":"*"}]}`, control.ErrInvalidPolicy},
		{"bad effect", `{"Statement":[{"Effect":"Maybe","Action":"*"}]}`, control.ErrInvalidPolicy},
		{"no action", `{"Statement":[{"Effect":"Allow"}]}`, control.ErrInvalidPolicy},
		{"both actions", `{"Statement":[{"Effect":"Allow","Action":"*","NotAction":"x"}]}`, control.ErrInvalidPolicy},
		{"statement not object", `{"Statement":["x"]}`, control.ErrInvalidPolicy},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := v.r.PutFileSystemPolicy(ctx, fs.ARN, tc.policy, false)
			wantErr(t, err, tc.err)
			// The message is public: no Go type names (qa10).
			if err != nil && (strings.Contains(err.Error(), "Go value") || strings.Contains(err.Error(), "map[")) {
				t.Errorf("message %q", err)
			}
			if tc.err == nil && (got.Policy != tc.policy || got.FileSystemID != fs.ID) {
				t.Errorf("echo %q", got)
			}
			if tc.err != nil {
				if p, _ := v.r.DescribeFileSystemPolicy(ctx, fs.ID); p.Policy == tc.policy {
					t.Error("a refused policy is stored")
				}
			}
		})
	}
	v.reopen()
	if p, err := v.r.DescribeFileSystemPolicy(ctx, fs.ID); p.Policy != single || p.FileSystemID != fs.ID || err != nil {
		t.Errorf("after restart %q %v", p, err)
	}
	wantErr(t, v.r.DeleteFileSystemPolicy(ctx, fs.ID), nil)
	_, err = v.r.DescribeFileSystemPolicy(ctx, fs.ID)
	wantErr(t, err, control.ErrPolicyNotFound)
	c := newEnvFS(t, v)
	_, err = v.r.PutFileSystemPolicy(ctx, c, good, true)
	wantErr(t, err, control.ErrIncorrectLifeCycleState)
	wantErr(t, v.r.DeleteFileSystemPolicy(ctx, c), control.ErrIncorrectLifeCycleState)
	_, err = v.r.PutFileSystemPolicy(ctx, "fs-0123456789abcdef0", good, false)
	wantErr(t, err, control.ErrFileSystemNotFound)
	_, err = v.r.DescribeFileSystemPolicy(ctx, "fs-0123456789abcdef0")
	wantErr(t, err, control.ErrFileSystemNotFound)
	wantErr(t, v.r.DeleteFileSystemPolicy(ctx, "fs-0123456789abcdef0"), control.ErrFileSystemNotFound)
}

func TestPolicyRequiresTLS(t *testing.T) {
	const deny = `{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Principal":{"AWS":"*"},"Action":%s,"Resource":"*","Condition":{"Bool":{"aws:SecureTransport":%s}}}]}`
	tests := []struct {
		name, policy string
		want         bool
	}{
		{"none", "", false},
		{"deny all without TLS", fmt.Sprintf(deny, `"*"`, `"false"`), true},
		{"as a JSON boolean", fmt.Sprintf(deny, `"*"`, `false`), true},
		{"in a list", fmt.Sprintf(deny, `["elasticfilesystem:ClientWrite","elasticfilesystem:ClientMount"]`, `["false"]`), true},
		{"case of the key", strings.Replace(fmt.Sprintf(deny, `"*"`, `"false"`), "aws:SecureTransport", "AWS:securetransport", 1), true},
		{"single statement object", `{"Statement":{"Effect":"Deny","Action":"elasticfilesystem:*","Condition":{"Bool":{"aws:SecureTransport":"false"}}}}`, true},
		{"deny with TLS (nonsense, not a TLS rule)", fmt.Sprintf(deny, `"*"`, `"true"`), false},
		{"allow without TLS", strings.Replace(fmt.Sprintf(deny, `"*"`, `"false"`), "Deny", "Allow", 1), false},
		{"other action", fmt.Sprintf(deny, `"elasticfilesystem:DescribeMountTargets"`, `"false"`), false},
		{"no condition", `{"Statement":[{"Effect":"Deny","Action":"*"}]}`, false},
		{"malformed", `{"Statement":`, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := control.PolicyRequiresTLS(tc.policy); got != tc.want {
				t.Errorf("PolicyRequiresTLS = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestFileSystemPolicyUpdatesMountTargets: putting a policy that requires
// TLS tells the mount targets at once; deleting it lifts the rule.
func TestFileSystemPolicyUpdatesMountTargets(t *testing.T) {
	v := newEnv(t)
	fs := v.availableFS("tls")
	mt, err := v.r.CreateMountTarget(ctx, control.CreateMountTargetInput{FileSystemID: fs.ID, SubnetID: subA})
	wantErr(t, err, nil)
	v.waitMT(mt.ID, control.StateAvailable)
	pol := `{"Statement":[{"Effect":"Deny","Principal":{"AWS":"*"},"Action":"*","Condition":{"Bool":{"aws:SecureTransport":"false"}}}]}`
	if _, err := v.r.PutFileSystemPolicy(ctx, fs.ID, pol, false); err != nil {
		t.Fatal(err)
	}
	if s, _ := v.mts.Spec(mt.ID); !s.RequireTLS {
		t.Fatal("mount target does not require TLS after the policy was put")
	}
	if err := v.r.DeleteFileSystemPolicy(ctx, fs.ID); err != nil {
		t.Fatal(err)
	}
	if s, _ := v.mts.Spec(mt.ID); s.RequireTLS {
		t.Fatal("mount target still requires TLS after the policy was deleted")
	}
}
