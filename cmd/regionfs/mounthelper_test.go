package main

import (
	"strings"
	"testing"
	"time"

	rfuse "github.com/regionfs/regionfs/internal/fuse"
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
	// mount(8)'s -N namespace and -t type.subtype take values.
	if c, _, err := parseEFSMountArgs([]string{"fs-0123456789abcdef0:/", "/mnt/efs", "-N", "/proc/1/ns/mnt", "-o", "tls", "-t", "efs.x"}); err != nil || c.mountpoint != "/mnt/efs" {
		t.Errorf("-N and -t: %v %+v", err, c)
	}
	if !isMountHelper("/sbin/mount.efs") || isMountHelper("/usr/bin/regionfs") {
		t.Error("isMountHelper")
	}
}

// FuzzParseEFSMountArgs: mount.efs never panics on its arguments, and what
// it accepts reaches the background client unchanged: the foreground
// command line it spawns (mountConfig.args) parses back to the same
// configuration, whatever the names, paths and option values hold.
func FuzzParseEFSMountArgs(f *testing.F) {
	f.Add("fs-0123456789abcdef0:/data", "/mnt/efs", "rw,_netdev,tls,accesspoint=fsap-1,region=us-west-2,az=b,port=2049")
	f.Add("fs-1:/", "-dir", "logfile=-x,cafile=--tls,certfile=a,keyfile=b,followreplication,ro")
	f.Add("-fs", "/m", "x-systemd.automount,comment=a,,=,iam")
	f.Fuzz(func(t *testing.T, source, dir, opts string) {
		c, _, err := parseEFSMountArgs([]string{source, dir, "-o", opts})
		if err != nil {
			return
		}
		fl := newMountCmd().Flags()
		if err := fl.Parse(c.args()[1:]); err != nil {
			t.Fatalf("args %q: %v", c.args(), err)
		}
		pos := fl.Args()
		if len(pos) != 2 || pos[0] != c.source || pos[1] != c.mountpoint {
			t.Fatalf("positional arguments %q, want %q %q", pos, c.source, c.mountpoint)
		}
		for _, k := range []string{"region", "access-point", "az", "ca-file", "cert-file", "key-file", "log-file"} {
			v, _ := fl.GetString(k)
			want := map[string]string{"region": c.region, "access-point": c.accessPoint, "az": c.az, "ca-file": c.caFile,
				"cert-file": c.certFile, "key-file": c.keyFile, "log-file": c.logFile}[k]
			if v != want {
				t.Fatalf("--%s = %q, want %q (args %q)", k, v, want, c.args())
			}
		}
		for k, want := range map[string]bool{"tls": c.tls, "follow-replication": c.follow, "read-only": c.readOnly, "foreground": true} {
			if v, _ := fl.GetBool(k); v != want {
				t.Fatalf("--%s = %v, want %v", k, v, want)
			}
		}
		if p, _ := fl.GetInt("port"); p != c.port {
			t.Fatalf("--port = %d, want %d", p, c.port)
		}
	})
}

// TestAttrTimeoutZeroIsNoCache: `regionfs mount --attr-timeout 0` asks
// for no caching: the mount gets rfuse.NoCache (the smallest positive
// timeout), not 0, which rfuse.New (and go-fuse in each reply) replace
// with the default of a second.
func TestAttrTimeoutZeroIsNoCache(t *testing.T) {
	if got := (mountConfig{}).cacheTime(); got != rfuse.NoCache {
		t.Errorf("--attr-timeout 0: the mount caches for %v, want rfuse.NoCache", got)
	}
	if got := (mountConfig{attrTimeout: 3 * time.Second}).cacheTime(); got != 3*time.Second {
		t.Errorf("--attr-timeout 3s: %v", got)
	}
}
