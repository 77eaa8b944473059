package control

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestLifecycleConfiguration(t *testing.T) {
	v := newEnv(t)
	fs := v.availableFS("lc")
	elastic := v.availableFS("el", func(in *CreateFileSystemInput) { in.ThroughputMode = ThroughputElastic })
	got, err := v.r.DescribeLifecycleConfiguration(ctx, fs.ID)
	if err != nil || len(got) != 0 {
		t.Fatal(got, err)
	}
	ia := LifecyclePolicy{TransitionToIA: "AFTER_30_DAYS"}
	back := LifecyclePolicy{TransitionToPrimaryStorageClass: "AFTER_1_ACCESS"}
	arch := LifecyclePolicy{TransitionToArchive: "AFTER_90_DAYS"}
	tests := []struct {
		name string
		fs   string
		in   []LifecyclePolicy
		err  error
	}{
		{"ia and back", fs.ID, []LifecyclePolicy{ia, back}, nil},
		{"all three", elastic.ID, []LifecyclePolicy{ia, back, arch}, nil},
		{"archive needs elastic", fs.ID, []LifecyclePolicy{arch}, ErrBadRequest},
		{"archive before ia", elastic.ID, []LifecyclePolicy{{TransitionToIA: "AFTER_90_DAYS"}, {TransitionToArchive: "AFTER_60_DAYS"}}, ErrBadRequest},
		{"archive equal to ia", elastic.ID, []LifecyclePolicy{{TransitionToIA: "AFTER_90_DAYS"}, {TransitionToArchive: "AFTER_90_DAYS"}}, ErrBadRequest},
		{"two in one", fs.ID, []LifecyclePolicy{{TransitionToIA: "AFTER_7_DAYS", TransitionToPrimaryStorageClass: "AFTER_1_ACCESS"}}, ErrBadRequest},
		{"empty policy", fs.ID, []LifecyclePolicy{{}}, ErrBadRequest},
		{"ia twice", fs.ID, []LifecyclePolicy{ia, ia}, ErrBadRequest},
		{"back twice", fs.ID, []LifecyclePolicy{back, back}, ErrBadRequest},
		{"four", elastic.ID, []LifecyclePolicy{ia, back, arch, ia}, ErrBadRequest},
		{"bad ia", fs.ID, []LifecyclePolicy{{TransitionToIA: "AFTER_2_DAYS"}}, ErrBadRequest},
		{"bad back", fs.ID, []LifecyclePolicy{{TransitionToPrimaryStorageClass: "AFTER_2_ACCESSES"}}, ErrBadRequest},
		{"bad archive", elastic.ID, []LifecyclePolicy{{TransitionToArchive: "NEVER"}}, ErrBadRequest},
		{"unknown fs", "fs-0123456789abcdef0", nil, ErrFileSystemNotFound},
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
	if !slices.Equal(got, []LifecyclePolicy{ia, back, arch}) {
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
	wantErr(t, err, ErrIncorrectLifeCycleState)
	_, err = v.r.DescribeLifecycleConfiguration(ctx, "fs-0123456789abcdef0")
	wantErr(t, err, ErrFileSystemNotFound)
}

func TestBackupPolicy(t *testing.T) {
	v := newEnv(t, func(o *Options) { o.TransitionDelay = time.Minute })
	fs := v.createFS("bk")
	_, err := v.r.PutBackupPolicy(ctx, fs.ID, BackupEnabled)
	wantErr(t, err, ErrIncorrectLifeCycleState)
	v.clock.advance(time.Minute)
	v.r.poke()
	v.waitFS(fs.ID, StateAvailable)
	_, err = v.r.DescribeBackupPolicy(ctx, fs.ID)
	wantErr(t, err, ErrPolicyNotFound)
	for _, s := range []string{BackupEnabling, BackupDisabling, "enabled", ""} {
		_, err = v.r.PutBackupPolicy(ctx, fs.ID, s)
		wantErr(t, err, ErrBadRequest)
	}
	got, err := v.r.PutBackupPolicy(ctx, fs.ID, BackupEnabled)
	if err != nil || got != BackupEnabling {
		t.Fatal(got, err)
	}
	if s, _ := v.r.DescribeBackupPolicy(ctx, fs.ID); s != BackupEnabling {
		t.Fatal(s)
	}
	v.reopen()
	v.clock.advance(time.Minute)
	v.r.poke()
	if err := poll(func() bool { s, _ := v.r.DescribeBackupPolicy(ctx, fs.ID); return s == BackupEnabled }); err != nil {
		t.Fatal("backups never enabled")
	}
	if got, _ := v.r.PutBackupPolicy(ctx, fs.ID, BackupEnabled); got != BackupEnabled {
		t.Errorf("enabling again: %s", got)
	}
	if got, _ := v.r.PutBackupPolicy(ctx, fs.ID, BackupDisabled); got != BackupDisabling {
		t.Errorf("disabling: %s", got)
	}
	v.clock.advance(time.Minute)
	v.r.poke()
	if err := poll(func() bool { s, _ := v.r.DescribeBackupPolicy(ctx, fs.ID); return s == BackupDisabled }); err != nil {
		t.Fatal("backups never disabled")
	}
	// Backup at creation; One Zone defaults to it.
	for _, in := range []CreateFileSystemInput{{CreationToken: "b1", Backup: ptr(true)}, {CreationToken: "b2", AvailabilityZoneName: "us-east-1a"}} {
		f, err := v.r.CreateFileSystem(ctx, in)
		wantErr(t, err, nil)
		if s, err := v.r.DescribeBackupPolicy(ctx, f.ID); s != BackupEnabled || err != nil {
			t.Errorf("%s: %q %v", in.CreationToken, s, err)
		}
	}
	f, _ := v.r.CreateFileSystem(ctx, CreateFileSystemInput{CreationToken: "b3", AvailabilityZoneName: "us-east-1a", Backup: ptr(false)})
	_, err = v.r.DescribeBackupPolicy(ctx, f.ID)
	wantErr(t, err, ErrPolicyNotFound)
	_, err = v.r.DescribeBackupPolicy(ctx, "fs-0123456789abcdef0")
	wantErr(t, err, ErrFileSystemNotFound)
	_, err = v.r.PutBackupPolicy(ctx, "fs-0123456789abcdef0", BackupEnabled)
	wantErr(t, err, ErrFileSystemNotFound)
}

func TestFileSystemPolicy(t *testing.T) {
	v := newEnv(t)
	fs := v.availableFS("pol")
	_, err := v.r.DescribeFileSystemPolicy(ctx, fs.ID)
	wantErr(t, err, ErrPolicyNotFound)
	wantErr(t, v.r.DeleteFileSystemPolicy(ctx, fs.ID), nil)
	good := `{"Version":"2012-10-17","Id":"x","Statement":[{"Sid":"s","Effect":"Allow","Principal":{"AWS":"*"},"Action":["elasticfilesystem:ClientMount"],"Resource":"*","Condition":{"Bool":{"aws:SecureTransport":"true"}}}]}`
	single := "{\n  \"Statement\": {\"Effect\": \"Deny\", \"NotAction\": \"elasticfilesystem:ClientWrite\", \"Principal\": \"*\"}\n}"
	for _, tc := range []struct {
		name, policy string
		err          error
	}{
		{"good", good, nil},
		{"single statement", single, nil},
		{"empty", "", ErrBadRequest},
		{"too long", `{"Statement":[{"Effect":"Allow","Action":"x","Sid":"` + strings.Repeat("a", 20000) + `"}]}`, ErrBadRequest},
		{"not json", "{", ErrInvalidPolicy},
		{"array", `[{"Effect":"Allow"}]`, ErrInvalidPolicy},
		{"trailing", good + "x", ErrInvalidPolicy},
		{"no statement", `{"Version":"2012-10-17"}`, ErrInvalidPolicy},
		{"empty statement", `{"Statement":[]}`, ErrInvalidPolicy},
		{"bad version", `{"Version":"2020-01-01","Statement":[{"Effect":"Allow","Action":"*"}]}`, ErrInvalidPolicy},
		{"bad effect", `{"Statement":[{"Effect":"Maybe","Action":"*"}]}`, ErrInvalidPolicy},
		{"no action", `{"Statement":[{"Effect":"Allow"}]}`, ErrInvalidPolicy},
		{"both actions", `{"Statement":[{"Effect":"Allow","Action":"*","NotAction":"x"}]}`, ErrInvalidPolicy},
		{"statement not object", `{"Statement":["x"]}`, ErrInvalidPolicy},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := v.r.PutFileSystemPolicy(ctx, fs.ARN, tc.policy, false)
			wantErr(t, err, tc.err)
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
	wantErr(t, err, ErrPolicyNotFound)
	c := newEnvFS(t, v)
	_, err = v.r.PutFileSystemPolicy(ctx, c, good, true)
	wantErr(t, err, ErrIncorrectLifeCycleState)
	wantErr(t, v.r.DeleteFileSystemPolicy(ctx, c), ErrIncorrectLifeCycleState)
	_, err = v.r.PutFileSystemPolicy(ctx, "fs-0123456789abcdef0", good, false)
	wantErr(t, err, ErrFileSystemNotFound)
	_, err = v.r.DescribeFileSystemPolicy(ctx, "fs-0123456789abcdef0")
	wantErr(t, err, ErrFileSystemNotFound)
	wantErr(t, v.r.DeleteFileSystemPolicy(ctx, "fs-0123456789abcdef0"), ErrFileSystemNotFound)
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
			if got := PolicyRequiresTLS(tc.policy); got != tc.want {
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
	mt, err := v.r.CreateMountTarget(ctx, CreateMountTargetInput{FileSystemID: fs.ID, SubnetID: subA})
	wantErr(t, err, nil)
	v.waitMT(mt.ID, StateAvailable)
	pol := `{"Statement":[{"Effect":"Deny","Principal":{"AWS":"*"},"Action":"*","Condition":{"Bool":{"aws:SecureTransport":"false"}}}]}`
	if _, err := v.r.PutFileSystemPolicy(ctx, fs.ID, pol, false); err != nil {
		t.Fatal(err)
	}
	if s, _ := v.mts.spec(mt.ID); !s.RequireTLS {
		t.Fatal("mount target does not require TLS after the policy was put")
	}
	if err := v.r.DeleteFileSystemPolicy(ctx, fs.ID); err != nil {
		t.Fatal(err)
	}
	if s, _ := v.mts.spec(mt.ID); s.RequireTLS {
		t.Fatal("mount target still requires TLS after the policy was deleted")
	}
}
