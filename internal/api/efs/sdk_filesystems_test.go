package efs_test

import (
	"bytes"
	"regexp"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/efs"
	"github.com/aws/aws-sdk-go-v2/service/efs/types"

	"github.com/regionfs/regionfs/internal/control"
	"github.com/regionfs/regionfs/internal/engine"
	"github.com/regionfs/regionfs/internal/testkit"
)

func TestSDKCreateDescribeDeleteFileSystem(t *testing.T) {
	s := newServer(t)
	created, err := s.c.CreateFileSystem(ctx, &efs.CreateFileSystemInput{
		CreationToken: aws.String("tok-1"), Encrypted: aws.Bool(true), PerformanceMode: types.PerformanceModeGeneralPurpose,
		ThroughputMode: types.ThroughputModeProvisioned, ProvisionedThroughputInMibps: aws.Float64(256.5), Backup: aws.Bool(true),
		Tags: []types.Tag{{Key: aws.String("Name"), Value: aws.String("demo")}, {Key: aws.String("team"), Value: aws.String("storage")}},
	})
	if err != nil {
		t.Fatal(err)
	}
	id := *created.FileSystemId
	if !regexp.MustCompile(`^fs-0[0-9a-f]{16}$`).MatchString(id) {
		t.Errorf("id %q", id)
	}
	checks := []struct {
		name string
		ok   bool
	}{
		{"state creating", created.LifeCycleState == types.LifeCycleStateCreating},
		{"owner", aws.ToString(created.OwnerId) == accountID},
		{"arn", aws.ToString(created.FileSystemArn) == "arn:aws:elasticfilesystem:us-east-1:123456789012:file-system/"+id},
		{"token", aws.ToString(created.CreationToken) == "tok-1"},
		{"creation time", created.CreationTime != nil && created.CreationTime.Equal(s.clock.Now())},
		{"name", aws.ToString(created.Name) == "demo"},
		{"encrypted", aws.ToBool(created.Encrypted)},
		{"kms key arn", aws.ToString(created.KmsKeyId) == "arn:aws:kms:us-east-1:123456789012:key/"+defaultKey},
		{"throughput", created.ThroughputMode == types.ThroughputModeProvisioned && aws.ToFloat64(created.ProvisionedThroughputInMibps) == 256.5},
		{"performance", created.PerformanceMode == types.PerformanceModeGeneralPurpose},
		{"tags", len(created.Tags) == 2},
		{"protection", created.FileSystemProtection != nil && created.FileSystemProtection.ReplicationOverwriteProtection == types.ReplicationOverwriteProtectionEnabled},
		{"size", created.SizeInBytes != nil && created.SizeInBytes.Timestamp != nil},
		{"mount targets", created.NumberOfMountTargets == 0},
	}
	for _, c := range checks {
		if !c.ok {
			t.Errorf("CreateFileSystem output: %s wrong: %+v", c.name, created)
		}
	}
	fs := s.waitFS(id, types.LifeCycleStateAvailable)
	if aws.ToInt64(fs.SizeInBytes.ValueInStandard) != fs.SizeInBytes.Value || aws.ToInt64(fs.SizeInBytes.ValueInIA) != 0 {
		t.Errorf("size %+v", fs.SizeInBytes)
	}
	// The size is the engine's: write into the engine file system.
	efs0, _ := s.engine.FS(id)
	e, err := efs0.Create(ctx, engine.RootCred, engine.RootIno, "f", engine.CreateGuarded, engine.SetAttr{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	// Not zeros: blocks of zeros are holes, which hold nothing.
	if _, _, err := efs0.Write(ctx, engine.RootCred, e.Attr.Ino, 0, bytes.Repeat([]byte{'d'}, 3<<20)); err != nil {
		t.Fatal(err)
	}
	if got := s.waitFS(id, types.LifeCycleStateAvailable); got.SizeInBytes.Value < 3<<20 {
		t.Errorf("size after writing 3 MiB: %d", got.SizeInBytes.Value)
	}
	// Idempotency: the same token is FileSystemAlreadyExists with its id.
	_, err = s.c.CreateFileSystem(ctx, &efs.CreateFileSystemInput{CreationToken: aws.String("tok-1")})
	ae := expectError[*types.FileSystemAlreadyExists](t, err, 409)
	if aws.ToString(ae.FileSystemId) != id {
		t.Errorf("FileSystemAlreadyExists.FileSystemId = %q", aws.ToString(ae.FileSystemId))
	}
	// Describe by id, ARN and token.
	for _, in := range []*efs.DescribeFileSystemsInput{
		{FileSystemId: aws.String(id)}, {FileSystemId: created.FileSystemArn}, {CreationToken: aws.String("tok-1")},
	} {
		out, err := s.c.DescribeFileSystems(ctx, in)
		if err != nil || len(out.FileSystems) != 1 || *out.FileSystems[0].FileSystemId != id || out.NextMarker != nil {
			t.Errorf("describe %+v: %v %v", in, out, err)
		}
	}
	out, err := s.c.DescribeFileSystems(ctx, &efs.DescribeFileSystemsInput{CreationToken: aws.String("no such token")})
	if err != nil || len(out.FileSystems) != 0 {
		t.Errorf("unknown token: %v %v", out, err)
	}
	_, err = s.c.DescribeFileSystems(ctx, &efs.DescribeFileSystemsInput{FileSystemId: aws.String("fs-0123456789abcdef0")})
	expectError[*types.FileSystemNotFound](t, err, 404)
	// Delete: in use while it has a mount target.
	mt, err := s.c.CreateMountTarget(ctx, &efs.CreateMountTargetInput{FileSystemId: aws.String(id), SubnetId: aws.String(subA)})
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.c.DeleteFileSystem(ctx, &efs.DeleteFileSystemInput{FileSystemId: aws.String(id)})
	expectError[*types.FileSystemInUse](t, err, 409)
	if _, err := s.c.DeleteMountTarget(ctx, &efs.DeleteMountTargetInput{MountTargetId: mt.MountTargetId}); err != nil {
		t.Fatal(err)
	}
	s.waitMT(*mt.MountTargetId, types.LifeCycleStateDeleted)
	if _, err := s.c.DeleteFileSystem(ctx, &efs.DeleteFileSystemInput{FileSystemId: created.FileSystemArn}); err != nil {
		t.Fatal(err)
	}
	testkit.Until(10*time.Second, func() bool {
		_, err = s.c.DescribeFileSystems(ctx, &efs.DescribeFileSystemsInput{FileSystemId: aws.String(id)})
		return err != nil
	})
	expectError[*types.FileSystemNotFound](t, err, 404)
	_, err = s.c.DeleteFileSystem(ctx, &efs.DeleteFileSystemInput{FileSystemId: aws.String(id)})
	expectError[*types.FileSystemNotFound](t, err, 404)
}

func TestSDKDescribeFileSystemsPaginator(t *testing.T) {
	s := newServer(t)
	want := map[string]bool{}
	for i := range 7 {
		s.clock.Advance(time.Millisecond)
		out, err := s.c.CreateFileSystem(ctx, &efs.CreateFileSystemInput{CreationToken: aws.String(string(rune('a' + i)))})
		if err != nil {
			t.Fatal(err)
		}
		want[*out.FileSystemId] = true
	}
	p := efs.NewDescribeFileSystemsPaginator(s.c, &efs.DescribeFileSystemsInput{MaxItems: aws.Int32(3)})
	pages, got := 0, map[string]bool{}
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, f := range out.FileSystems {
			got[*f.FileSystemId] = true
		}
	}
	if pages != 3 || len(got) != 7 {
		t.Errorf("%d pages, %d file systems", pages, len(got))
	}
	for id := range want {
		if !got[id] {
			t.Errorf("missing %s", id)
		}
	}
	_, err := s.c.DescribeFileSystems(ctx, &efs.DescribeFileSystemsInput{Marker: aws.String("not-a-marker")})
	expectError[*types.BadRequest](t, err, 400)
	_, err = s.c.DescribeFileSystems(ctx, &efs.DescribeFileSystemsInput{MaxItems: aws.Int32(0)})
	expectError[*types.BadRequest](t, err, 400)
}

func TestSDKUpdateFileSystem(t *testing.T) {
	s := newServer(t, func(o *control.Options) { o.TransitionDelay = time.Hour })
	out, err := s.c.CreateFileSystem(ctx, &efs.CreateFileSystemInput{CreationToken: aws.String("u")})
	if err != nil {
		t.Fatal(err)
	}
	id := out.FileSystemId
	_, err = s.c.UpdateFileSystem(ctx, &efs.UpdateFileSystemInput{FileSystemId: id, ThroughputMode: types.ThroughputModeElastic})
	expectError[*types.IncorrectFileSystemLifeCycleState](t, err, 409)
	s.clock.Advance(time.Hour)
	s.waitFS(*id, types.LifeCycleStateAvailable)
	up, err := s.c.UpdateFileSystem(ctx, &efs.UpdateFileSystemInput{FileSystemId: id, ThroughputMode: types.ThroughputModeProvisioned, ProvisionedThroughputInMibps: aws.Float64(64)})
	if err != nil {
		t.Fatal(err)
	}
	if up.LifeCycleState != types.LifeCycleStateUpdating || up.ThroughputMode != types.ThroughputModeProvisioned || aws.ToFloat64(up.ProvisionedThroughputInMibps) != 64 {
		t.Errorf("update output %+v", up)
	}
	s.clock.Advance(time.Hour)
	s.waitFS(*id, types.LifeCycleStateAvailable)
	_, err = s.c.UpdateFileSystem(ctx, &efs.UpdateFileSystemInput{FileSystemId: id, ProvisionedThroughputInMibps: aws.Float64(10)})
	expectError[*types.TooManyRequests](t, err, 429)
	_, err = s.c.UpdateFileSystem(ctx, &efs.UpdateFileSystemInput{FileSystemId: id, ProvisionedThroughputInMibps: aws.Float64(100000)})
	expectError[*types.ThroughputLimitExceeded](t, err, 400)
	_, err = s.c.UpdateFileSystem(ctx, &efs.UpdateFileSystemInput{FileSystemId: id, ThroughputMode: "warp"})
	expectError[*types.BadRequest](t, err, 400)
	_, err = s.c.UpdateFileSystem(ctx, &efs.UpdateFileSystemInput{FileSystemId: aws.String("fs-0123456789abcdef0"), ThroughputMode: types.ThroughputModeElastic})
	expectError[*types.FileSystemNotFound](t, err, 404)
}

func TestSDKFileSystemProtection(t *testing.T) {
	s := newServer(t)
	id := s.createFS("p").FileSystemId
	out, err := s.c.UpdateFileSystemProtection(ctx, &efs.UpdateFileSystemProtectionInput{FileSystemId: id, ReplicationOverwriteProtection: types.ReplicationOverwriteProtectionDisabled})
	if err != nil || out.ReplicationOverwriteProtection != types.ReplicationOverwriteProtectionDisabled {
		t.Fatal(out, err)
	}
	fs := s.waitFS(*id, types.LifeCycleStateAvailable)
	if fs.FileSystemProtection.ReplicationOverwriteProtection != types.ReplicationOverwriteProtectionDisabled {
		t.Error(fs.FileSystemProtection)
	}
	_, err = s.c.UpdateFileSystemProtection(ctx, &efs.UpdateFileSystemProtectionInput{FileSystemId: id, ReplicationOverwriteProtection: types.ReplicationOverwriteProtectionReplicating})
	expectError[*types.BadRequest](t, err, 400)
	if err := s.r.SetReplicationRole(ctx, *id, control.RoleSource); err != nil {
		t.Fatal(err)
	}
	_, err = s.c.UpdateFileSystemProtection(ctx, &efs.UpdateFileSystemProtectionInput{FileSystemId: id, ReplicationOverwriteProtection: types.ReplicationOverwriteProtectionEnabled})
	expectError[*types.ReplicationAlreadyExists](t, err, 409)
	// Deleting either end of a replication is refused (400, as the issue
	// asks): the configuration has to go first.
	_, err = s.c.DeleteFileSystem(ctx, &efs.DeleteFileSystemInput{FileSystemId: id})
	expectError[*types.BadRequest](t, err, 400)
	_, err = s.c.UpdateFileSystemProtection(ctx, &efs.UpdateFileSystemProtectionInput{FileSystemId: aws.String("fs-0123456789abcdef0"), ReplicationOverwriteProtection: types.ReplicationOverwriteProtectionEnabled})
	expectError[*types.FileSystemNotFound](t, err, 404)
}

func TestSDKCreateFileSystemErrors(t *testing.T) {
	s := newServer(t, func(o *control.Options) { o.MaxFileSystems = 3 })
	for _, tc := range []struct {
		name  string
		in    efs.CreateFileSystemInput
		check func(*testing.T, error)
	}{
		{"token too long", efs.CreateFileSystemInput{CreationToken: aws.String(string(make([]byte, 65)))}, badRequest},
		{"bad performance mode", efs.CreateFileSystemInput{PerformanceMode: "turbo"}, badRequest},
		{"bad throughput mode", efs.CreateFileSystemInput{ThroughputMode: "turbo"}, badRequest},
		{"provisioned without value", efs.CreateFileSystemInput{ThroughputMode: types.ThroughputModeProvisioned}, badRequest},
		{"too much throughput", efs.CreateFileSystemInput{ThroughputMode: types.ThroughputModeProvisioned, ProvisionedThroughputInMibps: aws.Float64(4000)},
			func(t *testing.T, err error) { expectError[*types.ThroughputLimitExceeded](t, err, 400) }},
		{"unknown zone", efs.CreateFileSystemInput{AvailabilityZoneName: aws.String("us-east-1z")},
			func(t *testing.T, err error) { expectError[*types.UnsupportedAvailabilityZone](t, err, 400) }},
		{"bad key pattern", efs.CreateFileSystemInput{Encrypted: aws.Bool(true), KmsKeyId: aws.String("my key")}, badRequest},
		{"unknown key", efs.CreateFileSystemInput{Encrypted: aws.Bool(true), KmsKeyId: aws.String("alias/none")}, badRequest},
		{"key without encryption", efs.CreateFileSystemInput{KmsKeyId: aws.String("alias/team")}, badRequest},
		{"reserved tag", efs.CreateFileSystemInput{Tags: []types.Tag{{Key: aws.String("aws:x"), Value: aws.String("y")}}}, badRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := tc.in
			if in.CreationToken == nil {
				in.CreationToken = aws.String(tc.name)
			}
			_, err := s.c.CreateFileSystem(ctx, &in)
			tc.check(t, err)
		})
	}
	out, _ := s.c.DescribeFileSystems(ctx, &efs.DescribeFileSystemsInput{})
	if len(out.FileSystems) != 0 {
		t.Fatalf("refused creates left %d file systems", len(out.FileSystems))
	}
	for _, tok := range []string{"1", "2", "3"} {
		s.createFS(tok, func(in *efs.CreateFileSystemInput) {
			in.Encrypted, in.KmsKeyId = aws.Bool(true), aws.String("arn:aws:kms:us-east-1:123456789012:alias/team")
			in.AvailabilityZoneName = aws.String("us-east-1b")
		})
	}
	_, err := s.c.CreateFileSystem(ctx, &efs.CreateFileSystemInput{CreationToken: aws.String("4")})
	expectError[*types.FileSystemLimitExceeded](t, err, 403)
	fs := s.waitFS(*s.lookupToken("1"), types.LifeCycleStateAvailable)
	if aws.ToString(fs.AvailabilityZoneName) != "us-east-1b" || aws.ToString(fs.AvailabilityZoneId) != "use1-az2" ||
		aws.ToString(fs.KmsKeyId) != "arn:aws:kms:us-east-1:123456789012:key/mrk-0123456789abcdef0123456789abcdef" {
		t.Errorf("one zone, team key: %+v", fs)
	}
}

func (s *server) lookupToken(tok string) *string {
	out, err := s.c.DescribeFileSystems(ctx, &efs.DescribeFileSystemsInput{CreationToken: aws.String(tok)})
	if err != nil || len(out.FileSystems) != 1 {
		s.t.Fatalf("token %s: %v", tok, err)
	}
	return out.FileSystems[0].FileSystemId
}

func badRequest(t *testing.T, err error) {
	t.Helper()
	expectError[*types.BadRequest](t, err, 400)
}
