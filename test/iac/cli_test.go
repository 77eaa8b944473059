package iac

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/regionfs/regionfs/internal/testkit"
)

// cli runs the aws CLI (aws-cli 1.45 under pyenv, first on PATH) against
// the test region.
type cli struct {
	t   *testing.T
	bin string
	env []string
	// deployed is when the last `cloudformation deploy` began: the CLI
	// names its change set by the epoch second it starts in, so a second
	// deploy of a stack in the same second is refused with
	// AlreadyExistsException (by AWS too: aws-cli#10315).
	deployed time.Time
}

func newCLI(t *testing.T, e *env) *cli {
	return &cli{t: t, bin: testkit.NeedTool(t, "aws"), env: e.cliEnv(t)}
}

func (c *cli) run(args ...string) (string, string, error) {
	if len(args) > 1 && args[0] == "cloudformation" && args[1] == "deploy" {
		if next := c.deployed.Truncate(time.Second).Add(time.Second); time.Now().Before(next) {
			time.Sleep(time.Until(next))
		}
		c.deployed = time.Now()
	}
	start := time.Now()
	defer func() {
		if d := time.Since(start); d > 5*time.Second {
			c.t.Logf("aws %s took %v", strings.Join(args, " "), d.Round(time.Millisecond))
		}
	}()
	cmd := exec.Command(c.bin, args...)
	cmd.Env = c.env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return strings.TrimSpace(out.String()), strings.TrimSpace(errb.String()), err
}

// ok runs a command that must succeed and returns its output.
func (c *cli) ok(args ...string) string {
	c.t.Helper()
	out, errOut, err := c.run(args...)
	if err != nil {
		c.t.Fatalf("aws %s: %v\n%s", strings.Join(args, " "), err, errOut)
	}
	return out
}

// fails runs a command that must fail with code in its message.
func (c *cli) fails(code string, args ...string) {
	c.t.Helper()
	_, errOut, err := c.run(args...)
	if err == nil || !strings.Contains(errOut, "("+code+")") {
		c.t.Fatalf("aws %s: want %s, got %v %s", strings.Join(args, " "), code, err, errOut)
	}
}

// TestWithCLI runs every KMS, security-group and CloudFormation command
// (deploy and the waiters included) with the aws CLI.
func TestWithCLI(t *testing.T) {
	e := newEnv(t)
	c := newCLI(t, e)
	txt := []string{"--output", "text"}
	q := func(args ...string) string { return c.ok(append(args, txt...)...) }

	// KMS.
	key := q("kms", "create-key", "--description", "cli key", "--tags", "TagKey=team,TagValue=dr", "--query", "KeyMetadata.KeyId")
	c.ok("kms", "create-alias", "--alias-name", "alias/cli", "--target-key-id", key)
	if got := q("kms", "describe-key", "--key-id", "alias/cli", "--query", "KeyMetadata.[KeyId,KeyState,KeyManager]"); got != key+"\tEnabled\tCUSTOMER" {
		t.Fatalf("describe-key: %q", got)
	}
	if got := q("kms", "list-keys", "--query", "length(Keys)"); got != "2" {
		t.Fatalf("list-keys: %s", got)
	}
	key2 := q("kms", "create-key", "--query", "KeyMetadata.KeyId")
	c.ok("kms", "update-alias", "--alias-name", "alias/cli", "--target-key-id", key2)
	if got := q("kms", "list-aliases", "--key-id", key2, "--query", "Aliases[].AliasName"); got != "alias/cli" {
		t.Fatalf("list-aliases: %q", got)
	}
	c.ok("kms", "delete-alias", "--alias-name", "alias/cli")
	c.ok("kms", "disable-key", "--key-id", key)
	c.fails("DisabledException", "kms", "enable-key-rotation", "--key-id", key)
	c.ok("kms", "enable-key", "--key-id", key)
	c.ok("kms", "enable-key-rotation", "--key-id", key, "--rotation-period-in-days", "180")
	if got := q("kms", "get-key-rotation-status", "--key-id", key, "--query", "[KeyRotationEnabled,RotationPeriodInDays]"); got != "True\t180" {
		t.Fatalf("rotation status %q", got)
	}
	c.ok("kms", "rotate-key-on-demand", "--key-id", key)
	if got := q("kms", "list-key-rotations", "--key-id", key, "--query", "Rotations[].RotationType"); got != "ON_DEMAND" {
		t.Fatalf("rotations %q", got)
	}
	c.ok("kms", "disable-key-rotation", "--key-id", key)
	c.ok("kms", "tag-resource", "--key-id", key, "--tags", "TagKey=env,TagValue=prod")
	c.ok("kms", "untag-resource", "--key-id", key, "--tag-keys", "team")
	if got := q("kms", "list-resource-tags", "--key-id", key, "--query", "Tags[].TagKey"); got != "env" {
		t.Fatalf("tags %q", got)
	}
	pol := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"kms:*","Resource":"*"}]}`
	c.ok("kms", "put-key-policy", "--key-id", key, "--policy-name", "default", "--policy", pol)
	if got := q("kms", "get-key-policy", "--key-id", key, "--policy-name", "default", "--query", "Policy"); got != pol {
		t.Fatalf("policy %q", got)
	}
	if got := q("kms", "list-key-policies", "--key-id", key, "--query", "PolicyNames"); got != "default" {
		t.Fatalf("list-key-policies %q", got)
	}
	c.ok("kms", "update-key-description", "--key-id", key, "--description", "renamed")
	c.fails("ValidationException", "kms", "schedule-key-deletion", "--key-id", key2, "--pending-window-in-days", "31")
	if got := q("kms", "schedule-key-deletion", "--key-id", key2, "--pending-window-in-days", "7", "--query", "KeyState"); got != "PendingDeletion" {
		t.Fatalf("schedule %q", got)
	}
	c.ok("kms", "cancel-key-deletion", "--key-id", key2)
	c.fails("NotFoundException", "kms", "describe-key", "--key-id", "alias/none")

	// Security groups.
	g := q("ec2", "create-security-group", "--group-name", "cli-nfs", "--description", "NFS from the CLI", "--query", "GroupId")
	c.fails("InvalidGroup.Duplicate", "ec2", "create-security-group", "--group-name", "cli-nfs", "--description", "again")
	rule := q("ec2", "authorize-security-group-ingress", "--group-id", g, "--protocol", "tcp", "--port", "2049", "--cidr", "10.9.0.0/16", "--query", "SecurityGroupRules[0].SecurityGroupRuleId")
	c.fails("InvalidPermission.Duplicate", "ec2", "authorize-security-group-ingress", "--group-id", g, "--protocol", "tcp", "--port", "2049", "--cidr", "10.9.0.0/16")
	c.ok("ec2", "authorize-security-group-egress", "--group-id", g, "--ip-permissions", "IpProtocol=udp,FromPort=53,ToPort=53,IpRanges=[{CidrIp=10.0.0.2/32}]")
	if got := q("ec2", "describe-security-group-rules", "--filters", "Name=group-id,Values="+g, "--query", "length(SecurityGroupRules)"); got != "3" {
		t.Fatalf("rules %s", got)
	}
	c.ok("ec2", "create-tags", "--resources", g, rule, "--tags", "Key=team,Value=dr")
	c.ok("ec2", "delete-tags", "--resources", rule, "--tags", "Key=team")
	if got := q("ec2", "describe-security-groups", "--group-ids", g, "--query", "SecurityGroups[0].[GroupName,Tags[0].Value,IpPermissions[0].IpRanges[0].CidrIp]"); got != "cli-nfs\tdr\t10.9.0.0/16" {
		t.Fatalf("describe-security-groups %q", got)
	}
	c.ok("ec2", "revoke-security-group-ingress", "--group-id", g, "--security-group-rule-ids", rule)
	c.ok("ec2", "revoke-security-group-egress", "--group-id", g, "--ip-permissions", "IpProtocol=udp,FromPort=53,ToPort=53,IpRanges=[{CidrIp=10.0.0.2/32}]")
	c.fails("InvalidPermission.NotFound", "ec2", "revoke-security-group-ingress", "--group-id", g, "--protocol", "tcp", "--port", "22", "--cidr", "1.1.1.1/32")
	c.ok("ec2", "delete-security-group", "--group-id", g)
	c.fails("InvalidGroup.NotFound", "ec2", "delete-security-group", "--group-id", g)

	// CloudFormation.
	dir := t.TempDir()
	tpl := filepath.Join(dir, "stack.yaml")
	os.WriteFile(tpl, []byte(stackTemplate), 0o600)
	if got := q("cloudformation", "validate-template", "--template-body", "file://"+tpl, "--query", "Description"); got != "IaC test stack" {
		t.Fatalf("validate-template %q", got)
	}
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("Resources:\n  A:\n    Type: AWS::EFS::FileSystem\n    Properties:\n      Size: !GetAtt B.Arn\n"), 0o600)
	c.fails("ValidationError", "cloudformation", "validate-template", "--template-body", "file://"+bad)
	id := q("cloudformation", "create-stack", "--stack-name", "cli", "--template-body", "file://"+tpl, "--parameters", "ParameterKey=Subnet,ParameterValue="+subA, "--query", "StackId")
	c.ok("cloudformation", "wait", "stack-create-complete", "--stack-name", "cli")
	if got := q("cloudformation", "describe-stacks", "--stack-name", "cli", "--query", "Stacks[0].StackStatus"); got != "CREATE_COMPLETE" {
		t.Fatalf("status %q", got)
	}
	if got := q("cloudformation", "describe-stack-events", "--stack-name", "cli", "--query", "StackEvents[0].ResourceStatus"); got != "CREATE_COMPLETE" {
		t.Fatalf("events %q", got)
	}
	if got := q("cloudformation", "describe-stack-resources", "--stack-name", "cli", "--query", "length(StackResources)"); got != "6" {
		t.Fatalf("resources %q", got)
	}
	fs := q("cloudformation", "describe-stack-resource", "--stack-name", "cli", "--logical-resource-id", "FS", "--query", "StackResourceDetail.PhysicalResourceId")
	if !strings.HasPrefix(fs, "fs-") {
		t.Fatalf("FS %q", fs)
	}
	if got := q("cloudformation", "list-stack-resources", "--stack-name", "cli", "--query", "length(StackResourceSummaries)"); got != "6" {
		t.Fatalf("list-stack-resources %q", got)
	}
	if got := q("cloudformation", "list-stacks", "--stack-status-filter", "CREATE_COMPLETE", "--query", "StackSummaries[].StackName"); got != "cli" {
		t.Fatalf("list-stacks %q", got)
	}
	if got := c.ok("cloudformation", "get-template", "--stack-name", "cli", "--query", "TemplateBody", "--output", "json"); !strings.Contains(got, "IaC test stack") {
		t.Fatalf("get-template %q", got)
	}
	if got := q("cloudformation", "get-template-summary", "--stack-name", "cli", "--query", "length(Parameters)"); got != "3" {
		t.Fatalf("get-template-summary %q", got)
	}
	if got := q("cloudformation", "list-exports", "--query", "Exports[].Name"); got != "cli-fs" {
		t.Fatalf("list-exports %q", got)
	}
	c.fails("ValidationError", "cloudformation", "list-imports", "--export-name", "cli-fs")
	updated := filepath.Join(dir, "updated.yaml")
	os.WriteFile(updated, []byte(strings.Replace(stackTemplate, "data key'", "data key v2'", 1)), 0o600)
	cs := q("cloudformation", "create-change-set", "--stack-name", "cli", "--change-set-name", "v2", "--template-body", "file://"+updated,
		"--parameters", "ParameterKey=Subnet,UsePreviousValue=true", "--query", "Id")
	c.ok("cloudformation", "wait", "change-set-create-complete", "--change-set-name", cs)
	if got := q("cloudformation", "describe-change-set", "--change-set-name", "v2", "--stack-name", "cli", "--query", "Changes[0].ResourceChange.[LogicalResourceId,Action,Replacement]"); got != "Key\tModify\tFalse" {
		t.Fatalf("describe-change-set %q", got)
	}
	if got := q("cloudformation", "list-change-sets", "--stack-name", "cli", "--query", "Summaries[].ChangeSetName"); got != "v2" {
		t.Fatalf("list-change-sets %q", got)
	}
	other := q("cloudformation", "create-change-set", "--stack-name", "cli", "--change-set-name", "other", "--use-previous-template",
		"--parameters", "ParameterKey=Subnet,UsePreviousValue=true", "ParameterKey=Secret,ParameterValue=changed", "--query", "Id")
	c.ok("cloudformation", "delete-change-set", "--change-set-name", other)
	c.ok("cloudformation", "execute-change-set", "--change-set-name", cs)
	c.ok("cloudformation", "wait", "stack-update-complete", "--stack-name", "cli")
	c.fails("ValidationError", "cloudformation", "update-stack", "--stack-name", "cli", "--use-previous-template", "--parameters",
		"ParameterKey=Subnet,UsePreviousValue=true", "ParameterKey=Name,UsePreviousValue=true", "ParameterKey=Secret,UsePreviousValue=true")
	v3 := filepath.Join(dir, "v3.yaml")
	os.WriteFile(v3, []byte(strings.Replace(stackTemplate, "data key'", "data key v3'", 1)), 0o600)
	c.ok("cloudformation", "update-stack", "--stack-name", "cli", "--template-body", "file://"+v3, "--parameters", "ParameterKey=Subnet,UsePreviousValue=true")
	c.ok("cloudformation", "wait", "stack-update-complete", "--stack-name", "cli")
	// deploy: no changes → exit 0 with --no-fail-on-empty-changeset.
	out := c.ok("cloudformation", "deploy", "--template-file", v3, "--stack-name", "cli", "--parameter-overrides", "Subnet="+subA, "--no-fail-on-empty-changeset")
	if !strings.Contains(out, "No changes to deploy") {
		t.Fatalf("deploy of an unchanged template: %q", out)
	}
	c.ok("cloudformation", "update-termination-protection", "--stack-name", "cli", "--enable-termination-protection")
	c.fails("ValidationError", "cloudformation", "delete-stack", "--stack-name", "cli")
	c.ok("cloudformation", "update-termination-protection", "--stack-name", "cli", "--no-enable-termination-protection")
	c.ok("cloudformation", "delete-stack", "--stack-name", "cli")
	c.ok("cloudformation", "wait", "stack-delete-complete", "--stack-name", "cli")
	if got := q("cloudformation", "describe-stacks", "--stack-name", id, "--query", "Stacks[0].StackStatus"); got != "DELETE_COMPLETE" {
		t.Fatalf("deleted stack %q", got)
	}
	c.fails("ValidationError", "cloudformation", "describe-stacks", "--stack-name", "cli")
}
