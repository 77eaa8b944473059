package iace2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/regionfs/regionfs/internal/testkit"
)

// awsProviderVersion is the hashicorp/aws provider the Terraform test
// pins; it is installed from a filesystem mirror (REGIONFS_TF_PLUGINS,
// default /opt/tf-plugins), never downloaded.
const awsProviderVersion = "5.100.0"

// tfConfig is what a team that keeps its DR as Terraform code writes: an
// encrypted file system with life-cycle policies and tags, a mount target,
// an access point, a backup policy, a file system policy that refuses
// plain-text mounts, and a replication configuration to us-west-2. Only
// the provider's endpoints point at regionfs. %s: the provider version,
// then the edge's address three times.
const tfConfig = `terraform {
  required_providers {
    aws = { source = "hashicorp/aws", version = "%s" }
  }
}

variable "subnet" {}
variable "sg" {}
variable "name" { default = "tf-efs" }
variable "ia" { default = "AFTER_30_DAYS" }

provider "aws" {
  region                      = "us-east-1"
  skip_credentials_validation = true
  skip_requesting_account_id  = true
  skip_metadata_api_check     = true
  endpoints {
    efs = "http://%s"
    ec2 = "http://%s"
    sts = "http://%s"
  }
}

resource "aws_efs_file_system" "fs" {
  creation_token   = "tf-e2e"
  encrypted        = true
  performance_mode = "generalPurpose"
  throughput_mode  = "elastic"
  lifecycle_policy {
    transition_to_ia = var.ia
  }
  lifecycle_policy {
    transition_to_primary_storage_class = "AFTER_1_ACCESS"
  }
  tags = { Name = var.name, team = "storage" }
}

resource "aws_efs_mount_target" "mt" {
  file_system_id  = aws_efs_file_system.fs.id
  subnet_id       = var.subnet
  security_groups = [var.sg]
}

resource "aws_efs_access_point" "app" {
  file_system_id = aws_efs_file_system.fs.id
  posix_user {
    uid = 1000
    gid = 1000
  }
  root_directory {
    path = "/app"
    creation_info {
      owner_uid   = 1000
      owner_gid   = 1000
      permissions = "755"
    }
  }
  tags = { Name = "app" }
}

resource "aws_efs_backup_policy" "bp" {
  file_system_id = aws_efs_file_system.fs.id
  backup_policy {
    status = "ENABLED"
  }
}

resource "aws_efs_file_system_policy" "tls" {
  file_system_id = aws_efs_file_system.fs.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "tls-only"
      Effect    = "Deny"
      Principal = { AWS = "*" }
      Action    = "*"
      Resource  = aws_efs_file_system.fs.arn
      Condition = { Bool = { "aws:SecureTransport" = "false" } }
    }]
  })
}

resource "aws_efs_replication_configuration" "dr" {
  source_file_system_id = aws_efs_file_system.fs.id
  destination {
    region = "us-west-2"
  }
}

output "fs" { value = aws_efs_file_system.fs.id }
output "mt_ip" { value = aws_efs_mount_target.mt.ip_address }
output "ap" { value = aws_efs_access_point.app.id }
output "replica" { value = aws_efs_replication_configuration.dr.destination[0].file_system_id }
`

// terraform runs the Terraform CLI in dir with region r's credentials.
type terraform struct {
	t   *testing.T
	bin string
	dir string
	env []string
}

// startEdge starts the edge on 127.71.0.9:7070 in front of both regions:
// the provider signs each call for the region it means (a replication's
// destination is deleted and watched in us-west-2), and the edge forwards
// it to that region, as `regionfs dev`'s edge does.
func startEdge(t *testing.T, dir string) string {
	t.Helper()
	const addr = "127.71.0.9:7070"
	cfg := filepath.Join(dir, "edge.yaml")
	os.WriteFile(cfg, []byte(`listen: "`+addr+`"
credentials: [{access_key_id: `+accessKey+`, secret_access_key: `+secretKey+`}]
regions:
  - {name: us-east-1, api: "127.71.0.1:7070"}
  - {name: us-west-2, api: "127.72.0.1:7070"}
`), 0o600)
	p := &testkit.Process{Args: []string{testkit.BuildRegionfs(t), "edge", "--config", cfg}, Log: filepath.Join(dir, "edge.log")}
	p.Start(t, "http://"+addr)
	t.Cleanup(p.Stop)
	return addr
}

// needTerraform returns the Terraform CLI and the filesystem mirror that
// holds the hashicorp/aws provider, or skips: neither Terraform nor the
// provider is a Debian package, so CI installs neither; they run where the
// machine has them (REGIONFS_REQUIRE_TERRAFORM=1 makes their absence fail).
func needTerraform(t *testing.T) (bin, mirror string) {
	t.Helper()
	mirror = os.Getenv("REGIONFS_TF_PLUGINS")
	if mirror == "" {
		mirror = "/opt/tf-plugins"
	}
	absent := func(format string, args ...any) {
		t.Helper()
		if os.Getenv("REGIONFS_REQUIRE_TERRAFORM") == "1" {
			t.Fatalf(format, args...)
		}
		t.Skipf(format+" (set REGIONFS_REQUIRE_TERRAFORM=1 to fail instead)", args...)
	}
	bin, err := exec.LookPath("terraform")
	if err != nil {
		absent("terraform is not on PATH")
	}
	if _, err := os.Stat(filepath.Join(mirror, "registry.terraform.io/hashicorp/aws", awsProviderVersion)); err != nil {
		absent("the hashicorp/aws provider %s is not in the filesystem mirror %s (REGIONFS_TF_PLUGINS)", awsProviderVersion, mirror)
	}
	return bin, mirror
}

// newTerraform writes tfConfig, with the provider's endpoints at the edge
// (endpoint), into a directory of its own and returns a runner there with
// region r's credentials.
func newTerraform(t *testing.T, bin, mirror string, r *region, endpoint string) *terraform {
	t.Helper()
	home := t.TempDir()
	rc := filepath.Join(home, "terraformrc")
	os.WriteFile(rc, fmt.Appendf(nil, `provider_installation {
  filesystem_mirror {
    path    = %q
    include = ["registry.terraform.io/hashicorp/*"]
  }
  direct {
    exclude = ["registry.terraform.io/*/*"]
  }
}
`, mirror), 0o600)
	dir := t.TempDir()
	api := endpoint
	if err := os.WriteFile(filepath.Join(dir, "main.tf"), fmt.Appendf(nil, tfConfig, awsProviderVersion, api, api, api), 0o600); err != nil {
		t.Fatal(err)
	}
	env := append(append([]string{}, r.env...), "TF_CLI_CONFIG_FILE="+rc, "TF_IN_AUTOMATION=1", "CHECKPOINT_DISABLE=1",
		"TF_DATA_DIR="+filepath.Join(dir, ".terraform"), "HOME="+home)
	return &terraform{t: t, bin: bin, dir: dir, env: env}
}

func (tf *terraform) run(args ...string) (string, int) {
	tf.t.Helper()
	args = append(args, "-no-color")
	if args[0] != "output" {
		args = append(args, "-input=false")
	}
	cmd := exec.Command(tf.bin, args...)
	cmd.Dir, cmd.Env = tf.dir, tf.env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		tf.t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil && cmd.ProcessState == nil {
			tf.t.Fatal(err)
		}
	case <-time.After(5 * time.Minute):
		cmd.Process.Kill()
		<-done
		tf.t.Fatalf("terraform %s: no end after 5 minutes\n%s", strings.Join(args, " "), out.String())
	}
	return out.String(), cmd.ProcessState.ExitCode()
}

func (tf *terraform) must(args ...string) string {
	tf.t.Helper()
	out, code := tf.run(args...)
	if code != 0 {
		tf.t.Fatalf("terraform %s: exit %d\n%s", strings.Join(args, " "), code, out)
	}
	return out
}

// TestTerraform declares a replicated file system with the real Terraform
// CLI and hashicorp/aws provider: apply creates every resource, a second
// plan finds nothing to change (every attribute reads back as declared),
// an NFS client in plain text is refused by the policy Terraform set, the
// replica exists in us-west-2, an in-place change (tags, life cycle)
// applies without replacing the file system, and destroy removes
// everything it created (the replica stays in us-west-2, as on AWS).
func TestTerraform(t *testing.T) {
	bin, mirror := needTerraform(t)
	east, west := startPair(t)
	tf := newTerraform(t, bin, mirror, east, startEdge(t, t.TempDir()))
	subnet := east.must("ec2", "describe-subnets", "--query", "Subnets[0].SubnetId")
	group := east.must("ec2", "describe-security-groups", "--query", "SecurityGroups[0].GroupId")
	vars := []string{"-var", "subnet=" + subnet, "-var", "sg=" + group}

	tf.must("init")
	out := tf.must(append([]string{"apply", "-auto-approve"}, vars...)...)
	t.Logf("$ terraform apply\n%s", tail(out, 12))
	if !strings.Contains(out, "Resources: 6 added, 0 changed, 0 destroyed") {
		t.Fatalf("apply:\n%s", out)
	}
	output := func(name string) string {
		return strings.TrimSpace(tf.must("output", "-raw", name))
	}
	fs, ip, ap, replica := output("fs"), output("mt_ip"), output("ap"), output("replica")
	if got := east.must("efs", "describe-file-systems", "--file-system-id", fs, "--query", "FileSystems[0].[Name,Encrypted,ThroughputMode]"); got != "tf-efs\tTrue\telastic" {
		t.Fatalf("file system %s: %q", fs, got)
	}
	if got := east.must("efs", "describe-access-points", "--access-point-id", ap, "--query", "AccessPoints[0].RootDirectory.Path"); got != "/app" {
		t.Fatalf("access point %s root: %q", ap, got)
	}
	if got := west.must("efs", "describe-file-systems", "--file-system-id", replica, "--query", "FileSystems[0].FileSystemProtection.ReplicationOverwriteProtection"); got != "REPLICATING" {
		t.Fatalf("replica %s protection: %q", replica, got)
	}

	// Declared and real agree: nothing to change.
	if out, code := tf.run(append([]string{"plan", "-detailed-exitcode"}, vars...)...); code != 0 {
		t.Fatalf("plan after apply: exit %d (2: a difference between the declaration and what regionfs reports)\n%s", code, out)
	}

	// The policy Terraform set refuses plain-text NFS.
	if err := nfsPut(t, ip, "plain.txt", []byte("no TLS")); err == nil {
		t.Fatalf("a plain-text NFS write through %s succeeded despite the aws:SecureTransport policy", ip)
	}

	// In place: a new name tag and another life cycle.
	vars2 := append(vars, "-var", "name=tf-efs-v2", "-var", "ia=AFTER_60_DAYS")
	out = tf.must(append([]string{"apply", "-auto-approve"}, vars2...)...)
	if !strings.Contains(out, "0 added, 2 changed, 0 destroyed") && !strings.Contains(out, "0 added, 1 changed, 0 destroyed") {
		t.Fatalf("in-place apply:\n%s", out)
	}
	if got := east.must("efs", "describe-lifecycle-configuration", "--file-system-id", fs, "--query", "LifecyclePolicies[0].TransitionToIA"); got != "AFTER_60_DAYS" {
		t.Fatalf("life cycle after the change: %q", got)
	}
	if got := output("fs"); got != fs {
		t.Fatalf("the change replaced the file system: %s → %s", fs, got)
	}
	if out, code := tf.run(append([]string{"plan", "-detailed-exitcode"}, vars2...)...); code != 0 {
		t.Fatalf("plan after the change: exit %d\n%s", code, out)
	}

	out = tf.must(append([]string{"destroy", "-auto-approve"}, vars2...)...)
	if !strings.Contains(out, "Resources: 6 destroyed") {
		t.Fatalf("destroy:\n%s", out)
	}
	east.fails("FileSystemNotFound", "efs", "describe-file-systems", "--file-system-id", fs)
	if got := west.must("efs", "describe-file-systems", "--file-system-id", replica, "--query", "FileSystems[0].FileSystemProtection.ReplicationOverwriteProtection"); got != "ENABLED" {
		t.Fatalf("replica %s after destroy: protection %q, want ENABLED (a writable file system of its own)", replica, got)
	}
}

// tail is the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
