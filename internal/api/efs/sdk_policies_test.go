package efs_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/efs"
	"github.com/aws/aws-sdk-go-v2/service/efs/types"

	"github.com/regionfs/regionfs/internal/control"
	"github.com/regionfs/regionfs/internal/testkit"
)

func TestSDKLifecycleConfiguration(t *testing.T) {
	s := newServer(t)
	fs := s.createFS("lc", func(in *efs.CreateFileSystemInput) { in.ThroughputMode = types.ThroughputModeElastic })
	got, err := s.c.DescribeLifecycleConfiguration(ctx, &efs.DescribeLifecycleConfigurationInput{FileSystemId: fs.FileSystemId})
	if err != nil || got.LifecyclePolicies == nil || len(got.LifecyclePolicies) != 0 {
		t.Fatalf("initial: %+v %v", got, err)
	}
	put, err := s.c.PutLifecycleConfiguration(ctx, &efs.PutLifecycleConfigurationInput{FileSystemId: fs.FileSystemId, LifecyclePolicies: []types.LifecyclePolicy{
		{TransitionToIA: types.TransitionToIARulesAfter30Days}, {TransitionToPrimaryStorageClass: types.TransitionToPrimaryStorageClassRulesAfter1Access},
		{TransitionToArchive: types.TransitionToArchiveRulesAfter90Days},
	}})
	if err != nil || len(put.LifecyclePolicies) != 3 || put.LifecyclePolicies[2].TransitionToArchive != types.TransitionToArchiveRulesAfter90Days {
		t.Fatalf("put: %+v %v", put, err)
	}
	got, _ = s.c.DescribeLifecycleConfiguration(ctx, &efs.DescribeLifecycleConfigurationInput{FileSystemId: fs.FileSystemArn})
	if len(got.LifecyclePolicies) != 3 || got.LifecyclePolicies[0].TransitionToIA != types.TransitionToIARulesAfter30Days {
		t.Errorf("describe: %+v", got.LifecyclePolicies)
	}
	for _, ps := range [][]types.LifecyclePolicy{
		{{TransitionToIA: "AFTER_2_DAYS"}},
		{{TransitionToIA: types.TransitionToIARulesAfter7Days, TransitionToArchive: types.TransitionToArchiveRulesAfter14Days}},
		{{TransitionToIA: types.TransitionToIARulesAfter90Days}, {TransitionToArchive: types.TransitionToArchiveRulesAfter30Days}},
		{{}, {}, {}, {}},
	} {
		_, err := s.c.PutLifecycleConfiguration(ctx, &efs.PutLifecycleConfigurationInput{FileSystemId: fs.FileSystemId, LifecyclePolicies: ps})
		badRequest(t, err)
	}
	if _, err := s.c.PutLifecycleConfiguration(ctx, &efs.PutLifecycleConfigurationInput{FileSystemId: fs.FileSystemId, LifecyclePolicies: []types.LifecyclePolicy{}}); err != nil {
		t.Fatal(err)
	}
	got, _ = s.c.DescribeLifecycleConfiguration(ctx, &efs.DescribeLifecycleConfigurationInput{FileSystemId: fs.FileSystemId})
	if len(got.LifecyclePolicies) != 0 {
		t.Errorf("after an empty put: %+v", got.LifecyclePolicies)
	}
	_, err = s.c.PutLifecycleConfiguration(ctx, &efs.PutLifecycleConfigurationInput{FileSystemId: aws.String("fs-0123456789abcdef0"), LifecyclePolicies: []types.LifecyclePolicy{}})
	expectError[*types.FileSystemNotFound](t, err, 404)
	_, err = s.c.DescribeLifecycleConfiguration(ctx, &efs.DescribeLifecycleConfigurationInput{FileSystemId: aws.String("fs-0123456789abcdef0")})
	expectError[*types.FileSystemNotFound](t, err, 404)
}

func TestSDKBackupPolicy(t *testing.T) {
	s := newServer(t, func(o *control.Options) { o.TransitionDelay = time.Minute })
	out, err := s.c.CreateFileSystem(ctx, &efs.CreateFileSystemInput{CreationToken: aws.String("bk")})
	if err != nil {
		t.Fatal(err)
	}
	id := out.FileSystemId
	_, err = s.c.PutBackupPolicy(ctx, &efs.PutBackupPolicyInput{FileSystemId: id, BackupPolicy: &types.BackupPolicy{Status: types.StatusEnabled}})
	expectError[*types.IncorrectFileSystemLifeCycleState](t, err, 409)
	s.clock.Advance(time.Minute)
	s.waitFS(*id, types.LifeCycleStateAvailable)
	_, err = s.c.DescribeBackupPolicy(ctx, &efs.DescribeBackupPolicyInput{FileSystemId: id})
	expectError[*types.PolicyNotFound](t, err, 404)
	put, err := s.c.PutBackupPolicy(ctx, &efs.PutBackupPolicyInput{FileSystemId: id, BackupPolicy: &types.BackupPolicy{Status: types.StatusEnabled}})
	if err != nil || put.BackupPolicy.Status != types.StatusEnabling {
		t.Fatalf("put: %+v %v", put, err)
	}
	s.clock.Advance(time.Minute)
	testkit.Eventually(t, 10*time.Second, func() error {
		got, err := s.c.DescribeBackupPolicy(ctx, &efs.DescribeBackupPolicyInput{FileSystemId: id})
		if err == nil && got.BackupPolicy.Status == types.StatusEnabled {
			return nil
		}
		return fmt.Errorf("backup policy never ENABLED: %+v %v", got, err)
	})
	_, err = s.c.PutBackupPolicy(ctx, &efs.PutBackupPolicyInput{FileSystemId: id, BackupPolicy: &types.BackupPolicy{Status: types.StatusDisabling}})
	badRequest(t, err)
	_, err = s.c.PutBackupPolicy(ctx, &efs.PutBackupPolicyInput{FileSystemId: id, BackupPolicy: &types.BackupPolicy{Status: "on"}})
	badRequest(t, err)
	_, err = s.c.PutBackupPolicy(ctx, &efs.PutBackupPolicyInput{FileSystemId: aws.String("fs-0123456789abcdef0"), BackupPolicy: &types.BackupPolicy{Status: types.StatusEnabled}})
	expectError[*types.FileSystemNotFound](t, err, 404)
	_, err = s.c.DescribeBackupPolicy(ctx, &efs.DescribeBackupPolicyInput{FileSystemId: aws.String("fs-0123456789abcdef0")})
	expectError[*types.FileSystemNotFound](t, err, 404)
}

func TestSDKFileSystemPolicy(t *testing.T) {
	s := newServer(t)
	fs := s.createFS("pol")
	_, err := s.c.DescribeFileSystemPolicy(ctx, &efs.DescribeFileSystemPolicyInput{FileSystemId: fs.FileSystemId})
	expectError[*types.PolicyNotFound](t, err, 404)
	policy := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"*"},"Action":["elasticfilesystem:ClientMount","elasticfilesystem:ClientWrite"],"Condition":{"Bool":{"elasticfilesystem:AccessedViaMountTarget":"true"}}}]}`
	put, err := s.c.PutFileSystemPolicy(ctx, &efs.PutFileSystemPolicyInput{FileSystemId: fs.FileSystemArn, Policy: aws.String(policy), BypassPolicyLockoutSafetyCheck: true})
	if err != nil || aws.ToString(put.Policy) != policy || aws.ToString(put.FileSystemId) != *fs.FileSystemId {
		t.Fatalf("put: %+v %v", put, err)
	}
	got, err := s.c.DescribeFileSystemPolicy(ctx, &efs.DescribeFileSystemPolicyInput{FileSystemId: fs.FileSystemId})
	if err != nil || aws.ToString(got.Policy) != policy {
		t.Fatalf("describe: %+v %v", got, err)
	}
	_, err = s.c.PutFileSystemPolicy(ctx, &efs.PutFileSystemPolicyInput{FileSystemId: fs.FileSystemId, Policy: aws.String(`{"Statement": "allow everything"}`)})
	expectError[*types.InvalidPolicyException](t, err, 400)
	_, err = s.c.PutFileSystemPolicy(ctx, &efs.PutFileSystemPolicyInput{FileSystemId: fs.FileSystemId, Policy: aws.String(strings.Repeat(" ", 20001))})
	badRequest(t, err)
	if _, err := s.c.DeleteFileSystemPolicy(ctx, &efs.DeleteFileSystemPolicyInput{FileSystemId: fs.FileSystemId}); err != nil {
		t.Fatal(err)
	}
	_, err = s.c.DescribeFileSystemPolicy(ctx, &efs.DescribeFileSystemPolicyInput{FileSystemId: fs.FileSystemId})
	expectError[*types.PolicyNotFound](t, err, 404)
	_, err = s.c.DeleteFileSystemPolicy(ctx, &efs.DeleteFileSystemPolicyInput{FileSystemId: aws.String("fs-0123456789abcdef0")})
	expectError[*types.FileSystemNotFound](t, err, 404)
	_, err = s.c.PutFileSystemPolicy(ctx, &efs.PutFileSystemPolicyInput{FileSystemId: aws.String("fs-0123456789abcdef0"), Policy: aws.String(policy)})
	expectError[*types.FileSystemNotFound](t, err, 404)
}

func TestSDKAccountPreferences(t *testing.T) {
	s := newServer(t)
	got, err := s.c.DescribeAccountPreferences(ctx, &efs.DescribeAccountPreferencesInput{MaxResults: aws.Int32(5)})
	if err != nil || got.ResourceIdPreference.ResourceIdType != types.ResourceIdTypeLongId || len(got.ResourceIdPreference.Resources) != 2 || got.NextToken != nil {
		t.Fatalf("%+v %v", got, err)
	}
	put, err := s.c.PutAccountPreferences(ctx, &efs.PutAccountPreferencesInput{ResourceIdType: types.ResourceIdTypeShortId})
	if err != nil || put.ResourceIdPreference.ResourceIdType != types.ResourceIdTypeShortId {
		t.Fatalf("%+v %v", put, err)
	}
	fs := s.createFS("short")
	if len(*fs.FileSystemId) != len("fs-12345678") {
		t.Errorf("short id %q", *fs.FileSystemId)
	}
	_, err = s.c.PutAccountPreferences(ctx, &efs.PutAccountPreferencesInput{ResourceIdType: "MEDIUM_ID"})
	badRequest(t, err)
	// BadRequest is not modeled for DescribeAccountPreferences: the SDK
	// shows it as a generic API error with the code.
	_, err = s.c.DescribeAccountPreferences(ctx, &efs.DescribeAccountPreferencesInput{MaxResults: aws.Int32(0)})
	checkAPIError(t, err, "BadRequest", 400)
}
