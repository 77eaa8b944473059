package main

import (
	"strings"
	"testing"
)

// TestParseEFSMountArgs: mount(8)'s arguments with efs-utils' option
// names, as /sbin/mount.efs receives them.
func TestParseEFSMountArgs(t *testing.T) {
	c, fake, err := parseEFSMountArgs([]string{"fs-0123456789abcdef0:/data", "/mnt/efs", "-o", "rw,_netdev,tls,accesspoint=fsap-0123456789abcdef0,region=us-west-2,az=us-west-2b,nfsvers=4.1,hard,noresvport"})
	if err != nil || fake {
		t.Fatalf("parse: %v fake=%v", err, fake)
	}
	if c.source != "fs-0123456789abcdef0:/data" || c.mountpoint != "/mnt/efs" || !c.tls || c.accessPoint != "fsap-0123456789abcdef0" ||
		c.region != "us-west-2" || c.az != "us-west-2b" {
		t.Fatalf("parsed %+v", c)
	}
	if _, fake, err := parseEFSMountArgs([]string{"fs-0123456789abcdef0:/", "/mnt/efs", "-f", "-o", "tls"}); err != nil || !fake {
		t.Fatalf("-f: %v fake=%v", err, fake)
	}
	for _, opt := range []string{"iam", "tls,iam", "awsprofile=x"} {
		_, _, err := parseEFSMountArgs([]string{"fs-0123456789abcdef0:/", "/mnt/efs", "-o", opt})
		if err == nil || !strings.Contains(err.Error(), "not supported") {
			t.Errorf("-o %s: %v, want a clear refusal", opt, err)
		}
	}
	for _, args := range [][]string{
		{"fs-0123456789abcdef0:/", "/mnt/efs", "-o", "bogus"},
		{"fs-0123456789abcdef0:/", "/mnt/efs", "-o", "port=x"},
		{"fs-0123456789abcdef0:/"},
		{"fs-0123456789abcdef0:/", "/mnt/efs", "-o"},
	} {
		if _, _, err := parseEFSMountArgs(args); err == nil {
			t.Errorf("%q accepted", args)
		}
	}
	if !isMountHelper("/sbin/mount.efs") || isMountHelper("/usr/bin/regionfs") {
		t.Error("isMountHelper")
	}
}
