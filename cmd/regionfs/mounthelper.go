package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
)

// mount.efs: `mount -t efs [-o OPTIONS] fs-XXXX[:/path] DIR` runs
// /sbin/mount.efs SOURCE DIR [-sfnv] [-o OPTIONS]. The helper is a copy of
// this binary (install-mount-helper); main runs mountEFSHelper when it is
// called under that name. Options are efs-utils' names.

// helperPath is where install-mount-helper puts mount.efs.
var helperPath = "/sbin/mount.efs"

// isMountHelper reports whether the process was started as mount.efs.
func isMountHelper(argv0 string) bool { return filepath.Base(argv0) == "mount.efs" }

// mountEFSHelper is mount.efs: it parses mount(8)'s arguments and mounts
// like `regionfs mount`.
func mountEFSHelper(ctx context.Context, args []string, out io.Writer) error {
	c, fake, err := parseEFSMountArgs(args)
	if err != nil {
		return err
	}
	if fake {
		return nil
	}
	return runMount(ctx, c, out)
}

// parseEFSMountArgs reads SOURCE DIR and the options; fake is mount's -f.
func parseEFSMountArgs(args []string) (c mountConfig, fake bool, err error) {
	var pos []string
	var opts []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "-o":
			if i+1 >= len(args) {
				return c, false, errors.New("mount.efs: -o needs options")
			}
			i++
			opts = append(opts, args[i])
		case strings.HasPrefix(a, "-o"):
			opts = append(opts, a[2:])
		case a == "-N" || a == "-t":
			// mount(8)'s namespace and type.subtype: their value is not
			// a positional argument.
			if i+1 >= len(args) {
				return c, false, fmt.Errorf("mount.efs: %s needs a value", a)
			}
			i++
		case strings.HasPrefix(a, "-") && len(a) > 1:
			if strings.Contains(a, "f") {
				fake = true
			}
			// -s (sloppy), -n (no mtab), -v (verbose): nothing to do.
		default:
			pos = append(pos, a)
		}
	}
	if len(pos) != 2 {
		return c, false, errors.New("usage: mount.efs fs-XXXX[:/path] DIR [-o OPTIONS]")
	}
	c.source, c.mountpoint = pos[0], pos[1]
	c.logFile = defaultLogFile
	c.attrTimeout = defaultAttrTimeout
	for _, o := range strings.Split(strings.Join(opts, ","), ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(o), "=")
		switch k {
		case "":
		case "tls":
			c.tls = true
		case "notls":
			c.tls = false
		case "accesspoint":
			c.accessPoint = v
		case "region":
			c.region = v
		case "az":
			c.az = v
		case "port", "tlsport":
			p, perr := strconv.Atoi(v)
			if perr != nil || p < 1 || p > 65535 {
				return c, false, fmt.Errorf("mount.efs: %s=%q is not a port", k, v)
			}
			c.port = p
		case "ro":
			c.readOnly = true
		case "iam", "awsprofile", "awscredsuri", "rolearn", "jwtpath":
			return c, false, fmt.Errorf("mount.efs: option %q (IAM authorization) is not supported by regionfs: access is controlled by security groups, access points and TLS; remove it", k)
		case "cafile":
			c.caFile = v
		case "certfile":
			c.certFile = v
		case "keyfile":
			c.keyFile = v
		case "followreplication":
			c.follow = true
		case "logfile":
			c.logFile = v
		case "_netdev", "defaults", "auto", "noauto", "nofail", "rw", "user", "nouser", "users", "exec", "noexec",
			"suid", "nosuid", "dev", "nodev", "atime", "noatime", "relatime", "nodiratime", "x-systemd.automount",
			"nfsvers", "vers", "rsize", "wsize", "hard", "soft", "timeo", "retrans", "noresvport", "resvport",
			"ocsp", "noocsp", "verify", "netns", "mounttargetip", "crossaccount", "fsc", "nofsc":
			// Accepted for compatibility; FUSE and the NFS client choose
			// their own transfer sizes and retry forever (hard).
		default:
			if !strings.HasPrefix(k, "x-") && !strings.HasPrefix(k, "comment") {
				return c, false, fmt.Errorf("mount.efs: unknown option %q", k)
			}
		}
	}
	return c, fake, nil
}

func newInstallMountHelperCmd() *cobra.Command {
	var path string
	cmd := &cobra.Command{
		Use:   "install-mount-helper",
		Short: "Install mount.efs so that `mount -t efs -o tls fs-XXXX:/ DIR` and /etc/fstab lines work",
		Long: `install-mount-helper copies this binary to /sbin/mount.efs (mount(8) runs
it for -t efs) and records the mount settings of the current environment
(EFS endpoint, region, NFS port, CA bundle; never credentials) in
/etc/regionfs/mount.env, so that mounts at boot (fstab) find them:

  fs-0123456789abcdef0:/ /mnt/efs efs _netdev,tls 0 0

Credentials come from the usual AWS chain (environment, ~/.aws/credentials).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return installMountHelper(path, mountEnvFile, cmd.OutOrStdout())
		},
	}
	cmd.Flags().StringVar(&path, "path", helperPath, "where to install the helper")
	return cmd
}

func installMountHelper(path, envFile string, out io.Writer) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	b, err := os.ReadFile(exe)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	if err := writeFileAtomic(path, b, 0o755); err != nil {
		return fmt.Errorf("install %s: %w", path, err)
	}
	var env []string
	for _, k := range []string{"AWS_ENDPOINT_URL_EFS", "AWS_ENDPOINT_URL", "AWS_REGION", "AWS_DEFAULT_REGION", envNFSCA, envNFSPort, envAZ} {
		if v := os.Getenv(k); v != "" {
			env = append(env, k+"="+v)
		}
	}
	if err := os.MkdirAll(filepath.Dir(envFile), 0o755); err != nil {
		return err
	}
	content := "# Written by regionfs install-mount-helper: settings for mount -t efs (no credentials).\n" + strings.Join(env, "\n") + "\n"
	if err := writeFileAtomic(envFile, []byte(content), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(out, "installed %s; settings in %s:\n%s", path, envFile, content)
	return nil
}
