package main

import (
	"fmt"
	"io"
	"net/url"
	"text/tabwriter"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/efs"
	"github.com/spf13/cobra"
)

// replicationStatus is the answer of GET /2015-02-01/regionfs/replication-status.
type replicationStatus struct {
	Replications []struct {
		ReplicationID      string `json:"ReplicationId"`
		Role               string
		SourceFileSystemID string `json:"SourceFileSystemId"`
		SourceRegion       string `json:"SourceFileSystemRegion"`
		Destinations       []struct {
			Status                  string
			FileSystemID            string `json:"FileSystemId"`
			Region                  string
			LastReplicatedTimestamp *epochTime
			StatusMessage           string
		}
		LagSeconds       *float64
		SourceDurableSeq uint64
		AppliedSeq       uint64
		PendingRecords   uint64
		PendingBytes     uint64
		ShippedRecords   uint64
		ShippedBytes     uint64
		ShippedBlocks    uint64
		AppliedRecords   uint64
		LinkUp           bool
		LastError        string
		KeptCopy         string `json:"KeptCopyFileSystemId"`
		InitialSync      struct {
			Active, Done          bool
			Method                string
			BytesDone, BytesTotal uint64
			FilesDone, FilesTotal uint64
		}
	}
}

func newStatusCmd() *cobra.Command {
	var region, endpoint string
	cmd := &cobra.Command{
		Use:   "status [FILE_SYSTEM_ID]",
		Short: "Show file systems and replication (lag, pending changes, initial-sync progress) of a region",
		Long: `status shows the file systems of a region and every replication configuration
that one of them takes part in, with what regionfs knows beyond
DescribeReplicationConfigurations: lag, pending and shipped changes, the link
to the peer region and the progress of an initial sync or resync. It calls the
public API like any client: credentials, region and endpoint come from the
environment (. regionfs-data/env.sh).`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			c, err := newOpsClient(ctx, region, endpoint)
			if err != nil {
				return err
			}
			in := &efs.DescribeFileSystemsInput{}
			q := url.Values{}
			if len(args) == 1 {
				in.FileSystemId = aws.String(args[0])
				q.Set("FileSystemId", args[0])
			}
			fss, err := c.efs.DescribeFileSystems(ctx, in)
			if err != nil {
				return err
			}
			var rs replicationStatus
			if err := c.call(ctx, "GET", "/2015-02-01/regionfs/replication-status", q, nil, &rs); err != nil {
				if ae, ok := err.(*apiError); !ok || ae.Code != "ReplicationNotFound" {
					return err
				}
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "region %s\n\n", c.cfg.Region)
			tw := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "FILE SYSTEM\tNAME\tSTATE\tSIZE\tPROTECTION\tMOUNT TARGETS\tREPLICATION")
			for _, f := range fss.FileSystems {
				prot := "-"
				if f.FileSystemProtection != nil {
					prot = string(f.FileSystemProtection.ReplicationOverwriteProtection)
				}
				size := "-"
				if f.SizeInBytes != nil {
					size = humanBytes(uint64(f.SizeInBytes.Value))
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\n", aws.ToString(f.FileSystemId), orDash(aws.ToString(f.Name)),
					f.LifeCycleState, size, prot, f.NumberOfMountTargets, roleOf(rs, aws.ToString(f.FileSystemId)))
			}
			tw.Flush()
			if len(rs.Replications) == 0 {
				fmt.Fprintln(out, "\nno replication configurations")
				return nil
			}
			fmt.Fprintln(out)
			printReplications(out, rs)
			return nil
		},
	}
	cmd.Flags().StringVar(&region, "region", "", "region to show (default: AWS_REGION)")
	cmd.Flags().StringVar(&endpoint, "endpoint", "", "API endpoint (default: AWS_ENDPOINT_URL_EFS)")
	return cmd
}

func roleOf(rs replicationStatus, fsID string) string {
	for _, r := range rs.Replications {
		d := r.Destinations[0]
		switch fsID {
		case r.SourceFileSystemID:
			return "source → " + d.Region + " " + d.FileSystemID
		case d.FileSystemID:
			return "replica ← " + r.SourceRegion + " " + r.SourceFileSystemID
		}
	}
	return "-"
}

func printReplications(out io.Writer, rs replicationStatus) {
	tw := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "REPLICATION\tSOURCE\tDESTINATION\tSTATUS\tLAG\tLAST REPLICATED\tPENDING\tSHIPPED\tLINK\tINITIAL SYNC")
	for _, r := range rs.Replications {
		d := r.Destinations[0]
		lag := "-"
		if r.LagSeconds != nil {
			lag = fmt.Sprintf("%.3fs", *r.LagSeconds)
		}
		link := "down"
		if r.LinkUp {
			link = "up"
		}
		sync := "-"
		s := r.InitialSync
		switch {
		case s.Active:
			sync = fmt.Sprintf("%s of %s, %d of %d files", humanBytes(s.BytesDone), humanBytes(s.BytesTotal), s.FilesDone, s.FilesTotal)
			if s.Method != "" {
				sync = "resync by " + s.Method + ": " + sync
			}
		case s.Done:
			sync = "done"
			if s.Method != "" {
				sync = "resync by " + s.Method + " done"
			}
		}
		shipped := "-"
		if r.Role == "source" {
			shipped = fmt.Sprintf("%d rec, %s", r.ShippedRecords, humanBytes(r.ShippedBytes))
		}
		fmt.Fprintf(tw, "%s (%s)\t%s %s\t%s %s\t%s\t%s\t%s\t%d rec, %s\t%s\t%s\t%s\n", r.ReplicationID, r.Role,
			r.SourceRegion, r.SourceFileSystemID, d.Region, d.FileSystemID, d.Status, lag, d.LastReplicatedTimestamp,
			r.PendingRecords, humanBytes(r.PendingBytes), shipped, link, sync)
	}
	tw.Flush()
	for _, r := range rs.Replications {
		if m := r.Destinations[0].StatusMessage; m != "" {
			fmt.Fprintf(out, "%s: %s\n", r.ReplicationID, m)
		}
		if r.KeptCopy != "" {
			fmt.Fprintf(out, "%s: the destination's earlier state is kept, read-only, in %s\n", r.ReplicationID, r.KeptCopy)
		}
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func humanBytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
