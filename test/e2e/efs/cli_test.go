package efse2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/regionfs/regionfs/internal/testkit"
)

// TestCLI drives a region with the real aws CLI: create (idempotent) →
// wait available → mount targets in two subnets → list → tag → update →
// a file written over NFS through one mount target is read back through
// the other → access point → security groups enforced at connect, rule
// changes through the EC2 API applying to the next connection →
// delete, with AWS's error codes on the way.
func TestCLI(t *testing.T) {
	testkit.NeedTool(t, "aws")
	nfsCp := testkit.NeedTool(t, "nfs-cp")
	nfsCat := testkit.NeedTool(t, "nfs-cat")
	r := startRegion(t, "eu-central-1", "127.41")

	var fs struct {
		FileSystemId, LifeCycleState, KmsKeyId, Name string
		Encrypted                                    bool
	}
	must(t, json.Unmarshal([]byte(r.mustAWS("efs", "create-file-system", "--creation-token", "cli-demo", "--encrypted",
		"--tags", "Key=Name,Value=cli-demo", "--output", "json")), &fs))
	if fs.LifeCycleState != "creating" || !fs.Encrypted || fs.Name != "cli-demo" ||
		fs.KmsKeyId != "arn:aws:kms:eu-central-1:123456789012:key/0e2e0e2e-0e2e-4e2e-8e2e-0e2e0e2e0e2e" {
		t.Fatalf("create-file-system: %+v", fs)
	}
	id := fs.FileSystemId
	out, err := r.aws("efs", "create-file-system", "--creation-token", "cli-demo")
	if err == nil || !strings.Contains(out, "An error occurred (FileSystemAlreadyExists) when calling the CreateFileSystem operation") {
		t.Fatalf("same creation token: %v %s", err, out)
	}
	state := func() string {
		s, _ := r.aws("efs", "describe-file-systems", "--file-system-id", id, "--query", "FileSystems[0].LifeCycleState", "--output", "text")
		return s
	}
	testkit.WaitFor(t, "available", 30*time.Second, func() bool { return state() == "available" })

	subnets := strings.Fields(r.mustAWS("ec2", "describe-subnets", "--query", "Subnets[].SubnetId", "--output", "text"))
	sg := r.mustAWS("ec2", "describe-security-groups", "--filters", "Name=group-name,Values=default", "--query", "SecurityGroups[0].GroupId", "--output", "text")
	if len(subnets) != 2 || sg != "sg-0e2e00000000000a1" {
		t.Fatalf("subnets %v, group %q", subnets, sg)
	}
	var ips, mts []string
	for _, s := range subnets {
		var mt struct{ MountTargetId, IpAddress, LifeCycleState string }
		must(t, json.Unmarshal([]byte(r.mustAWS("efs", "create-mount-target", "--file-system-id", id, "--subnet-id", s, "--security-groups", sg, "--output", "json")), &mt))
		ips, mts = append(ips, mt.IpAddress), append(mts, mt.MountTargetId)
	}
	if ips[0] != "127.41.1.4" || ips[1] != "127.41.2.4" {
		t.Fatalf("mount target addresses %v", ips)
	}
	if n := r.mustAWS("efs", "describe-mount-targets", "--file-system-id", id, "--query", "length(MountTargets)", "--output", "text"); n != "2" {
		t.Fatalf("describe-mount-targets shows %s", n)
	}
	for _, m := range mts {
		testkit.WaitFor(t, "mount target available", 30*time.Second, func() bool {
			s, _ := r.aws("efs", "describe-mount-targets", "--mount-target-id", m, "--query", "MountTargets[0].LifeCycleState", "--output", "text")
			return s == "available"
		})
	}
	out, err = r.aws("efs", "create-mount-target", "--file-system-id", id, "--subnet-id", subnets[0])
	if err == nil || !strings.Contains(out, "(MountTargetConflict)") {
		t.Errorf("second mount target in a zone: %v %s", err, out)
	}

	r.mustAWS("efs", "tag-resource", "--resource-id", id, "--tags", "Key=env,Value=prod", "Key=team,Value=storage")
	if keys := r.mustAWS("efs", "list-tags-for-resource", "--resource-id", id, "--query", "Tags[].Key", "--output", "text"); keys != "Name\tenv\tteam" {
		t.Errorf("list-tags-for-resource: %q", keys)
	}
	r.mustAWS("efs", "untag-resource", "--resource-id", id, "--tag-keys", "team")
	var upd struct{ LifeCycleState, ThroughputMode string }
	must(t, json.Unmarshal([]byte(r.mustAWS("efs", "update-file-system", "--file-system-id", id, "--throughput-mode", "elastic", "--output", "json")), &upd))
	if upd.LifeCycleState != "updating" || upd.ThroughputMode != "elastic" {
		t.Errorf("update-file-system: %+v", upd)
	}
	testkit.WaitFor(t, "available after update", 30*time.Second, func() bool { return state() == "available" })

	// NFS through both mount targets.
	dir := t.TempDir()
	payload := bytes.Repeat([]byte("regionfs over NFS through mount targets\n"), 4096)
	src := filepath.Join(dir, "in.txt")
	must(t, os.WriteFile(src, payload, 0o644))
	if out, err := exec.Command(nfsCp, src, r.nfsURL(ips[0], "/hello.txt")).CombinedOutput(); err != nil {
		t.Fatalf("nfs-cp through %s: %v\n%s", ips[0], err, out)
	}
	got, err := exec.Command(nfsCat, r.nfsURL(ips[1], "/hello.txt")).Output()
	if err != nil || !bytes.Equal(got, payload) {
		t.Fatalf("nfs-cat through %s: %v, %d bytes (want %d)", ips[1], err, len(got), len(payload))
	}
	size, _ := strconv.Atoi(r.mustAWS("efs", "describe-file-systems", "--file-system-id", id, "--query", "FileSystems[0].SizeInBytes.Value", "--output", "text"))
	if size < len(payload) {
		t.Errorf("SizeInBytes %d after writing %d bytes", size, len(payload))
	}
	// A sparse file (an image of 8 MiB whose last 4 KiB only are data)
	// counts what it holds, not its size: EFS meters a sparse file's
	// actual storage (review25 defect 2b). Its zeros are holes once the
	// server has merged the pieces that held them.
	img := filepath.Join(dir, "vm.img")
	f, err := os.Create(img)
	must(t, err)
	_, err = f.WriteAt(bytes.Repeat([]byte{'v'}, 4096), 8<<20)
	must(t, err)
	must(t, f.Close())
	if out, err := exec.Command(nfsCp, img, r.nfsURL(ips[0], "/vm.img")).CombinedOutput(); err != nil {
		t.Fatalf("nfs-cp of a sparse file: %v\n%s", err, out)
	}
	want := strconv.Itoa((len(payload)+4095)/4096*4096 + 4096)
	testkit.Eventually(t, 30*time.Second, func() error {
		sizes, _ := r.aws("efs", "describe-file-systems", "--file-system-id", id, "--query",
			"[FileSystems[0].SizeInBytes.Value, FileSystems[0].SizeInBytes.ValueInStandard]", "--output", "text")
		if sizes != want+"\t"+want {
			return fmt.Errorf("SizeInBytes (Value, ValueInStandard) %q after a sparse file of 8 MiB holding 4 KiB, want %s for both", sizes, want)
		}
		return nil
	})

	// An access point: its root directory is created with its owner and
	// mode, and files written through it are owned by its POSIX user.
	apID := r.mustAWS("efs", "create-access-point", "--file-system-id", id, "--client-token", "app",
		"--posix-user", "Uid=1001,Gid=1001", "--root-directory", "Path=/app,CreationInfo={OwnerUid=1001,OwnerGid=1001,Permissions=750}",
		"--query", "AccessPointId", "--output", "text")
	if out, err := exec.Command(nfsCp, src, r.nfsURL(ips[0], "/"+apID+"/via-ap.txt")).CombinedOutput(); err != nil {
		t.Fatalf("nfs-cp through access point %s: %v\n%s", apID, err, out)
	}
	got, err = exec.Command(nfsCat, r.nfsURL(ips[1], "/app/via-ap.txt")).Output()
	if err != nil || !bytes.Equal(got, payload) {
		t.Fatalf("reading the access point's file from the root export: %v, %d bytes", err, len(got))
	}
	if ls, err := exec.Command(testkit.NeedTool(t, "nfs-ls"), r.nfsURL(ips[1], "/app/")).CombinedOutput(); err != nil || !strings.Contains(string(ls), "1001") {
		t.Errorf("nfs-ls of the access point's directory: %v\n%s", err, ls)
	}
	if ls, err := exec.Command(testkit.NeedTool(t, "nfs-ls"), r.nfsURL(ips[1], "/")).CombinedOutput(); err != nil || !regexp.MustCompile(`(?m)^drwxr-x---\s+\d+\s+1001\s+1001\s+\d+\s+app$`).Match(ls) {
		t.Errorf("the access point's root directory is not 0750 1001:1001: %v\n%s", err, ls)
	}

	// Security groups are enforced when a client connects.
	r.mustAWS("efs", "modify-mount-target-security-groups", "--mount-target-id", mts[1], "--security-groups", "sg-0e2e00000000000b1")
	if out, err := exec.Command(nfsCat, r.nfsURL(ips[1], "/hello.txt")).CombinedOutput(); err == nil {
		t.Errorf("a client outside the security group's CIDRs read through the mount target:\n%.200s", out)
	}
	if g := r.mustAWS("efs", "describe-mount-target-security-groups", "--mount-target-id", mts[1], "--query", "SecurityGroups[0]", "--output", "text"); g != "sg-0e2e00000000000b1" {
		t.Errorf("security groups %s", g)
	}
	r.mustAWS("efs", "modify-mount-target-security-groups", "--mount-target-id", mts[1], "--security-groups", sg)
	if got, err := exec.Command(nfsCat, r.nfsURL(ips[1], "/hello.txt")).Output(); err != nil || !bytes.Equal(got, payload) {
		t.Errorf("after restoring the security group: %v", err)
	}
	// A rule change made with the EC2 API applies to the next connection
	// at once (no waiting): a group of its own without rules refuses,
	// authorize-security-group-ingress admits, revoke refuses again.
	g := r.mustAWS("ec2", "create-security-group", "--group-name", "e2e-rules", "--description", "rules changed by the test",
		"--vpc-id", "vpc-0e2e0e2e0e2e0e2e0", "--query", "GroupId", "--output", "text")
	r.mustAWS("efs", "modify-mount-target-security-groups", "--mount-target-id", mts[1], "--security-groups", g)
	if out, err := exec.Command(nfsCat, r.nfsURL(ips[1], "/hello.txt")).CombinedOutput(); err == nil {
		t.Errorf("a group without ingress rules admitted a client:\n%.200s", out)
	}
	rule := r.mustAWS("ec2", "authorize-security-group-ingress", "--group-id", g, "--protocol", "tcp", "--port", "2049", "--cidr", "127.0.0.1/32",
		"--query", "SecurityGroupRules[0].SecurityGroupRuleId", "--output", "text")
	if got, err := exec.Command(nfsCat, r.nfsURL(ips[1], "/hello.txt")).Output(); err != nil || !bytes.Equal(got, payload) {
		t.Errorf("the connection right after authorize-security-group-ingress: %v", err)
	}
	r.mustAWS("ec2", "revoke-security-group-ingress", "--group-id", g, "--security-group-rule-ids", rule)
	if out, err := exec.Command(nfsCat, r.nfsURL(ips[1], "/hello.txt")).CombinedOutput(); err == nil {
		t.Errorf("the connection right after revoke-security-group-ingress was admitted:\n%.200s", out)
	}
	r.mustAWS("efs", "modify-mount-target-security-groups", "--mount-target-id", mts[1], "--security-groups", sg)
	r.mustAWS("ec2", "delete-security-group", "--group-id", g)

	// Errors as the CLI shows them.
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"efs", "describe-file-systems", "--file-system-id", "fs-0123456789abcdef0"}, "An error occurred (FileSystemNotFound) when calling the DescribeFileSystems operation: File system 'fs-0123456789abcdef0' does not exist."},
		{[]string{"efs", "delete-file-system", "--file-system-id", id}, "(FileSystemInUse)"},
		{[]string{"efs", "create-file-system", "--creation-token", strings.Repeat("t", 65)}, "(BadRequest)"},
		{[]string{"efs", "create-file-system", "--creation-token", "x", "--performance-mode", "turbo"}, "(BadRequest)"},
		{[]string{"efs", "create-mount-target", "--file-system-id", id, "--subnet-id", "subnet-0123456789abcdef0"}, "(SubnetNotFound)"},
		{[]string{"efs", "describe-backup-policy", "--file-system-id", id}, "(PolicyNotFound)"},
	} {
		out, err := r.aws(tc.args...)
		if err == nil || !strings.Contains(out, tc.want) {
			t.Errorf("aws %s: %v %s; want %q", strings.Join(tc.args, " "), err, out, tc.want)
		}
	}
	if out, err := r.shell("AWS_SECRET_ACCESS_KEY=wrong aws efs describe-file-systems"); err == nil || !strings.Contains(out, "InvalidSignatureException") {
		t.Errorf("wrong secret: %v %s", err, out)
	}

	// Delete: mount targets first, then the file system.
	for _, m := range mts {
		r.mustAWS("efs", "delete-mount-target", "--mount-target-id", m)
	}
	testkit.WaitFor(t, "mount targets deleted", 30*time.Second, func() bool {
		n, _ := r.aws("efs", "describe-mount-targets", "--file-system-id", id, "--query", "length(MountTargets)", "--output", "text")
		return n == "0"
	})
	r.mustAWS("efs", "delete-file-system", "--file-system-id", id)
	testkit.WaitFor(t, "file system deleted", 30*time.Second, func() bool {
		out, err := r.aws("efs", "describe-file-systems", "--file-system-id", id)
		return err != nil && strings.Contains(out, "(FileSystemNotFound)")
	})
	if n := r.mustAWS("efs", "describe-file-systems", "--query", "length(FileSystems)", "--output", "text"); n != "0" {
		t.Errorf("%s file systems left", n)
	}
}
