"""Every KMS, security-group and CloudFormation operation with boto3,
against the endpoint in AWS_ENDPOINT_URL. Prints "ok" at the end; any
failed expectation raises."""
import os
import sys

import boto3
import botocore.exceptions

subnet, template = sys.argv[1], open(sys.argv[2]).read()
kms = boto3.client("kms")
ec2 = boto3.client("ec2")
cf = boto3.client("cloudformation")


def code(fn, **kw):
    try:
        fn(**kw)
    except botocore.exceptions.ClientError as e:
        return e.response["Error"]["Code"]
    raise AssertionError("no error from %s" % fn.__name__)


# KMS
key = kms.create_key(Description="boto3 key", Tags=[{"TagKey": "team", "TagValue": "dr"}])["KeyMetadata"]
kid = key["KeyId"]
assert key["KeyState"] == "Enabled" and key["Arn"].endswith(kid)
kms.create_alias(AliasName="alias/boto", TargetKeyId=kid)
assert kms.describe_key(KeyId="alias/boto")["KeyMetadata"]["KeyId"] == kid
assert len(kms.list_keys()["Keys"]) == 2
k2 = kms.create_key()["KeyMetadata"]["KeyId"]
kms.update_alias(AliasName="alias/boto", TargetKeyId=k2)
assert [a["AliasName"] for a in kms.list_aliases(KeyId=k2)["Aliases"]] == ["alias/boto"]
kms.delete_alias(AliasName="alias/boto")
kms.disable_key(KeyId=kid)
assert code(kms.rotate_key_on_demand, KeyId=kid) == "DisabledException"
kms.enable_key(KeyId=kid)
kms.enable_key_rotation(KeyId=kid)
assert kms.get_key_rotation_status(KeyId=kid)["KeyRotationEnabled"] is True
kms.rotate_key_on_demand(KeyId=kid)
assert kms.list_key_rotations(KeyId=kid)["Rotations"][0]["RotationType"] == "ON_DEMAND"
kms.disable_key_rotation(KeyId=kid)
kms.tag_resource(KeyId=kid, Tags=[{"TagKey": "env", "TagValue": "prod"}])
kms.untag_resource(KeyId=kid, TagKeys=["team"])
assert [t["TagKey"] for t in kms.list_resource_tags(KeyId=kid)["Tags"]] == ["env"]
policy = '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"kms:*","Resource":"*"}]}'
kms.put_key_policy(KeyId=kid, PolicyName="default", Policy=policy)
assert kms.get_key_policy(KeyId=kid, PolicyName="default")["Policy"] == policy
assert kms.list_key_policies(KeyId=kid)["PolicyNames"] == ["default"]
kms.update_key_description(KeyId=kid, Description="renamed")
assert code(kms.schedule_key_deletion, KeyId=k2, PendingWindowInDays=6) == "ValidationException"
assert kms.schedule_key_deletion(KeyId=k2, PendingWindowInDays=7)["KeyState"] == "PendingDeletion"
kms.cancel_key_deletion(KeyId=k2)
assert code(kms.describe_key, KeyId="alias/none") == "NotFoundException"

# Security groups
gid = ec2.create_security_group(GroupName="boto-nfs", Description="NFS from boto3")["GroupId"]
rule = ec2.authorize_security_group_ingress(GroupId=gid, IpPermissions=[{"IpProtocol": "tcp", "FromPort": 2049, "ToPort": 2049,
    "IpRanges": [{"CidrIp": "10.8.0.0/16"}]}])["SecurityGroupRules"][0]["SecurityGroupRuleId"]
assert code(ec2.authorize_security_group_ingress, GroupId=gid, IpPermissions=[{"IpProtocol": "tcp", "FromPort": 2049, "ToPort": 2049,
    "IpRanges": [{"CidrIp": "10.8.0.0/16"}]}]) == "InvalidPermission.Duplicate"
ec2.authorize_security_group_egress(GroupId=gid, IpPermissions=[{"IpProtocol": "udp", "FromPort": 53, "ToPort": 53, "IpRanges": [{"CidrIp": "10.0.0.2/32"}]}])
rules = ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [gid]}])["SecurityGroupRules"]
assert len(rules) == 3, rules
ec2.create_tags(Resources=[gid], Tags=[{"Key": "team", "Value": "dr"}])
ec2.delete_tags(Resources=[gid], Tags=[{"Key": "team"}])
assert ec2.describe_security_groups(GroupIds=[gid])["SecurityGroups"][0]["Tags"] == []
ec2.revoke_security_group_ingress(GroupId=gid, SecurityGroupRuleIds=[rule])
ec2.revoke_security_group_egress(GroupId=gid, IpPermissions=[{"IpProtocol": "udp", "FromPort": 53, "ToPort": 53, "IpRanges": [{"CidrIp": "10.0.0.2/32"}]}])
ec2.delete_security_group(GroupId=gid)
assert code(ec2.delete_security_group, GroupId=gid) == "InvalidGroup.NotFound"

# CloudFormation
assert cf.validate_template(TemplateBody=template)["Description"] == "IaC test stack"
assert code(cf.validate_template, TemplateBody="Resources: {}") == "ValidationError"
sid = cf.create_stack(StackName="boto", TemplateBody=template, Parameters=[{"ParameterKey": "Subnet", "ParameterValue": subnet}],
                      ClientRequestToken="boto-create")["StackId"]
cf.get_waiter("stack_create_complete").wait(StackName="boto")
stack = cf.describe_stacks(StackName="boto")["Stacks"][0]
assert stack["StackStatus"] == "CREATE_COMPLETE", stack
assert cf.describe_stack_events(StackName="boto")["StackEvents"][0]["ResourceStatus"] == "CREATE_COMPLETE"
assert len(cf.describe_stack_resources(StackName="boto")["StackResources"]) == 6
fs = cf.describe_stack_resource(StackName="boto", LogicalResourceId="FS")["StackResourceDetail"]["PhysicalResourceId"]
assert fs.startswith("fs-")
assert len(cf.list_stack_resources(StackName="boto")["StackResourceSummaries"]) == 6
assert [s["StackName"] for s in cf.list_stacks(StackStatusFilter=["CREATE_COMPLETE"])["StackSummaries"]] == ["boto"]
assert "IaC test stack" in cf.get_template(StackName="boto")["TemplateBody"]
assert len(cf.get_template_summary(StackName="boto")["Parameters"]) == 3
assert [x["Name"] for x in cf.list_exports()["Exports"]] == ["boto-fs"]
assert code(cf.list_imports, ExportName="boto-fs") == "ValidationError"
v2 = template.replace("data key'", "data key v2'")
cs = cf.create_change_set(StackName="boto", ChangeSetName="v2", TemplateBody=v2,
                          Parameters=[{"ParameterKey": "Subnet", "UsePreviousValue": True}])["Id"]
cf.get_waiter("change_set_create_complete").wait(ChangeSetName=cs)
change = cf.describe_change_set(ChangeSetName=cs)["Changes"][0]["ResourceChange"]
assert (change["LogicalResourceId"], change["Action"], change["Replacement"]) == ("Key", "Modify", "False"), change
assert [c["ChangeSetName"] for c in cf.list_change_sets(StackName="boto")["Summaries"]] == ["v2"]
other = cf.create_change_set(StackName="boto", ChangeSetName="other", UsePreviousTemplate=True,
                             Parameters=[{"ParameterKey": "Subnet", "UsePreviousValue": True}, {"ParameterKey": "Secret", "ParameterValue": "x"}])["Id"]
cf.delete_change_set(ChangeSetName=other)
cf.execute_change_set(ChangeSetName=cs)
cf.get_waiter("stack_update_complete").wait(StackName="boto")
assert code(cf.update_stack, StackName="boto", UsePreviousTemplate=True, Parameters=[
    {"ParameterKey": k, "UsePreviousValue": True} for k in ("Subnet", "Name", "Secret")]) == "ValidationError"
cf.update_stack(StackName="boto", TemplateBody=template.replace("data key'", "data key v3'"),
                Parameters=[{"ParameterKey": "Subnet", "UsePreviousValue": True}])
cf.get_waiter("stack_update_complete").wait(StackName="boto")
cf.update_termination_protection(StackName="boto", EnableTerminationProtection=True)
assert code(cf.delete_stack, StackName="boto") == "ValidationError"
cf.update_termination_protection(StackName="boto", EnableTerminationProtection=False)
cf.delete_stack(StackName="boto")
cf.get_waiter("stack_delete_complete").wait(StackName="boto")
assert cf.describe_stacks(StackName=sid)["Stacks"][0]["StackStatus"] == "DELETE_COMPLETE"
print("ok")
