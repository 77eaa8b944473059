package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/efs"
	"github.com/spf13/cobra"
)

// replicationInfo is one replication in the answer of GET
// /2015-02-01/regionfs/replication-status (field names as the API's).
type replicationInfo struct {
	ReplicationID      string `json:"ReplicationId"`
	Role               string
	SourceFileSystemID string `json:"SourceFileSystemId"`
	SourceRegion       string `json:"SourceFileSystemRegion"`
	Destinations       []struct {
		Status                  string
		FileSystemID            string `json:"FileSystemId"`
		Region                  string
		LastReplicatedTimestamp *epochTime `json:",omitempty"`
		StatusMessage           string     `json:",omitempty"`
	}
	LagSeconds       *float64 `json:",omitempty"`
	SourceDurableSeq uint64
	AppliedSeq       uint64
	PendingRecords   uint64
	PendingBytes     uint64
	ShippedRecords   uint64
	ShippedBytes     uint64
	ShippedBlocks    uint64
	AppliedRecords   uint64
	LinkUp           bool
	LastError        string `json:",omitempty"`
	KeptCopy         string `json:"KeptCopyFileSystemId,omitempty"`
	InitialSync      syncInfo
	// MaxPromotionLagSeconds is the promotion guard (regionfs replication
	// policy), absent when there is none.
	MaxPromotionLagSeconds *float64 `json:",omitempty"`
	// AutoFailoverAfterSeconds is the automatic failover delay, absent
	// when it is off.
	AutoFailoverAfterSeconds *float64 `json:",omitempty"`
}

// syncInfo is the progress of an initial sync or resync.
type syncInfo struct {
	Active, Done          bool
	Method                string `json:",omitempty"`
	BytesDone, BytesTotal uint64
	FilesDone, FilesTotal uint64
	KeysDone, KeysTotal   uint64
	Started               *epochTime `json:",omitempty"`
	Finished              *epochTime `json:",omitempty"`
}

// replicationStatus is the answer of GET /2015-02-01/regionfs/replication-status.
type replicationStatus struct {
	Replications []replicationInfo
}

// regionStatus is what `regionfs status` shows of one region; --json
// prints it as is.
type regionStatus struct {
	Region       string
	Time         time.Time
	Error        string `json:",omitempty"` // the region could not be asked
	FileSystems  []fileSystemInfo
	Replications []replicationInfo
	Alarms       []alarmInfo
	AlarmsError  string `json:",omitempty"` // CloudWatch could not be asked
	// Storage is the data disk (free space, DISK FULL); nil when the
	// region does not say.
	Storage *storageStatus `json:",omitempty"`
}

// storageStatus is the answer of GET /2015-02-01/regionfs/storage-status.
type storageStatus struct {
	Known                      bool
	AvailableBytes, TotalBytes uint64
	MinFreeBytes, ReserveBytes int64
	Reserved, Full             bool
	FullSince                  *epochTime `json:",omitempty"`
	RefusedWrites              uint64
	Error                      string `json:",omitempty"`
}

// fileSystemInfo is one file system of a region.
type fileSystemInfo struct {
	FileSystemID   string `json:"FileSystemId"`
	Name           string `json:",omitempty"`
	LifeCycleState string
	SizeInBytes    int64
	Protection     string `json:",omitempty"`
	MountTargets   int32
	// Replication says the file system's part: "→ us-west-2" (the source
	// of a replication into that region), "← us-east-1" (a replica of a
	// file system there), or empty.
	Replication string `json:",omitempty"`
}

type statusOptions struct {
	region, endpoint string
	watch, json, all bool
	interval         time.Duration
}

func newStatusCmd() *cobra.Command {
	var o statusOptions
	cmd := &cobra.Command{
		Use:   "status [FILE_SYSTEM_ID]",
		Short: "Show file systems and replication (lag, pending changes, sync progress) of a region or all",
		Long: `status shows the file systems of a region and every replication configuration
one of them takes part in, with what regionfs knows beyond
DescribeReplicationConfigurations: lag, pending and shipped changes, the link
to the peer region, and the progress of an initial sync, resync or failback
(percentage, rate and time left; a bar on a terminal).

It calls the public API like any client: credentials, region and endpoint
come from the environment (. regionfs-data/env.sh).

  regionfs status                      # the region of AWS_REGION
  regionfs status --all-regions        # every region, through the edge
  regionfs status --watch              # refresh every 2 s until Ctrl-C
  regionfs status --json               # the same facts for scripts`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			fsID := ""
			if len(args) == 1 {
				fsID = args[0]
			}
			return runStatus(cmd.Context(), cmd.OutOrStdout(), o, fsID)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.region, "region", "", "region to show (default: AWS_REGION)")
	f.StringVar(&o.endpoint, "endpoint", "", "API endpoint (default: AWS_ENDPOINT_URL_EFS)")
	f.BoolVar(&o.all, "all-regions", false, "show every region (DescribeRegions of the region, then each through the endpoint)")
	f.BoolVarP(&o.watch, "watch", "w", false, "refresh until interrupted")
	f.DurationVar(&o.interval, "interval", 2*time.Second, "with --watch: time between refreshes")
	f.BoolVar(&o.json, "json", false, "print JSON (with --watch: one document per line and refresh)")
	return cmd
}

func runStatus(ctx context.Context, out io.Writer, o statusOptions, fsID string) error {
	if o.interval < 100*time.Millisecond {
		return fmt.Errorf("--interval %s is too short (at least 100ms)", o.interval)
	}
	c, err := newOpsClient(ctx, o.region, o.endpoint)
	if err != nil {
		return err
	}
	d := displayOf(out)
	var rates rateTracker
	for first := true; ; first = false {
		sts, err := gatherStatus(ctx, c, o.all, fsID)
		if err != nil {
			return err
		}
		if !o.watch && len(sts) == 1 && sts[0].Error != "" {
			return errors.New(sts[0].Error)
		}
		switch {
		case o.json && o.watch:
			b, _ := json.Marshal(jsonStatus(sts, o.all))
			fmt.Fprintf(out, "%s\n", b)
		case o.json:
			b, _ := json.MarshalIndent(jsonStatus(sts, o.all), "", "  ")
			fmt.Fprintf(out, "%s\n", b)
		default:
			var b strings.Builder
			for i, st := range sts {
				if i > 0 {
					b.WriteString("\n")
				}
				writeRegionStatus(&b, st, d, &rates)
			}
			switch {
			case o.watch && d.tty:
				// Home, draw, clear what the last drawing left below.
				fmt.Fprint(out, "\x1b[H"+strings.ReplaceAll(b.String(), "\n", "\x1b[K\n")+"\x1b[J")
			case o.watch && !first:
				fmt.Fprint(out, "\n"+b.String())
			default:
				fmt.Fprint(out, b.String())
			}
		}
		if !o.watch {
			return nil
		}
		if first && d.tty && !o.json {
			defer fmt.Fprint(out, "\n")
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(o.interval):
		}
	}
}

func jsonStatus(sts []regionStatus, all bool) any {
	if all {
		return struct{ Regions []regionStatus }{sts}
	}
	return sts[0]
}

// gatherStatus asks the client's region, or every region.
func gatherStatus(ctx context.Context, c *opsClient, all bool, fsID string) ([]regionStatus, error) {
	if !all {
		return []regionStatus{regionStatusOf(ctx, c, fsID)}, nil
	}
	regions, err := c.regions(ctx)
	if err != nil {
		return nil, fmt.Errorf("list the regions (DescribeRegions in %s): %w; pass --region to ask another", c.cfg.Region, err)
	}
	sts := make([]regionStatus, len(regions))
	done := make(chan struct{})
	for i, r := range regions {
		go func() {
			defer func() { done <- struct{}{} }()
			sts[i] = regionStatusOf(ctx, c.inRegion(r), fsID)
		}()
	}
	for range regions {
		<-done
	}
	return sts, nil
}

// regionStatusOf asks one region; a region that cannot answer is reported
// in the status, not as an error.
func regionStatusOf(ctx context.Context, c *opsClient, fsID string) regionStatus {
	st := regionStatus{Region: c.cfg.Region, Time: time.Now().UTC(), FileSystems: []fileSystemInfo{}, Replications: []replicationInfo{}}
	in := &efs.DescribeFileSystemsInput{}
	q := url.Values{}
	if fsID != "" {
		in.FileSystemId = aws.String(fsID)
		q.Set("FileSystemId", fsID)
	}
	for p := efs.NewDescribeFileSystemsPaginator(c.efs, in); p.HasMorePages(); {
		page, err := p.NextPage(ctx)
		if err != nil {
			st.Error = fmt.Sprintf("%s: %v", c.cfg.Region, err)
			return st
		}
		for _, f := range page.FileSystems {
			fi := fileSystemInfo{FileSystemID: aws.ToString(f.FileSystemId), Name: aws.ToString(f.Name),
				LifeCycleState: string(f.LifeCycleState), MountTargets: f.NumberOfMountTargets}
			if f.SizeInBytes != nil {
				fi.SizeInBytes = f.SizeInBytes.Value
			}
			if f.FileSystemProtection != nil {
				fi.Protection = string(f.FileSystemProtection.ReplicationOverwriteProtection)
			}
			st.FileSystems = append(st.FileSystems, fi)
		}
	}
	var rs replicationStatus
	if err := c.call(ctx, "GET", "/2015-02-01/regionfs/replication-status", q, nil, &rs); err != nil {
		var ae *apiError
		// UnknownOperationException: the region has no replication configured.
		if !errors.As(err, &ae) || ae.Code != "ReplicationNotFound" && ae.Code != "UnknownOperationException" {
			st.Error = fmt.Sprintf("%s: replication status: %v", c.cfg.Region, err)
			return st
		}
	}
	sort.Slice(rs.Replications, func(i, j int) bool {
		a, b := rs.Replications[i], rs.Replications[j]
		if a.ReplicationID != b.ReplicationID {
			return a.ReplicationID < b.ReplicationID
		}
		return a.Role > b.Role // a same-region replication: its source end first
	})
	st.Replications = append(st.Replications, rs.Replications...)
	for i := range st.FileSystems {
		st.FileSystems[i].Replication = roleOf(rs, st.FileSystems[i].FileSystemID)
	}
	var disk storageStatus
	if err := c.call(ctx, "GET", "/2015-02-01/regionfs/storage-status", nil, nil, &disk); err == nil && disk.Known {
		st.Storage = &disk
	}
	alarms, err := alarmsOf(ctx, c)
	if err != nil {
		st.AlarmsError = err.Error()
	}
	st.Alarms = alarms
	return st
}

func roleOf(rs replicationStatus, fsID string) string {
	for _, r := range rs.Replications {
		d := r.Destinations[0]
		switch fsID {
		case r.SourceFileSystemID:
			return "→ " + d.Region
		case d.FileSystemID:
			return "← " + r.SourceRegion
		}
	}
	return ""
}

// regions lists the regions the client's region knows (itself and its
// peers), through EC2 DescribeRegions at the same endpoint.
func (c *opsClient) regions(ctx context.Context) ([]string, error) {
	e := ec2.NewFromConfig(c.cfg, func(o *ec2.Options) { o.BaseEndpoint = aws.String(c.endpoint) })
	out, err := e.DescribeRegions(ctx, &ec2.DescribeRegionsInput{})
	if err != nil {
		return nil, err
	}
	var names []string
	for _, r := range out.Regions {
		names = append(names, aws.ToString(r.RegionName))
	}
	sort.Strings(names)
	return names, nil
}
