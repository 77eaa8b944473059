package iace2e

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/regionfs/regionfs/internal/testkit"
)

// seedTemplate is the seed's CloudFormation template, with the two
// Parameters its author used but left undefined (SubnetA and
// EFSSecurityGroup).
const seedTemplate = `AWSTemplateFormatVersion: '2010-09-09'
Description: EFS with cross-region replication

Parameters:
  SubnetA:
    Type: AWS::EC2::Subnet::Id
  EFSSecurityGroup:
    Type: AWS::EC2::SecurityGroup::Id

Resources:
  SourceFileSystem:
    Type: AWS::EFS::FileSystem
    Properties:
      Encrypted: true
      PerformanceMode: generalPurpose
      ReplicationConfiguration:
        Destinations:
          - Region: us-west-2
      FileSystemTags:
        - Key: Name
          Value: primary-efs

  SourceMountTargetA:
    Type: AWS::EFS::MountTarget
    Properties:
      FileSystemId: !Ref SourceFileSystem
      SubnetId: !Ref SubnetA
      SecurityGroups:
        - !Ref EFSSecurityGroup

Outputs:
  FileSystemId:
    Value: !Ref SourceFileSystem
  MountTargetIp:
    Value: !GetAtt SourceMountTargetA.IpAddress
`

// TestSeedTemplate deploys the seed's template with `aws cloudformation
// deploy --parameter-overrides`: the stack's file system replicates to
// us-west-2, a file written through the template's mount target is read
// through a mount target of the replica, a tag change deploys in place,
// and deleting the stack removes the replication configuration before the
// file system (the replica stays in us-west-2, as on AWS).
func TestSeedTemplate(t *testing.T) {
	east, west := startPair(t)
	tpl := filepath.Join(t.TempDir(), "seed.yaml")
	if err := os.WriteFile(tpl, []byte(seedTemplate), 0o600); err != nil {
		t.Fatal(err)
	}
	subnet := east.must("ec2", "describe-subnets", "--query", "Subnets[0].SubnetId")
	group := east.must("ec2", "describe-security-groups", "--query", "SecurityGroups[0].GroupId")
	if got := east.must("cloudformation", "validate-template", "--template-body", "file://"+tpl, "--query", "Parameters[].ParameterKey"); got != "SubnetA\tEFSSecurityGroup" && got != "EFSSecurityGroup\tSubnetA" {
		t.Fatalf("validate-template: %q", got)
	}
	deploy := func() string {
		return east.must("cloudformation", "deploy", "--template-file", tpl, "--stack-name", "efs-dr",
			"--parameter-overrides", "SubnetA="+subnet, "EFSSecurityGroup="+group)
	}
	out := deploy()
	t.Logf("$ aws cloudformation deploy --template-file seed.yaml --stack-name efs-dr --parameter-overrides SubnetA=%s EFSSecurityGroup=%s\n%s", subnet, group, out)
	status := func() string {
		s, _ := east.run("cloudformation", "describe-stacks", "--stack-name", "efs-dr", "--query", "Stacks[0].StackStatus")
		return s
	}
	if s := status(); s != "CREATE_COMPLETE" {
		t.Fatalf("stack status %q", s)
	}
	output := func(key string) string {
		return east.must("cloudformation", "describe-stacks", "--stack-name", "efs-dr", "--query", "Stacks[0].Outputs[?OutputKey=='"+key+"'].OutputValue")
	}
	fs, ip := output("FileSystemId"), output("MountTargetIp")
	if got := east.must("efs", "describe-file-systems", "--file-system-id", fs, "--query", "FileSystems[0].[Name,Encrypted,PerformanceMode]"); got != "primary-efs\tTrue\tgeneralPurpose" {
		t.Fatalf("file system %s: %q", fs, got)
	}
	var dst string
	testkit.WaitFor(t, "replication from the template ENABLED", 60*time.Second, func() bool {
		out, _ := east.run("efs", "describe-replication-configurations", "--file-system-id", fs, "--query", "Replications[0].Destinations[0].[Region,Status,FileSystemId]")
		f := strings.Fields(out)
		if len(f) == 3 && f[0] == "us-west-2" && f[1] == "ENABLED" {
			dst = f[2]
			return true
		}
		return false
	})
	data := bytes.Repeat([]byte("declared as code\n"), 1000)
	if err := nfsPut(t, ip, "cfn.txt", data); err != nil {
		t.Fatalf("NFS write through the template's mount target %s: %v", ip, err)
	}
	dstIP := west.mountTarget(dst)
	testkit.WaitFor(t, "the file at the replica", 30*time.Second, func() bool {
		got, err := nfsCat(t, dstIP, "cfn.txt")
		return err == nil && bytes.Equal(got, data)
	})

	// A tag change is an update in place.
	os.WriteFile(tpl, []byte(strings.Replace(seedTemplate, "Value: primary-efs", "Value: primary-efs-v2", 1)), 0o600)
	deploy()
	if s := status(); s != "UPDATE_COMPLETE" {
		t.Fatalf("stack status after the update %q", s)
	}
	if got := east.must("efs", "describe-file-systems", "--file-system-id", fs, "--query", "FileSystems[0].Name"); got != "primary-efs-v2" {
		t.Fatalf("name after the update %q", got)
	}
	if got := output("FileSystemId"); got != fs {
		t.Fatalf("the update replaced the file system: %s → %s", fs, got)
	}

	east.must("cloudformation", "delete-stack", "--stack-name", "efs-dr")
	east.must("cloudformation", "wait", "stack-delete-complete", "--stack-name", "efs-dr")
	if out, err := east.run("efs", "describe-file-systems", "--file-system-id", fs); err == nil || !strings.Contains(out, "(FileSystemNotFound)") {
		t.Fatalf("the stack's file system after delete-stack: %v %s", err, out)
	}
	if got := west.must("efs", "describe-file-systems", "--file-system-id", dst, "--query", "FileSystems[0].FileSystemId"); got != dst {
		t.Fatalf("replica after delete-stack: %q", got)
	}
	if got, err := nfsCat(t, dstIP, "cfn.txt"); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("replica's data after delete-stack: %v", err)
	}
}
