package iac

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	cf "github.com/aws/aws-sdk-go-v2/service/cloudformation"
	cftypes "github.com/aws/aws-sdk-go-v2/service/cloudformation/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/smithy-go"

	"github.com/regionfs/regionfs/internal/testkit"
)

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != code {
		t.Fatalf("want %s, got %v", code, err)
	}
}

func must[T any](t *testing.T) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

// TestKMSWithSDK drives every KMS operation with aws-sdk-go-v2.
func TestKMSWithSDK(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	c := kms.NewFromConfig(testkit.AWSConfig(e.url, regionName, accessKey, secretKey))
	created := must[*kms.CreateKeyOutput](t)(c.CreateKey(ctx, &kms.CreateKeyInput{Description: aws.String("dr key"),
		Tags: []kmstypes.Tag{{TagKey: aws.String("team"), TagValue: aws.String("dr")}}}))
	id, arn := *created.KeyMetadata.KeyId, *created.KeyMetadata.Arn
	if created.KeyMetadata.KeyState != kmstypes.KeyStateEnabled || created.KeyMetadata.KeyManager != kmstypes.KeyManagerTypeCustomer {
		t.Fatalf("new key %+v", created.KeyMetadata)
	}
	must[*kms.CreateAliasOutput](t)(c.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String("alias/dr"), TargetKeyId: aws.String(id)}))
	_, err := c.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String("alias/dr"), TargetKeyId: aws.String(id)})
	wantCode(t, err, "AlreadyExistsException")
	_, err = c.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String("alias/aws/mine"), TargetKeyId: aws.String(id)})
	wantCode(t, err, "InvalidAliasNameException")
	for _, ref := range []string{id, arn, "alias/dr", "arn:aws:kms:us-east-1:123456789012:alias/dr"} {
		d := must[*kms.DescribeKeyOutput](t)(c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(ref)}))
		if *d.KeyMetadata.KeyId != id {
			t.Fatalf("DescribeKey(%s) = %s", ref, *d.KeyMetadata.KeyId)
		}
	}
	_, err = c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String("alias/nope")})
	var nf *kmstypes.NotFoundException
	if !errors.As(err, &nf) {
		t.Fatalf("unknown alias: %v", err)
	}
	keys := must[*kms.ListKeysOutput](t)(c.ListKeys(ctx, &kms.ListKeysInput{}))
	if len(keys.Keys) != 2 {
		t.Fatalf("ListKeys: %d keys", len(keys.Keys))
	}
	page := must[*kms.ListKeysOutput](t)(c.ListKeys(ctx, &kms.ListKeysInput{Limit: aws.Int32(1)}))
	if !page.Truncated || page.NextMarker == nil {
		t.Fatal("ListKeys did not page")
	}
	k2 := must[*kms.CreateKeyOutput](t)(c.CreateKey(ctx, &kms.CreateKeyInput{}))
	must[*kms.UpdateAliasOutput](t)(c.UpdateAlias(ctx, &kms.UpdateAliasInput{AliasName: aws.String("alias/dr"), TargetKeyId: k2.KeyMetadata.KeyId}))
	as := must[*kms.ListAliasesOutput](t)(c.ListAliases(ctx, &kms.ListAliasesInput{KeyId: k2.KeyMetadata.KeyId}))
	if len(as.Aliases) != 1 || *as.Aliases[0].AliasName != "alias/dr" {
		t.Fatalf("ListAliases %+v", as.Aliases)
	}
	must[*kms.DeleteAliasOutput](t)(c.DeleteAlias(ctx, &kms.DeleteAliasInput{AliasName: aws.String("alias/dr")}))
	must[*kms.DisableKeyOutput](t)(c.DisableKey(ctx, &kms.DisableKeyInput{KeyId: aws.String(id)}))
	_, err = c.EnableKeyRotation(ctx, &kms.EnableKeyRotationInput{KeyId: aws.String(id)})
	wantCode(t, err, "DisabledException")
	must[*kms.EnableKeyOutput](t)(c.EnableKey(ctx, &kms.EnableKeyInput{KeyId: aws.String(id)}))
	must[*kms.EnableKeyRotationOutput](t)(c.EnableKeyRotation(ctx, &kms.EnableKeyRotationInput{KeyId: aws.String(id), RotationPeriodInDays: aws.Int32(90)}))
	st := must[*kms.GetKeyRotationStatusOutput](t)(c.GetKeyRotationStatus(ctx, &kms.GetKeyRotationStatusInput{KeyId: aws.String(id)}))
	if !st.KeyRotationEnabled || aws.ToInt32(st.RotationPeriodInDays) != 90 {
		t.Fatalf("rotation status %+v", st)
	}
	must[*kms.RotateKeyOnDemandOutput](t)(c.RotateKeyOnDemand(ctx, &kms.RotateKeyOnDemandInput{KeyId: aws.String(id)}))
	rs := must[*kms.ListKeyRotationsOutput](t)(c.ListKeyRotations(ctx, &kms.ListKeyRotationsInput{KeyId: aws.String(id)}))
	if len(rs.Rotations) != 1 || rs.Rotations[0].RotationType != kmstypes.RotationTypeOnDemand {
		t.Fatalf("rotations %+v", rs.Rotations)
	}
	must[*kms.DisableKeyRotationOutput](t)(c.DisableKeyRotation(ctx, &kms.DisableKeyRotationInput{KeyId: aws.String(id)}))
	must[*kms.TagResourceOutput](t)(c.TagResource(ctx, &kms.TagResourceInput{KeyId: aws.String(id), Tags: []kmstypes.Tag{{TagKey: aws.String("env"), TagValue: aws.String("prod")}}}))
	must[*kms.UntagResourceOutput](t)(c.UntagResource(ctx, &kms.UntagResourceInput{KeyId: aws.String(id), TagKeys: []string{"team"}}))
	tags := must[*kms.ListResourceTagsOutput](t)(c.ListResourceTags(ctx, &kms.ListResourceTagsInput{KeyId: aws.String(id)}))
	if len(tags.Tags) != 1 || *tags.Tags[0].TagKey != "env" {
		t.Fatalf("tags %+v", tags.Tags)
	}
	pol := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"kms:*","Resource":"*"}]}`
	must[*kms.PutKeyPolicyOutput](t)(c.PutKeyPolicy(ctx, &kms.PutKeyPolicyInput{KeyId: aws.String(id), PolicyName: aws.String("default"), Policy: aws.String(pol)}))
	gp := must[*kms.GetKeyPolicyOutput](t)(c.GetKeyPolicy(ctx, &kms.GetKeyPolicyInput{KeyId: aws.String(id), PolicyName: aws.String("default")}))
	if *gp.Policy != pol {
		t.Fatalf("policy %s", *gp.Policy)
	}
	_, err = c.PutKeyPolicy(ctx, &kms.PutKeyPolicyInput{KeyId: aws.String(id), Policy: aws.String("{not json")})
	wantCode(t, err, "MalformedPolicyDocumentException")
	lp := must[*kms.ListKeyPoliciesOutput](t)(c.ListKeyPolicies(ctx, &kms.ListKeyPoliciesInput{KeyId: aws.String(id)}))
	if len(lp.PolicyNames) != 1 {
		t.Fatalf("policies %v", lp.PolicyNames)
	}
	must[*kms.UpdateKeyDescriptionOutput](t)(c.UpdateKeyDescription(ctx, &kms.UpdateKeyDescriptionInput{KeyId: aws.String(id), Description: aws.String("new")}))
	_, err = c.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: aws.String(id), PendingWindowInDays: aws.Int32(3)})
	wantCode(t, err, "ValidationException")
	del := must[*kms.ScheduleKeyDeletionOutput](t)(c.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: aws.String(id), PendingWindowInDays: aws.Int32(7)}))
	if del.KeyState != kmstypes.KeyStatePendingDeletion || del.DeletionDate == nil {
		t.Fatalf("schedule %+v", del)
	}
	_, err = c.EnableKey(ctx, &kms.EnableKeyInput{KeyId: aws.String(id)})
	wantCode(t, err, "KMSInvalidStateException")
	must[*kms.CancelKeyDeletionOutput](t)(c.CancelKeyDeletion(ctx, &kms.CancelKeyDeletionInput{KeyId: aws.String(id)}))
	d := must[*kms.DescribeKeyOutput](t)(c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(id)}))
	if d.KeyMetadata.KeyState != kmstypes.KeyStateDisabled || *d.KeyMetadata.Description != "new" {
		t.Fatalf("after cancel %+v", d.KeyMetadata)
	}
	// The configured key is AWS managed: it cannot be disabled.
	_, err = c.DisableKey(ctx, &kms.DisableKeyInput{KeyId: aws.String("cdeb22c5-ef31-629d-bed1-063e81a1f3c0")})
	wantCode(t, err, "AccessDeniedException")
}

// TestSecurityGroupsWithSDK drives every security-group operation with
// aws-sdk-go-v2, and shows a rule change reaching a mount target at once.
func TestSecurityGroupsWithSDK(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	c := ec2.NewFromConfig(testkit.AWSConfig(e.url, regionName, accessKey, secretKey))
	g := must[*ec2.CreateSecurityGroupOutput](t)(c.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{GroupName: aws.String("nfs"),
		Description: aws.String("NFS clients"), VpcId: aws.String(vpcID),
		TagSpecifications: []ec2types.TagSpecification{{ResourceType: ec2types.ResourceTypeSecurityGroup, Tags: []ec2types.Tag{{Key: aws.String("team"), Value: aws.String("dr")}}}}}))
	gid := *g.GroupId
	_, err := c.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{GroupName: aws.String("nfs"), Description: aws.String("again"), VpcId: aws.String(vpcID)})
	wantCode(t, err, "InvalidGroup.Duplicate")
	in := must[*ec2.AuthorizeSecurityGroupIngressOutput](t)(c.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{GroupId: aws.String(gid),
		IpPermissions: []ec2types.IpPermission{{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(2049), ToPort: aws.Int32(2049),
			IpRanges: []ec2types.IpRange{{CidrIp: aws.String("10.1.0.0/16"), Description: aws.String("app")}}}}}))
	if len(in.SecurityGroupRules) != 1 || *in.SecurityGroupRules[0].CidrIpv4 != "10.1.0.0/16" {
		t.Fatalf("authorize %+v", in.SecurityGroupRules)
	}
	_, err = c.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{GroupId: aws.String(gid),
		IpPermissions: []ec2types.IpPermission{{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(2049), ToPort: aws.Int32(2049),
			IpRanges: []ec2types.IpRange{{CidrIp: aws.String("10.1.0.0/16")}}}}})
	wantCode(t, err, "InvalidPermission.Duplicate")
	must[*ec2.AuthorizeSecurityGroupEgressOutput](t)(c.AuthorizeSecurityGroupEgress(ctx, &ec2.AuthorizeSecurityGroupEgressInput{GroupId: aws.String(gid),
		IpPermissions: []ec2types.IpPermission{{IpProtocol: aws.String("udp"), FromPort: aws.Int32(53), ToPort: aws.Int32(53),
			IpRanges: []ec2types.IpRange{{CidrIp: aws.String("10.0.0.2/32")}}}}}))
	rules := must[*ec2.DescribeSecurityGroupRulesOutput](t)(c.DescribeSecurityGroupRules(ctx, &ec2.DescribeSecurityGroupRulesInput{
		Filters: []ec2types.Filter{{Name: aws.String("group-id"), Values: []string{gid}}}}))
	if len(rules.SecurityGroupRules) != 3 {
		t.Fatalf("rules %d", len(rules.SecurityGroupRules))
	}
	must[*ec2.CreateTagsOutput](t)(c.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{gid, *in.SecurityGroupRules[0].SecurityGroupRuleId},
		Tags: []ec2types.Tag{{Key: aws.String("env"), Value: aws.String("prod")}}}))
	must[*ec2.DeleteTagsOutput](t)(c.DeleteTags(ctx, &ec2.DeleteTagsInput{Resources: []string{gid}, Tags: []ec2types.Tag{{Key: aws.String("team")}}}))
	sgs := must[*ec2.DescribeSecurityGroupsOutput](t)(c.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{GroupIds: []string{gid}}))
	sg := sgs.SecurityGroups[0]
	if len(sg.Tags) != 1 || *sg.Tags[0].Key != "env" || len(sg.IpPermissions) != 1 || len(sg.IpPermissionsEgress) != 2 {
		t.Fatalf("group %+v", sg)
	}
	// A mount target in the group admits what the group admits, at once.
	f, err := e.region.CreateFileSystem(ctx, createFS("sg-test"))
	if err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, "file system available", 10*time.Second, func() bool {
		d, err := e.region.DescribeFileSystem(ctx, f.ID)
		return err == nil && d.LifeCycleState == "available"
	})
	mt, err := e.region.CreateMountTarget(ctx, createMT(f.ID, gid))
	if err != nil {
		t.Fatal(err)
	}
	admits := func(addr string) bool {
		spec, _ := e.mts.Spec(mt.ID)
		return slices.ContainsFunc(spec.Ingress, func(p netip.Prefix) bool { return p.Contains(netip.MustParseAddr(addr)) })
	}
	if !admits("10.1.2.3") || admits("127.0.0.1") {
		spec, _ := e.mts.Spec(mt.ID)
		t.Fatalf("mount target ingress %v", spec.Ingress)
	}
	must[*ec2.AuthorizeSecurityGroupIngressOutput](t)(c.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{GroupId: aws.String(gid),
		IpPermissions: []ec2types.IpPermission{{IpProtocol: aws.String("-1"), IpRanges: []ec2types.IpRange{{CidrIp: aws.String("127.0.0.1/32")}}}}}))
	if !admits("127.0.0.1") {
		t.Fatal("a new rule did not reach the mount target")
	}
	must[*ec2.RevokeSecurityGroupIngressOutput](t)(c.RevokeSecurityGroupIngress(ctx, &ec2.RevokeSecurityGroupIngressInput{GroupId: aws.String(gid),
		SecurityGroupRuleIds: []string{*in.SecurityGroupRules[0].SecurityGroupRuleId}}))
	if admits("10.1.2.3") {
		t.Fatal("a revoked rule still admits")
	}
	_, err = c.RevokeSecurityGroupIngress(ctx, &ec2.RevokeSecurityGroupIngressInput{GroupId: aws.String(gid),
		IpPermissions: []ec2types.IpPermission{{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(1), ToPort: aws.Int32(1), IpRanges: []ec2types.IpRange{{CidrIp: aws.String("1.1.1.1/32")}}}}})
	wantCode(t, err, "InvalidPermission.NotFound")
	must[*ec2.RevokeSecurityGroupEgressOutput](t)(c.RevokeSecurityGroupEgress(ctx, &ec2.RevokeSecurityGroupEgressInput{GroupId: aws.String(gid),
		IpPermissions: []ec2types.IpPermission{{IpProtocol: aws.String("udp"), FromPort: aws.Int32(53), ToPort: aws.Int32(53), IpRanges: []ec2types.IpRange{{CidrIp: aws.String("10.0.0.2/32")}}}}}))
	_, err = c.DeleteSecurityGroup(ctx, &ec2.DeleteSecurityGroupInput{GroupId: aws.String(gid)})
	wantCode(t, err, "DependencyViolation")
	if err := e.region.DeleteMountTarget(ctx, mt.ID); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, "mount target gone", 10*time.Second, func() bool { return len(e.region.MountTargetsUsingGroup(gid)) == 0 })
	must[*ec2.DeleteSecurityGroupOutput](t)(c.DeleteSecurityGroup(ctx, &ec2.DeleteSecurityGroupInput{GroupId: aws.String(gid)}))
	_, err = c.DeleteSecurityGroup(ctx, &ec2.DeleteSecurityGroupInput{GroupId: aws.String(gid)})
	wantCode(t, err, "InvalidGroup.NotFound")
	_, err = c.DeleteSecurityGroup(ctx, &ec2.DeleteSecurityGroupInput{GroupId: aws.String(defaultSG)})
	wantCode(t, err, "CannotDelete")
}

const stackTemplate = `
AWSTemplateFormatVersion: '2010-09-09'
Description: IaC test stack
Parameters:
  Subnet: {Type: AWS::EC2::Subnet::Id}
  Name: {Type: String, Default: primary, AllowedValues: [primary, secondary]}
  Secret: {Type: String, NoEcho: true, Default: hush}
Conditions:
  IsPrimary: !Equals [!Ref Name, primary]
Mappings:
  Modes: {primary: {Throughput: elastic}, secondary: {Throughput: bursting}}
Resources:
  Key:
    Type: AWS::KMS::Key
    Properties: {Description: !Sub '${AWS::StackName} data key'}
  KeyAlias:
    Type: AWS::KMS::Alias
    Properties: {AliasName: !Sub 'alias/${AWS::StackName}', TargetKeyId: !GetAtt Key.Arn}
  Group:
    Type: AWS::EC2::SecurityGroup
    Properties:
      GroupDescription: NFS from the app tier
      SecurityGroupIngress: [{IpProtocol: tcp, FromPort: 2049, ToPort: 2049, CidrIp: 10.2.0.0/16}]
  FS:
    Type: AWS::EFS::FileSystem
    DependsOn: KeyAlias
    Properties:
      Encrypted: true
      KmsKeyId: !Join ['', [alias/, !Ref 'AWS::StackName']]
      ThroughputMode: !FindInMap [Modes, !Ref Name, Throughput]
      FileSystemTags: [{Key: Name, Value: !If [IsPrimary, !Ref Name, !Ref 'AWS::NoValue']}]
  MT:
    Type: AWS::EFS::MountTarget
    Properties: {FileSystemId: !Ref FS, SubnetId: !Ref Subnet, SecurityGroups: [!GetAtt Group.GroupId]}
  AP:
    Type: AWS::EFS::AccessPoint
    Properties:
      FileSystemId: !Ref FS
      PosixUser: {Uid: '1000', Gid: '1000'}
      RootDirectory: {Path: /app, CreationInfo: {OwnerUid: '1000', OwnerGid: '1000', Permissions: '750'}}
Outputs:
  FileSystemId: {Value: !Ref FS, Export: {Name: !Sub '${AWS::StackName}-fs'}}
  MountTargetIp: {Value: !GetAtt MT.IpAddress}
  KeyArn: {Value: !GetAtt Key.Arn}
  Zones: {Value: !Join [',', !GetAZs '']}
`

// TestCloudFormationWithSDK drives every CloudFormation operation the
// CLI's commands use, with aws-sdk-go-v2.
func TestCloudFormationWithSDK(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	c := cf.NewFromConfig(testkit.AWSConfig(e.url, regionName, accessKey, secretKey))
	v := must[*cf.ValidateTemplateOutput](t)(c.ValidateTemplate(ctx, &cf.ValidateTemplateInput{TemplateBody: aws.String(stackTemplate)}))
	if len(v.Parameters) != 3 || *v.Description != "IaC test stack" {
		t.Fatalf("validate %+v", v)
	}
	_, err := c.ValidateTemplate(ctx, &cf.ValidateTemplateInput{TemplateBody: aws.String("Resources:\n  X: {Type: AWS::Nope::Thing}\n")})
	wantCode(t, err, "ValidationError")
	if !strings.Contains(err.Error(), "Unrecognized resource types: [AWS::Nope::Thing]") {
		t.Fatalf("message: %v", err)
	}
	_, err = c.CreateStack(ctx, &cf.CreateStackInput{StackName: aws.String("iac"), TemplateBody: aws.String(stackTemplate)})
	wantCode(t, err, "ValidationError") // Subnet has no value
	out := must[*cf.CreateStackOutput](t)(c.CreateStack(ctx, &cf.CreateStackInput{StackName: aws.String("iac"), TemplateBody: aws.String(stackTemplate),
		Parameters: []cftypes.Parameter{{ParameterKey: aws.String("Subnet"), ParameterValue: aws.String(subA)}}, ClientRequestToken: aws.String("create-1"),
		Tags: []cftypes.Tag{{Key: aws.String("owner"), Value: aws.String("ops")}}}))
	again := must[*cf.CreateStackOutput](t)(c.CreateStack(ctx, &cf.CreateStackInput{StackName: aws.String("iac"), TemplateBody: aws.String(stackTemplate),
		Parameters: []cftypes.Parameter{{ParameterKey: aws.String("Subnet"), ParameterValue: aws.String(subA)}}, ClientRequestToken: aws.String("create-1")}))
	if *again.StackId != *out.StackId {
		t.Fatal("a retried CreateStack made another stack")
	}
	if err := cf.NewStackCreateCompleteWaiter(c, func(o *cf.StackCreateCompleteWaiterOptions) {
		o.MinDelay = 50 * time.Millisecond
		o.MaxDelay = time.Second
	}).
		Wait(ctx, &cf.DescribeStacksInput{StackName: out.StackId}, time.Minute); err != nil {
		t.Fatal(err)
	}
	st := must[*cf.DescribeStacksOutput](t)(c.DescribeStacks(ctx, &cf.DescribeStacksInput{StackName: aws.String("iac")})).Stacks[0]
	outputs := map[string]string{}
	for _, o := range st.Outputs {
		outputs[*o.OutputKey] = *o.OutputValue
	}
	if st.StackStatus != cftypes.StackStatusCreateComplete || outputs["Zones"] != "us-east-1a" || !strings.HasPrefix(outputs["MountTargetIp"], "127.1.1.") {
		t.Fatalf("stack %s %v", st.StackStatus, outputs)
	}
	for _, p := range st.Parameters {
		if *p.ParameterKey == "Secret" && *p.ParameterValue != "****" {
			t.Fatal("NoEcho parameter shown")
		}
	}
	fs, err := e.region.DescribeFileSystem(ctx, outputs["FileSystemId"])
	if err != nil || !fs.Encrypted || fs.KMSKeyARN != outputs["KeyArn"] || fs.ThroughputMode != "elastic" || fs.Name != "primary" {
		t.Fatalf("file system %+v %v", fs, err)
	}
	evs := must[*cf.DescribeStackEventsOutput](t)(c.DescribeStackEvents(ctx, &cf.DescribeStackEventsInput{StackName: aws.String("iac")}))
	if n := len(evs.StackEvents); n < 14 || evs.StackEvents[0].ResourceStatus != cftypes.ResourceStatusCreateComplete || *evs.StackEvents[0].ClientRequestToken != "create-1" {
		t.Fatalf("%d events, newest %+v", n, evs.StackEvents[0])
	}
	rs := must[*cf.DescribeStackResourcesOutput](t)(c.DescribeStackResources(ctx, &cf.DescribeStackResourcesInput{StackName: aws.String("iac")}))
	if len(rs.StackResources) != 6 {
		t.Fatalf("%d resources", len(rs.StackResources))
	}
	r := must[*cf.DescribeStackResourceOutput](t)(c.DescribeStackResource(ctx, &cf.DescribeStackResourceInput{StackName: aws.String("iac"), LogicalResourceId: aws.String("FS")}))
	if *r.StackResourceDetail.PhysicalResourceId != outputs["FileSystemId"] {
		t.Fatalf("FS resource %+v", r.StackResourceDetail)
	}
	byPhys := must[*cf.DescribeStackResourcesOutput](t)(c.DescribeStackResources(ctx, &cf.DescribeStackResourcesInput{PhysicalResourceId: aws.String(outputs["FileSystemId"])}))
	if *byPhys.StackResources[0].StackName != "iac" {
		t.Fatal("DescribeStackResources by physical id")
	}
	lr := must[*cf.ListStackResourcesOutput](t)(c.ListStackResources(ctx, &cf.ListStackResourcesInput{StackName: aws.String("iac")}))
	if len(lr.StackResourceSummaries) != 6 {
		t.Fatal("ListStackResources")
	}
	tpl := must[*cf.GetTemplateOutput](t)(c.GetTemplate(ctx, &cf.GetTemplateInput{StackName: aws.String("iac")}))
	if *tpl.TemplateBody != stackTemplate {
		t.Fatal("GetTemplate")
	}
	sum := must[*cf.GetTemplateSummaryOutput](t)(c.GetTemplateSummary(ctx, &cf.GetTemplateSummaryInput{StackName: aws.String("iac")}))
	if len(sum.Parameters) != 3 || len(sum.ResourceTypes) != 6 {
		t.Fatalf("summary %+v", sum)
	}
	ex := must[*cf.ListExportsOutput](t)(c.ListExports(ctx, &cf.ListExportsInput{}))
	if len(ex.Exports) != 1 || *ex.Exports[0].Name != "iac-fs" {
		t.Fatalf("exports %+v", ex.Exports)
	}
	_, err = c.ListImports(ctx, &cf.ListImportsInput{ExportName: aws.String("iac-fs")})
	wantCode(t, err, "ValidationError") // not imported by any stack
	importer := "Resources:\n  AP2:\n    Type: AWS::EFS::AccessPoint\n    Properties: {FileSystemId: !ImportValue iac-fs}\n"
	imp := must[*cf.CreateStackOutput](t)(c.CreateStack(ctx, &cf.CreateStackInput{StackName: aws.String("importer"), TemplateBody: aws.String(importer)}))
	e.stacks.Wait(ctx, *imp.StackId, 30*time.Second)
	li := must[*cf.ListImportsOutput](t)(c.ListImports(ctx, &cf.ListImportsInput{ExportName: aws.String("iac-fs")}))
	if len(li.Imports) != 1 || li.Imports[0] != "importer" {
		t.Fatalf("imports %v", li.Imports)
	}

	// A change set: a tag change in place, the throughput by a parameter.
	updated := strings.Replace(stackTemplate, "Value: !If [IsPrimary, !Ref Name", "Value: !If [IsPrimary, !Sub '${Name}-v2'", 1)
	cs := must[*cf.CreateChangeSetOutput](t)(c.CreateChangeSet(ctx, &cf.CreateChangeSetInput{StackName: aws.String("iac"), ChangeSetName: aws.String("tags"),
		TemplateBody: aws.String(updated), Parameters: []cftypes.Parameter{{ParameterKey: aws.String("Subnet"), UsePreviousValue: aws.Bool(true)}}}))
	if err := cf.NewChangeSetCreateCompleteWaiter(c).Wait(ctx, &cf.DescribeChangeSetInput{ChangeSetName: cs.Id}, time.Minute); err != nil {
		t.Fatal(err)
	}
	d := must[*cf.DescribeChangeSetOutput](t)(c.DescribeChangeSet(ctx, &cf.DescribeChangeSetInput{ChangeSetName: aws.String("tags"), StackName: aws.String("iac")}))
	if len(d.Changes) != 1 || *d.Changes[0].ResourceChange.LogicalResourceId != "FS" || d.Changes[0].ResourceChange.Replacement != cftypes.ReplacementFalse {
		t.Fatalf("changes %+v", d.Changes)
	}
	lc := must[*cf.ListChangeSetsOutput](t)(c.ListChangeSets(ctx, &cf.ListChangeSetsInput{StackName: aws.String("iac")}))
	if len(lc.Summaries) != 1 {
		t.Fatal("ListChangeSets")
	}
	extra := must[*cf.CreateChangeSetOutput](t)(c.CreateChangeSet(ctx, &cf.CreateChangeSetInput{StackName: aws.String("iac"), ChangeSetName: aws.String("other"),
		UsePreviousTemplate: aws.Bool(true), Parameters: []cftypes.Parameter{{ParameterKey: aws.String("Subnet"), UsePreviousValue: aws.Bool(true)},
			{ParameterKey: aws.String("Name"), ParameterValue: aws.String("secondary")}}}))
	must[*cf.DeleteChangeSetOutput](t)(c.DeleteChangeSet(ctx, &cf.DeleteChangeSetInput{ChangeSetName: extra.Id}))
	must[*cf.ExecuteChangeSetOutput](t)(c.ExecuteChangeSet(ctx, &cf.ExecuteChangeSetInput{ChangeSetName: cs.Id, ClientRequestToken: aws.String("exec-1")}))
	if err := cf.NewStackUpdateCompleteWaiter(c, func(o *cf.StackUpdateCompleteWaiterOptions) {
		o.MinDelay = 50 * time.Millisecond
		o.MaxDelay = time.Second
	}).
		Wait(ctx, &cf.DescribeStacksInput{StackName: aws.String("iac")}, time.Minute); err != nil {
		t.Fatal(err)
	}
	if fs2, _ := e.region.DescribeFileSystem(ctx, outputs["FileSystemId"]); fs2.Name != "primary-v2" {
		t.Fatalf("tag not updated in place: %q", fs2.Name)
	}
	_, err = c.UpdateStack(ctx, &cf.UpdateStackInput{StackName: aws.String("iac"), UsePreviousTemplate: aws.Bool(true),
		Parameters: []cftypes.Parameter{{ParameterKey: aws.String("Subnet"), UsePreviousValue: aws.Bool(true)}, {ParameterKey: aws.String("Name"), UsePreviousValue: aws.Bool(true)}, {ParameterKey: aws.String("Secret"), UsePreviousValue: aws.Bool(true)}}})
	wantCode(t, err, "ValidationError") // No updates are to be performed.
	// Name=secondary makes the Name tag's Value AWS::NoValue: the
	// provider's schema refuses it, and the update rolls back.
	must[*cf.UpdateStackOutput](t)(c.UpdateStack(ctx, &cf.UpdateStackInput{StackName: aws.String("iac"), UsePreviousTemplate: aws.Bool(true),
		Parameters: []cftypes.Parameter{{ParameterKey: aws.String("Subnet"), UsePreviousValue: aws.Bool(true)}, {ParameterKey: aws.String("Name"), ParameterValue: aws.String("secondary")}}}))
	if got := e.stacks.Wait(ctx, *out.StackId, time.Minute); got != "UPDATE_ROLLBACK_COMPLETE" {
		t.Fatalf("status %s", got)
	}
	if fs3, _ := e.region.DescribeFileSystem(ctx, outputs["FileSystemId"]); fs3.ThroughputMode != "elastic" || fs3.Name != "primary-v2" {
		t.Fatalf("rollback did not restore the file system: %s %v", fs3.ThroughputMode, fs3.Tags)
	}
	evs = must[*cf.DescribeStackEventsOutput](t)(c.DescribeStackEvents(ctx, &cf.DescribeStackEventsInput{StackName: aws.String("iac")}))
	if !slices.ContainsFunc(evs.StackEvents, func(ev cftypes.StackEvent) bool {
		return ev.ResourceStatus == cftypes.ResourceStatusUpdateFailed && strings.Contains(aws.ToString(ev.ResourceStatusReason), "required key [Value] not found")
	}) {
		t.Fatal("no UPDATE_FAILED event with the schema's message")
	}
	// An update in place through UpdateStack.
	v3 := strings.Replace(updated, "data key'", "data key v3'", 1)
	must[*cf.UpdateStackOutput](t)(c.UpdateStack(ctx, &cf.UpdateStackInput{StackName: aws.String("iac"), TemplateBody: aws.String(v3),
		Parameters: []cftypes.Parameter{{ParameterKey: aws.String("Subnet"), UsePreviousValue: aws.Bool(true)}}}))
	if got := e.stacks.Wait(ctx, *out.StackId, time.Minute); got != "UPDATE_COMPLETE" {
		t.Fatalf("status %s", got)
	}
	if k, _ := e.keys.Describe(ctx, outputs["KeyArn"]); k.Description != "iac data key v3" {
		t.Fatalf("key description %q", k.Description)
	}
	ls := must[*cf.ListStacksOutput](t)(c.ListStacks(ctx, &cf.ListStacksInput{StackStatusFilter: []cftypes.StackStatus{cftypes.StackStatusUpdateComplete}}))
	if len(ls.StackSummaries) != 1 || *ls.StackSummaries[0].StackName != "iac" {
		t.Fatalf("list %+v", ls.StackSummaries)
	}
	// Termination protection, then deletion (dependents first; the
	// importer must go before the export).
	must[*cf.UpdateTerminationProtectionOutput](t)(c.UpdateTerminationProtection(ctx, &cf.UpdateTerminationProtectionInput{StackName: aws.String("iac"), EnableTerminationProtection: aws.Bool(true)}))
	_, err = c.DeleteStack(ctx, &cf.DeleteStackInput{StackName: aws.String("iac")})
	wantCode(t, err, "ValidationError")
	must[*cf.UpdateTerminationProtectionOutput](t)(c.UpdateTerminationProtection(ctx, &cf.UpdateTerminationProtectionInput{StackName: aws.String("iac"), EnableTerminationProtection: aws.Bool(false)}))
	must[*cf.DeleteStackOutput](t)(c.DeleteStack(ctx, &cf.DeleteStackInput{StackName: aws.String("iac")}))
	e.stacks.Wait(ctx, *out.StackId, time.Minute)
	if s := must[*cf.DescribeStacksOutput](t)(c.DescribeStacks(ctx, &cf.DescribeStacksInput{StackName: out.StackId})).Stacks[0]; s.StackStatus != cftypes.StackStatusDeleteFailed ||
		!strings.Contains(*s.StackStatusReason, "in use by importer") {
		t.Fatalf("delete of an exporting stack: %s %v", s.StackStatus, aws.ToString(s.StackStatusReason))
	}
	must[*cf.DeleteStackOutput](t)(c.DeleteStack(ctx, &cf.DeleteStackInput{StackName: aws.String("importer")}))
	e.stacks.Wait(ctx, *imp.StackId, time.Minute)
	must[*cf.DeleteStackOutput](t)(c.DeleteStack(ctx, &cf.DeleteStackInput{StackName: aws.String("iac")}))
	if err := cf.NewStackDeleteCompleteWaiter(c, func(o *cf.StackDeleteCompleteWaiterOptions) {
		o.MinDelay = 50 * time.Millisecond
		o.MaxDelay = time.Second
	}).
		Wait(ctx, &cf.DescribeStacksInput{StackName: aws.String("iac")}, time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := e.region.DescribeFileSystem(ctx, outputs["FileSystemId"]); err == nil {
		t.Fatal("file system left after the stack was deleted")
	}
	if len(e.net.Groups()) != 1 {
		t.Fatalf("security groups left: %d", len(e.net.Groups()))
	}
	k, err := e.keys.Describe(ctx, outputs["KeyArn"])
	if err != nil || k.State != "PendingDeletion" {
		t.Fatalf("the stack's key is not pending deletion: %+v %v", k.State, err)
	}
}
