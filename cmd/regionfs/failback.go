package main

import (
	"fmt"
	"net/url"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/efs"
	"github.com/aws/aws-sdk-go-v2/service/efs/types"
	"github.com/spf13/cobra"
)

func newFailbackCmd() *cobra.Command {
	var region, endpoint, original, originalRegion string
	var switchBack bool
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "failback PROMOTED_FILE_SYSTEM_ID --original ID --original-region REGION",
		Short: "Replicate a promoted file system back into the original, sending only what changed",
		Long: `failback does what EFS documents for failing back, with the calls any client
can make: it sets the original file system's replication overwrite protection
to DISABLED, then creates a replication configuration from the promoted file
system into the original. regionfs resynchronises the original by sending only
the keys either side changed since the failover (or, when a journal no longer
reaches back, the ranges whose checksums differ); what the original had that
the promoted file system does not is kept first in a read-only copy. It waits
until the original is an up-to-date replica; with --switch-back it then makes a
planned failover back to the original (no change lost).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if original == "" || originalRegion == "" {
				return fmt.Errorf("--original and --original-region are required")
			}
			out := cmd.OutOrStdout()
			orig, err := newOpsClient(ctx, originalRegion, endpoint)
			if err != nil {
				return err
			}
			src, err := newOpsClient(ctx, region, endpoint)
			if err != nil {
				return err
			}
			p, err := orig.efs.UpdateFileSystemProtection(ctx, &efs.UpdateFileSystemProtectionInput{
				FileSystemId: aws.String(original), ReplicationOverwriteProtection: types.ReplicationOverwriteProtectionDisabled})
			if err != nil {
				return fmt.Errorf("set the protection of %s to DISABLED: %w", original, err)
			}
			fmt.Fprintf(out, "%s (%s): replication overwrite protection %s\n", original, originalRegion, p.ReplicationOverwriteProtection)
			start := time.Now()
			rc, err := src.efs.CreateReplicationConfiguration(ctx, &efs.CreateReplicationConfigurationInput{
				SourceFileSystemId: aws.String(args[0]),
				Destinations:       []types.DestinationToCreate{{Region: aws.String(originalRegion), FileSystemId: aws.String(original)}},
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(out, "replicating %s (%s) into %s (%s): %s\n", args[0], src.cfg.Region, original, originalRegion, rc.Destinations[0].Status)
			deadline := time.Now().Add(timeout)
			q := url.Values{"FileSystemId": {args[0]}}
			var rs replicationStatus
			for {
				if err := src.call(ctx, "GET", "/2015-02-01/regionfs/replication-status", q, nil, &rs); err != nil {
					return err
				}
				if len(rs.Replications) == 1 && rs.Replications[0].Destinations[0].Status == "ENABLED" {
					break
				}
				if time.Now().After(deadline) {
					printReplications(out, rs)
					return fmt.Errorf("the original is not an up-to-date replica after %s", timeout)
				}
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(200 * time.Millisecond):
				}
			}
			r := rs.Replications[0]
			method := r.InitialSync.Method
			if method == "" {
				method = "full copy"
			}
			fmt.Fprintf(out, "the original is an up-to-date replica after %s: resync by %s, %s sent (%d blocks)\n",
				time.Since(start).Round(time.Millisecond), method, humanBytes(r.ShippedBytes), r.ShippedBlocks)
			if r.KeptCopy != "" {
				fmt.Fprintf(out, "what only the original had is kept, read-only, in %s (%s)\n", r.KeptCopy, originalRegion)
			}
			if !switchBack {
				fmt.Fprintf(out, "to make the original the source again: regionfs failover --planned %s --region %s\n", args[0], src.cfg.Region)
				return nil
			}
			var fr struct{ RecoveryPoint recoveryPoint }
			if err := src.call(ctx, "POST", "/2015-02-01/regionfs/failover", nil, map[string]any{"FileSystemId": args[0], "Planned": true}, &fr); err != nil {
				return fmt.Errorf("switch back: %w", err)
			}
			fmt.Fprintf(out, "switched back: %s (%s) is writable again at seq %d; %s (%s) is read-only (protection DISABLED)\n",
				original, originalRegion, fr.RecoveryPoint.Seq, args[0], src.cfg.Region)
			return nil
		},
	}
	cmd.Flags().StringVar(&region, "region", "", "region of the promoted file system (default: AWS_REGION)")
	cmd.Flags().StringVar(&endpoint, "endpoint", "", "API endpoint (default: AWS_ENDPOINT_URL_EFS)")
	cmd.Flags().StringVar(&original, "original", "", "the original file system to fail back into")
	cmd.Flags().StringVar(&originalRegion, "original-region", "", "region of the original file system")
	cmd.Flags().BoolVar(&switchBack, "switch-back", false, "then fail over to the original (planned, no change lost)")
	cmd.Flags().DurationVar(&timeout, "timeout", 30*time.Minute, "how long to wait for the resync")
	return cmd
}
