package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/efs"
	"github.com/aws/aws-sdk-go-v2/service/efs/types"
	"github.com/spf13/cobra"

	"github.com/regionfs/regionfs/internal/config"
	rfuse "github.com/regionfs/regionfs/internal/fuse"
	"github.com/regionfs/regionfs/internal/nfs/client"
	"github.com/regionfs/regionfs/internal/nfs/proto"
)

// mountConfig is what `regionfs mount` and mount.efs mount.
type mountConfig struct {
	source      string // fs-…[:/path], or /path with nfsAddr
	mountpoint  string
	tls         bool
	region      string
	endpoint    string
	accessPoint string
	az          string
	port        int
	follow      bool
	caFile      string
	certFile    string
	keyFile     string
	nfsAddr     string // mount this NFS server directly (no EFS API)
	mountPort   int    // with nfsAddr: MOUNT on this port of its host
	logFile     string
	readOnly    bool
	foreground  bool
	attrTimeout time.Duration
}

// Environment variables read by the mount commands (`regionfs dev` sets
// them in env.sh; install-mount-helper records them in mountEnvFile for
// mount -t efs at boot).
const (
	envNFSCA   = "REGIONFS_NFS_CA"
	envNFSPort = "REGIONFS_NFS_PORT"
	envAZ      = "REGIONFS_AZ"
	envNotify  = "REGIONFS_MOUNT_NOTIFY_FD"
)

const defaultAttrTimeout = rfuse.DefaultAttrTimeout

var (
	mountEnvFile   = "/etc/regionfs/mount.env"
	defaultCAFile  = "/etc/regionfs/nfs-ca.pem"
	defaultLogFile = "/var/log/regionfs/mount.log"
)

func newMountCmd() *cobra.Command {
	var c mountConfig
	cmd := &cobra.Command{
		Use:   "mount [flags] fs-XXXX[:/path] MOUNTPOINT",
		Short: "Mount a file system through FUSE (NFSv3 to its mount target, optionally over TLS)",
		Long: `Mount resolves the file system's mount targets with the EFS API
(DescribeMountTargets; the one in --az, or REGIONFS_AZ, is preferred, as
efs-utils prefers the client's availability zone), mounts its NFS export (or
the access point's) through FUSE, returns once the mount is live and keeps
serving it in the background, logging to --log-file.

  regionfs mount --tls fs-0123456789abcdef0 /mnt/efs
  regionfs mount --tls --access-point fsap-0123456789abcdef0 fs-0123456789abcdef0 /mnt/app
  regionfs mount --tls --follow-replication fs-0123456789abcdef0 /mnt/efs
  regionfs umount /mnt/efs

--tls verifies the mount target's certificate against --ca-file
(REGIONFS_NFS_CA; regionfs dev writes both regions' CAs to DATA_DIR/nfs-ca.pem).
--follow-replication keeps the mount working across a failover: when the
source's mount target is unreachable and the replica has been promoted, the
client reconnects to the replica's mount target; data written but not
committed before the failover fails its fsync/close with EIO and is listed
in the log.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c.source, c.mountpoint = args[0], args[1]
			return runMount(cmd.Context(), c, cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.BoolVar(&c.tls, "tls", false, "encrypt NFS traffic with TLS (RFC 9289)")
	f.StringVar(&c.region, "region", "", "region of the file system (default: AWS_REGION)")
	f.StringVar(&c.endpoint, "endpoint", "", "EFS API endpoint (default: AWS_ENDPOINT_URL_EFS)")
	f.StringVar(&c.accessPoint, "access-point", "", "mount through this access point (fsap-…)")
	f.StringVar(&c.az, "az", "", "prefer the mount target in this availability zone (default: REGIONFS_AZ)")
	f.IntVar(&c.port, "port", 0, "NFS port of the mount targets (default: REGIONFS_NFS_PORT or 2049)")
	f.BoolVar(&c.follow, "follow-replication", false, "follow a failover to the promoted replica without remounting")
	f.StringVar(&c.caFile, "ca-file", "", "CA certificates of the mount targets (default: REGIONFS_NFS_CA or "+defaultCAFile+")")
	f.StringVar(&c.certFile, "cert-file", "", "client certificate for mutual TLS")
	f.StringVar(&c.keyFile, "key-file", "", "key of --cert-file")
	f.StringVar(&c.nfsAddr, "nfs-addr", "", "mount this NFS server (HOST:PORT) directly, without the EFS API; the source is then an export path")
	f.IntVar(&c.mountPort, "mount-port", 0, "with --nfs-addr: the server's MOUNT port when it is not the NFS port (nfs-ganesha)")
	f.StringVar(&c.logFile, "log-file", defaultLogFile, "where the background client logs")
	f.BoolVar(&c.readOnly, "read-only", false, "mount read-only")
	f.DurationVar(&c.attrTimeout, "attr-timeout", defaultAttrTimeout, "attribute and entry cache time (0: none)")
	f.BoolVar(&c.foreground, "foreground", false, "serve in the foreground (logging to stderr) instead of in the background")
	return cmd
}

func newUmountCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "umount MOUNTPOINT",
		Short: "Unmount a regionfs mount (its background client then exits)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return unmount(args[0])
		},
	}
}

func unmount(mp string) error {
	err := syscall.Unmount(mp, 0)
	if err == nil {
		return nil
	}
	if errors.Is(err, syscall.EPERM) {
		for _, helper := range []string{"fusermount3", "fusermount"} {
			if p, lerr := exec.LookPath(helper); lerr == nil {
				out, ferr := exec.Command(p, "-u", mp).CombinedOutput()
				if ferr == nil {
					return nil
				}
				return fmt.Errorf("%s -u %s: %v: %s", helper, mp, ferr, strings.TrimSpace(string(out)))
			}
		}
	}
	return fmt.Errorf("unmount %s: %w", mp, err)
}

// runMount checks the request, then either serves in the foreground or
// starts itself in the background and waits until the mount is live.
func runMount(ctx context.Context, c mountConfig, out io.Writer) error {
	loadMountEnv()
	if err := c.complete(); err != nil {
		return err
	}
	if c.foreground {
		log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
		return serveMount(ctx, c, log, notifier())
	}
	return spawnMount(ctx, c, out)
}

func (c *mountConfig) complete() error {
	mp, err := filepath.Abs(c.mountpoint)
	if err != nil {
		return err
	}
	c.mountpoint = mp
	if st, err := os.Stat(mp); err != nil || !st.IsDir() {
		return fmt.Errorf("mount point %s: not a directory (%v)", mp, err)
	}
	if c.port == 0 {
		c.port = 2049
		if p, err := strconv.Atoi(os.Getenv(envNFSPort)); err == nil && p > 0 {
			c.port = p
		}
	}
	if c.az == "" {
		c.az = os.Getenv(envAZ)
	}
	if c.caFile == "" {
		c.caFile = firstNonEmpty(os.Getenv(envNFSCA), defaultCAFile)
	}
	if (c.certFile == "") != (c.keyFile == "") {
		return errors.New("--cert-file and --key-file go together")
	}
	if c.certFile != "" && !c.tls {
		return errors.New("a client certificate (--cert-file) needs --tls")
	}
	if c.nfsAddr == "" && !strings.HasPrefix(c.source, "fs-") {
		return fmt.Errorf("source %q: want fs-XXXX[:/path]", c.source)
	}
	if c.follow && c.accessPoint != "" {
		return errors.New("--follow-replication cannot be used with an access point (access points are not replicated)")
	}
	if c.follow && c.nfsAddr != "" {
		return errors.New("--follow-replication needs the EFS API (not --nfs-addr)")
	}
	return nil
}

// spawnMount runs `regionfs mount --foreground` detached, with its output
// in the log file, and waits for it to report the mount live (or fail).
func spawnMount(ctx context.Context, c mountConfig, out io.Writer) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(c.logFile), 0o755); err != nil {
		return fmt.Errorf("log file: %w", err)
	}
	logf, err := os.OpenFile(c.logFile, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o640)
	if err != nil {
		return fmt.Errorf("log file: %w", err)
	}
	defer logf.Close()
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	defer r.Close()
	cmd := exec.Command(exe, c.args()...)
	cmd.Args[0] = "regionfs"
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.ExtraFiles = []*os.File{w}
	cmd.Env = append(os.Environ(), envNotify+"=3")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		w.Close()
		return err
	}
	w.Close()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(r).ReadString('\n')
		line <- strings.TrimSpace(s)
	}()
	select {
	case s := <-line:
		if msg, ok := strings.CutPrefix(s, "ok "); ok {
			fmt.Fprintf(out, "%s (client pid %d, log %s)\n", msg, cmd.Process.Pid, c.logFile)
			go func() { <-exited }()
			return nil
		}
		if s == "" {
			err := <-exited
			return fmt.Errorf("mount client exited (%v); see %s", err, c.logFile)
		}
		<-exited
		return errors.New(strings.TrimPrefix(s, "error "))
	case <-ctx.Done():
		cmd.Process.Kill()
		return ctx.Err()
	}
}

// cacheTime is the mount's attribute and entry timeout: --attr-timeout,
// where 0 means no caching (rfuse.New takes 0 for its default).
func (c mountConfig) cacheTime() time.Duration {
	if c.attrTimeout <= 0 {
		return rfuse.NoCache
	}
	return c.attrTimeout
}

// args are the foreground command line of c.
func (c mountConfig) args() []string {
	a := []string{"mount", "--foreground", "--port", strconv.Itoa(c.port), "--log-file", c.logFile,
		"--attr-timeout", c.attrTimeout.String()}
	add := func(flag, v string) {
		if v != "" {
			a = append(a, flag, v)
		}
	}
	add("--region", c.region)
	add("--endpoint", c.endpoint)
	add("--access-point", c.accessPoint)
	add("--az", c.az)
	add("--ca-file", c.caFile)
	add("--cert-file", c.certFile)
	add("--key-file", c.keyFile)
	add("--nfs-addr", c.nfsAddr)
	if c.mountPort != 0 {
		a = append(a, "--mount-port", strconv.Itoa(c.mountPort))
	}
	if c.tls {
		a = append(a, "--tls")
	}
	if c.follow {
		a = append(a, "--follow-replication")
	}
	if c.readOnly {
		a = append(a, "--read-only")
	}
	return append(a, "--", c.source, c.mountpoint) // a name may start with "-"
}

// notifier returns how the foreground client tells a waiting parent that
// the mount is live ("ok …") or failed ("error …").
func notifier() func(string) {
	fd, err := strconv.Atoi(os.Getenv(envNotify))
	if err != nil || fd < 3 {
		return func(string) {}
	}
	os.Unsetenv(envNotify)
	f := os.NewFile(uintptr(fd), "notify")
	return func(s string) {
		if f == nil {
			return
		}
		fmt.Fprintln(f, s)
		f.Close()
		f = nil
	}
}

// serveMount mounts and serves until the file system is unmounted or a
// signal arrives.
func serveMount(ctx context.Context, c mountConfig, log *slog.Logger, notify func(string)) (err error) {
	defer func() {
		if err != nil {
			notify("error " + err.Error())
		}
	}()
	fsID, subPath, _ := strings.Cut(c.source, ":")
	if c.nfsAddr != "" {
		fsID, subPath = c.nfsAddr, c.source // the source is an export path
	}
	if subPath == "" {
		subPath = "/"
	}
	exportPath := subPath
	if c.accessPoint != "" {
		exportPath = "/" + c.accessPoint + strings.TrimSuffix(subPath, "/")
	}
	var tcfg *tls.Config
	if c.tls {
		if tcfg, err = clientTLS(&config.TLS{CAFile: c.caFile, CertFile: c.certFile, KeyFile: c.keyFile}); err != nil {
			return fmt.Errorf("tls: %w (pass --ca-file, or set %s)", err, envNFSCA)
		}
	}
	log = log.With("fs_id", fsID, "mountpoint", c.mountpoint)
	var dial client.Dialer
	var where string
	if c.nfsAddr != "" {
		fsID, where = c.nfsAddr, c.nfsAddr
		dial = func(ctx context.Context) (client.Dialed, error) {
			conn, err := dialNFS(ctx, c.nfsAddr, tcfg)
			return client.Dialed{Conn: conn, Addr: c.nfsAddr}, err
		}
	} else {
		r, err := newMountResolver(ctx, c, fsID, log)
		if err != nil {
			return err
		}
		where = r.describe()
		dial = r.dial(tcfg)
	}
	var f *rfuse.FS
	sess := client.NewSession(client.SessionOptions{
		Dial: dial, Logger: log,
		OnSwitch: func(epoch uint64) {
			if f != nil {
				f.Switched(epoch)
			}
		},
	})
	defer sess.Close()
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := sess.Connect(cctx); err != nil {
		return fmt.Errorf("connect to %s: %w", where, err)
	}
	cl := sess.Client(client.Unix(hostname(), 0, 0))
	var root proto.FH
	if c.mountPort != 0 && c.nfsAddr != "" {
		host, _, _ := net.SplitHostPort(c.nfsAddr)
		maddr := net.JoinHostPort(host, strconv.Itoa(c.mountPort))
		mc, merr := client.Dial(cctx, maddr)
		if merr != nil {
			return fmt.Errorf("MOUNT at %s: %w", maddr, merr)
		}
		root, _, err = mc.WithAuth(client.Unix(hostname(), 0, 0)).Mount(cctx, exportPath)
		mc.Close()
	} else {
		root, _, err = cl.Mount(cctx, exportPath)
	}
	if err != nil {
		return fmt.Errorf("MOUNT %s at %s: %w", exportPath, sess.Addr(), err)
	}
	ioSize := rfuse.DefaultIOSize
	if info, err := cl.FSInfo(cctx, root); err == nil {
		ioSize = int(min(max(min(info.RTPref, info.WTPref), 4096), uint32(rfuse.DefaultIOSize)))
	}
	at := c.cacheTime()
	f = rfuse.New(rfuse.Options{Session: sess, Root: root, Logger: log, IOSize: ioSize,
		AttrTimeout: at, EntryTimeout: at})
	opts := f.MountOptions(fsID + ":" + subPath)
	if c.readOnly {
		opts.MountOptions.Options = append(opts.MountOptions.Options, "ro")
	}
	srv, err := f.Mount(c.mountpoint, opts)
	if err != nil {
		return fmt.Errorf("fuse mount on %s: %w", c.mountpoint, err)
	}
	if err := f.SetKernelReadahead(c.mountpoint); err != nil {
		log.Warn("kernel readahead left at its default", "err", err)
	}
	log.Info("mounted", "addr", sess.Addr(), "export", exportPath, "tls", c.tls, "follow_replication", c.follow)
	notify(fmt.Sprintf("ok mounted %s:%s on %s via %s (tls=%v)", fsID, subPath, c.mountpoint, sess.Addr(), c.tls))

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, stopSignals()...)
	defer signal.Stop(sig)
	served := make(chan struct{})
	go func() { srv.Wait(); close(served) }()
	select {
	case <-served:
	case s := <-sig:
		log.Info("signal, unmounting", "signal", s.String())
		if err := srv.Unmount(); err != nil {
			log.Error("unmount", "err", err)
		}
		<-served
	}
	sctx, scancel := context.WithTimeout(context.Background(), time.Minute)
	defer scancel()
	if err := f.SyncAll(sctx); err != nil {
		log.Error("data not written back at unmount", "err", err)
	}
	log.Info("unmounted", "nfs_calls", sess.Calls())
	return nil
}

func hostname() string {
	h, _ := os.Hostname()
	return h
}

func dialNFS(ctx context.Context, addr string, tcfg *tls.Config) (*client.Conn, error) {
	if tcfg != nil {
		return client.DialTLS(ctx, addr, tcfg)
	}
	return client.Dial(ctx, addr)
}

// mountResolver finds mount targets through the EFS API and, with
// --follow-replication, switches to the promoted replica's.
type mountResolver struct {
	c    mountConfig
	log  *slog.Logger
	fsID string
	ops  *opsClient
	// cur is the file system mounted now and its region; dst the replica
	// to follow (empty without --follow-replication or replication).
	curFS, curRegion string
	dstFS, dstRegion string
	dstOps           *opsClient
	addr             string // the mount target address in use
}

func newMountResolver(ctx context.Context, c mountConfig, fsID string, log *slog.Logger) (*mountResolver, error) {
	ops, err := newOpsClient(ctx, c.region, c.endpoint)
	if err != nil {
		return nil, err
	}
	r := &mountResolver{c: c, log: log, fsID: fsID, ops: ops, curFS: fsID, curRegion: ops.cfg.Region}
	if r.addr, err = r.pick(ctx, ops, fsID); err != nil {
		return nil, err
	}
	if c.follow {
		res, err := ops.efs.DescribeReplicationConfigurations(ctx, &efs.DescribeReplicationConfigurationsInput{FileSystemId: aws.String(fsID)})
		if err != nil {
			return nil, fmt.Errorf("--follow-replication: %w", err)
		}
		for _, rc := range res.Replications {
			if aws.ToString(rc.SourceFileSystemId) != fsID || len(rc.Destinations) == 0 {
				continue
			}
			d := rc.Destinations[0]
			r.dstFS, r.dstRegion = aws.ToString(d.FileSystemId), aws.ToString(d.Region)
		}
		if r.dstFS == "" {
			return nil, fmt.Errorf("--follow-replication: %s is not the source of a replication", fsID)
		}
		if r.dstOps, err = newOpsClient(ctx, r.dstRegion, c.endpoint); err != nil {
			return nil, err
		}
		log.Info("following replication", "destination", r.dstFS, "destination_region", r.dstRegion)
	}
	return r, nil
}

func (r *mountResolver) describe() string { return r.addr }

// pick chooses an available mount target of fsID: the one in the
// preferred availability zone, else the first by zone name.
func (r *mountResolver) pick(ctx context.Context, ops *opsClient, fsID string) (string, error) {
	res, err := ops.efs.DescribeMountTargets(ctx, &efs.DescribeMountTargetsInput{FileSystemId: aws.String(fsID)})
	if err != nil {
		return "", fmt.Errorf("describe mount targets of %s: %w", fsID, err)
	}
	var avail []types.MountTargetDescription
	for _, mt := range res.MountTargets {
		if mt.LifeCycleState == types.LifeCycleStateAvailable && aws.ToString(mt.IpAddress) != "" {
			avail = append(avail, mt)
		}
	}
	if len(avail) == 0 {
		return "", fmt.Errorf("%s has no available mount target in %s", fsID, ops.cfg.Region)
	}
	slices.SortFunc(avail, func(a, b types.MountTargetDescription) int {
		return strings.Compare(aws.ToString(a.AvailabilityZoneName), aws.ToString(b.AvailabilityZoneName))
	})
	chosen := avail[0]
	for _, mt := range avail {
		if r.c.az != "" && aws.ToString(mt.AvailabilityZoneName) == r.c.az {
			chosen = mt
			break
		}
	}
	return net.JoinHostPort(aws.ToString(chosen.IpAddress), strconv.Itoa(r.c.port)), nil
}

// dial connects to the current mount target; when it is unreachable and
// the replica being followed has been promoted, to the replica's.
func (r *mountResolver) dial(tcfg *tls.Config) client.Dialer {
	return func(ctx context.Context) (client.Dialed, error) {
		conn, err := r.try(ctx, r.addr, tcfg)
		if err == nil || r.dstFS == "" || r.curFS == r.dstFS {
			return client.Dialed{Conn: conn, Addr: r.addr}, err
		}
		promoted, perr := r.promoted(ctx)
		if perr != nil || !promoted {
			if perr != nil {
				err = fmt.Errorf("%w; replica %s: %v", err, r.dstFS, perr)
			}
			return client.Dialed{}, err
		}
		addr, perr := r.pick(ctx, r.dstOps, r.dstFS)
		if perr != nil {
			return client.Dialed{}, fmt.Errorf("%w; promoted replica %s: %v", err, r.dstFS, perr)
		}
		conn, err = r.try(ctx, addr, tcfg)
		if err != nil {
			return client.Dialed{}, err
		}
		r.log.Warn("failover: following the promoted replica", "from_fs", r.curFS, "from_addr", r.addr,
			"to_fs", r.dstFS, "to_region", r.dstRegion, "to_addr", addr)
		r.curFS, r.curRegion, r.addr = r.dstFS, r.dstRegion, addr
		return client.Dialed{Conn: conn, Addr: addr, Switched: true}, nil
	}
}

func (r *mountResolver) try(ctx context.Context, addr string, tcfg *tls.Config) (*client.Conn, error) {
	dctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	return dialNFS(dctx, addr, tcfg)
}

// promoted reports whether the replica accepts writes (its replication
// overwrite protection is no longer REPLICATING).
func (r *mountResolver) promoted(ctx context.Context) (bool, error) {
	actx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	res, err := r.dstOps.efs.DescribeFileSystems(actx, &efs.DescribeFileSystemsInput{FileSystemId: aws.String(r.dstFS)})
	if err != nil {
		return false, err
	}
	if len(res.FileSystems) == 0 {
		return false, fmt.Errorf("replica %s not found", r.dstFS)
	}
	p := res.FileSystems[0].FileSystemProtection
	return p != nil && p.ReplicationOverwriteProtection != types.ReplicationOverwriteProtectionReplicating, nil
}

// loadMountEnv sets, from mountEnvFile, the variables the environment
// does not set (mount -t efs at boot has no env.sh).
func loadMountEnv() {
	b, err := os.ReadFile(mountEnvFile)
	if err != nil {
		return
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), "=")
		if !ok || strings.HasPrefix(k, "#") || os.Getenv(k) != "" {
			continue
		}
		os.Setenv(k, v)
	}
}
