package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/efs"
	"github.com/aws/aws-sdk-go-v2/service/efs/types"
	"github.com/spf13/cobra"

	"github.com/regionfs/regionfs/internal/config"
)

type failbackOptions struct {
	region, endpoint, original, originalRegion string
	switchBack, protect                        bool
	timeout                                    time.Duration
}

func newFailbackCmd() *cobra.Command {
	var o failbackOptions
	cmd := &cobra.Command{
		Use:   "failback PROMOTED_FILE_SYSTEM_ID --original ID --original-region REGION",
		Short: "Replicate a promoted file system back into the original, sending only what changed",
		Long: `failback does what EFS documents for failing back, with the calls any client
can make: it sets the original file system's replication overwrite protection
to DISABLED, then creates a replication configuration from the promoted file
system into the original. regionfs resynchronises the original by sending only
the keys either side changed since the failover (or, when a journal no longer
reaches back, the ranges whose checksums differ); what the original had that
the promoted file system does not is kept first in a read-only copy. It waits,
showing the resync's progress, until the original is an up-to-date replica.
Run again after it was cut short, it waits for the replication it created.

With --switch-back it then makes a planned failover back to the original (no
change lost) and, unless --protect=false, replicates the original again into
the file system that was promoted, so that the original is not left without
a replica: the state before the failover, with the roles as they were.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.original == "" || o.originalRegion == "" {
				return fmt.Errorf("--original and --original-region are required")
			}
			return runFailback(cmd.Context(), cmd.OutOrStdout(), o, args[0])
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.region, "region", "", "region of the promoted file system (default: AWS_REGION)")
	f.StringVar(&o.endpoint, "endpoint", "", "API endpoint (default: AWS_ENDPOINT_URL_EFS)")
	f.StringVar(&o.original, "original", "", "the original file system to fail back into")
	f.StringVar(&o.originalRegion, "original-region", "", "region of the original file system")
	f.BoolVar(&o.switchBack, "switch-back", false, "then fail over to the original (planned, no change lost)")
	f.BoolVar(&o.protect, "protect", true, "with --switch-back: then replicate the original into the promoted file system again")
	f.DurationVar(&o.timeout, "timeout", 30*time.Minute, "how long to wait for each resync")
	return cmd
}

func runFailback(ctx context.Context, out io.Writer, o failbackOptions, promoted string) error {
	orig, err := newOpsClient(ctx, o.originalRegion, o.endpoint)
	if err != nil {
		return err
	}
	src, err := newOpsClient(ctx, o.region, o.endpoint)
	if err != nil {
		return err
	}
	var (
		r    replicationInfo
		took time.Duration
	)
	resume, err := replicatesInto(ctx, src, promoted, o.originalRegion, o.original)
	if err != nil {
		return err
	}
	if resume {
		// A failback cut short (this command or a region killed) left its
		// replication in place: wait for it. Setting the protection again
		// would fail (ReplicationAlreadyExists).
		fmt.Fprintf(out, "replicating %s (%s) into %s (%s): already configured, waiting for it\n", promoted, src.cfg.Region, o.original, o.originalRegion)
		start := time.Now()
		r, err = waitEnabled(ctx, out, src, promoted, o.timeout)
		took = time.Since(start)
	} else {
		var p *efs.UpdateFileSystemProtectionOutput
		p, err = orig.efs.UpdateFileSystemProtection(ctx, &efs.UpdateFileSystemProtectionInput{
			FileSystemId: aws.String(o.original), ReplicationOverwriteProtection: types.ReplicationOverwriteProtectionDisabled})
		if err != nil {
			return fmt.Errorf("set the protection of %s to DISABLED: %w", o.original, err)
		}
		fmt.Fprintf(out, "%s (%s): replication overwrite protection %s\n", o.original, o.originalRegion, p.ReplicationOverwriteProtection)
		r, took, err = replicateAndWait(ctx, out, src, promoted, o.originalRegion, o.original, o.timeout)
	}
	if err != nil {
		return err
	}
	method := r.InitialSync.Method
	if method == "" {
		method = "full copy"
	}
	fmt.Fprintf(out, "the original is an up-to-date replica after %s: resync by %s, %s sent (%s)\n",
		took.Round(time.Millisecond), method, config.FormatBytes(r.ShippedBytes), plural(int(r.ShippedBlocks), "block"))
	if r.KeptCopy != "" {
		fmt.Fprintf(out, "what only the original had is kept, read-only, in %s (%s)\n", r.KeptCopy, o.originalRegion)
	}
	if !o.switchBack {
		fmt.Fprintf(out, "to make the original the source again: regionfs failover --planned %s --region %s\n", promoted, src.cfg.Region)
		return nil
	}
	rp, _, err := plannedFailover(ctx, out, src, promoted)
	if err != nil {
		return fmt.Errorf("switch back: %w", err)
	}
	fmt.Fprintf(out, "switched back: %s (%s) is writable again at seq %d; %s (%s) is read-only (protection DISABLED)\n",
		o.original, o.originalRegion, rp.Seq, promoted, src.cfg.Region)
	again := fmt.Sprintf("regionfs failback %s --region %s --original %s --original-region %s",
		o.original, o.originalRegion, promoted, src.cfg.Region)
	if !o.protect {
		fmt.Fprintf(out, "%s has no replica now; to replicate it into %s again: %s\n", o.original, promoted, again)
		return nil
	}
	// The promoted file system is fenced (protection DISABLED): it can be
	// the destination again, and holds what the original holds.
	r, took, err = replicateAndWait(ctx, out, orig, o.original, src.cfg.Region, promoted, o.timeout)
	if err != nil {
		return fmt.Errorf("%w\n%s has no up-to-date replica; to retry: %s", err, o.original, again)
	}
	fmt.Fprintf(out, "protected again: %s (%s) replicates into %s (%s), %s after %s (%s sent)\n",
		o.original, o.originalRegion, promoted, src.cfg.Region, r.Destinations[0].Status, took.Round(time.Millisecond), config.FormatBytes(r.ShippedBytes))
	return nil
}

// replicatesInto reports whether srcFS (in c's region) already replicates
// into dstFS in dstRegion.
func replicatesInto(ctx context.Context, c *opsClient, srcFS, dstRegion, dstFS string) (bool, error) {
	out, err := c.efs.DescribeReplicationConfigurations(ctx, &efs.DescribeReplicationConfigurationsInput{FileSystemId: aws.String(srcFS)})
	var nf *types.ReplicationNotFound
	if errors.As(err, &nf) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("describe the replication of %s (%s): %w", srcFS, c.cfg.Region, err)
	}
	for _, r := range out.Replications {
		if aws.ToString(r.SourceFileSystemId) != srcFS {
			continue
		}
		for _, d := range r.Destinations {
			if aws.ToString(d.Region) == dstRegion && aws.ToString(d.FileSystemId) == dstFS {
				return true, nil
			}
		}
	}
	return false, nil
}

// replicateAndWait creates the replication of srcFS (in c's region) into
// the existing dstFS and waits, showing the progress, until it is ENABLED.
func replicateAndWait(ctx context.Context, out io.Writer, c *opsClient, srcFS, dstRegion, dstFS string, timeout time.Duration) (replicationInfo, time.Duration, error) {
	start := time.Now()
	rc, err := c.efs.CreateReplicationConfiguration(ctx, &efs.CreateReplicationConfigurationInput{
		SourceFileSystemId: aws.String(srcFS),
		Destinations:       []types.DestinationToCreate{{Region: aws.String(dstRegion), FileSystemId: aws.String(dstFS)}},
	})
	if err != nil {
		return replicationInfo{}, 0, fmt.Errorf("replicate %s (%s) into %s (%s): %w", srcFS, c.cfg.Region, dstFS, dstRegion, err)
	}
	fmt.Fprintf(out, "replicating %s (%s) into %s (%s): %s\n", srcFS, c.cfg.Region, dstFS, dstRegion, rc.Destinations[0].Status)
	r, err := waitEnabled(ctx, out, c, srcFS, timeout)
	return r, time.Since(start), err
}

// waitEnabled polls the replication of fsID until it is ENABLED, showing
// its sync's progress on a live line.
func waitEnabled(ctx context.Context, out io.Writer, c *opsClient, fsID string, timeout time.Duration) (replicationInfo, error) {
	d := displayOf(out)
	live := &liveLine{out: out, d: d}
	defer live.end()
	var rates rateTracker
	deadline := time.Now().Add(timeout)
	q := url.Values{"FileSystemId": {fsID}}
	for {
		var rs replicationStatus
		if err := c.call(ctx, "GET", "/2015-02-01/regionfs/replication-status", q, nil, &rs); err != nil {
			return replicationInfo{}, err
		}
		var r *replicationInfo
		for i := range rs.Replications {
			if rs.Replications[i].Role == "source" {
				r = &rs.Replications[i]
			}
		}
		now := time.Now()
		if r != nil {
			if r.Destinations[0].Status == "ENABLED" {
				return *r, nil
			}
			switch s := syncLine(*r, now, d, &rates); {
			case s != "":
				live.show(s)
			case !r.LinkUp:
				live.show("  connecting to " + r.Destinations[0].Region + "…")
			default:
				live.show("  " + r.Destinations[0].Status + "…")
			}
		}
		if now.After(deadline) {
			live.end()
			if r != nil {
				writeReplication(out, *r, now, d, &rates)
			}
			return replicationInfo{}, fmt.Errorf("the replication of %s is not ENABLED after %s", fsID, timeout)
		}
		select {
		case <-ctx.Done():
			return replicationInfo{}, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// plannedFailover runs a planned failover of fsID (in c's region), showing
// the drain (pending changes and lag) while the call runs.
func plannedFailover(ctx context.Context, out io.Writer, c *opsClient, fsID string) (rp recoveryPoint, serverSeconds float64, err error) {
	var fr struct {
		RecoveryPoint recoveryPoint
		Seconds       float64
	}
	done := make(chan error, 1)
	go func() {
		done <- c.call(ctx, "POST", "/2015-02-01/regionfs/failover", nil, map[string]any{"FileSystemId": fsID, "Planned": true}, &fr)
	}()
	d := displayOf(out)
	live := &liveLine{out: out, d: d}
	defer live.end()
	q := url.Values{"FileSystemId": {fsID}}
	start := time.Now()
	for {
		select {
		case err := <-done:
			return fr.RecoveryPoint, fr.Seconds, err
		case <-time.After(250 * time.Millisecond):
		}
		var rs replicationStatus
		if err := c.call(ctx, "GET", "/2015-02-01/regionfs/replication-status", q, nil, &rs); err != nil {
			continue // the configuration goes away at the end
		}
		for _, r := range rs.Replications {
			if r.Role != "source" {
				continue
			}
			lag := "-"
			if r.LagSeconds != nil {
				lag = fmt.Sprintf("%.3fs", *r.LagSeconds)
			}
			live.show(fmt.Sprintf("  planned failover: writes stopped, draining %s to %s (lag %s, %s)",
				recordsAndBytes(r.PendingRecords, r.PendingBytes), r.Destinations[0].Region, lag, shortDuration(time.Since(start))))
		}
	}
}

// liveLine is one line of changing progress: redrawn in place on a
// terminal; elsewhere printed when it changes, at most every 5 s.
type liveLine struct {
	out    io.Writer
	d      display
	last   string
	lastAt time.Time
	drawn  bool
}

func (l *liveLine) show(s string) {
	s = clipWidth(s, l.d.width)
	if l.d.tty {
		fmt.Fprint(l.out, "\r"+s+"\x1b[K")
		l.drawn = true
		return
	}
	if s == l.last || time.Since(l.lastAt) < 5*time.Second && l.last != "" {
		return
	}
	fmt.Fprintln(l.out, s)
	l.last, l.lastAt = s, time.Now()
}

// end finishes a line drawn in place.
func (l *liveLine) end() {
	if l.drawn {
		fmt.Fprint(l.out, "\r\x1b[K")
		l.drawn = false
	}
}
