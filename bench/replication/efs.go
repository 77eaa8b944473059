package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/efs"
	"github.com/aws/aws-sdk-go-v2/service/efs/types"
)

const (
	east = "us-east-1"
	west = "us-west-2"
)

// cloud is the AWS SDK pointed at the dev edge, one EFS and EC2 client
// per region, plus SigV4-signed calls to regionfs's own operations.
type cloud struct {
	creds aws.Credentials
	efs   map[string]*efs.Client
	ec2   map[string]*ec2.Client
	http  *http.Client
	// per region: the first subnet and the security group
	subnet, sg map[string]string
}

// newCloud points the SDK at the benchmark's edge.
func newCloud(ctx context.Context, accessKey, secret string) (*cloud, error) {
	c := &cloud{
		creds:  aws.Credentials{AccessKeyID: accessKey, SecretAccessKey: secret, Source: "bench"},
		efs:    map[string]*efs.Client{},
		ec2:    map[string]*ec2.Client{},
		http:   &http.Client{Timeout: time.Minute},
		subnet: map[string]string{},
		sg:     map[string]string{},
	}
	endpoint := "http://" + benchEdge
	for _, region := range []string{east, west} {
		cfg := aws.Config{
			Region:           region,
			Credentials:      credentials.StaticCredentialsProvider{Value: c.creds},
			HTTPClient:       c.http,
			RetryMaxAttempts: 3,
		}
		c.efs[region] = efs.NewFromConfig(cfg, func(o *efs.Options) { o.BaseEndpoint = aws.String(endpoint) })
		c.ec2[region] = ec2.NewFromConfig(cfg, func(o *ec2.Options) { o.BaseEndpoint = aws.String(endpoint) })
		sn, err := c.ec2[region].DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{})
		if err != nil {
			return nil, fmt.Errorf("%s: describe-subnets: %w", region, err)
		}
		sg, err := c.ec2[region].DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{})
		if err != nil {
			return nil, fmt.Errorf("%s: describe-security-groups: %w", region, err)
		}
		if len(sn.Subnets) == 0 || len(sg.SecurityGroups) == 0 {
			return nil, fmt.Errorf("%s: no subnet or security group", region)
		}
		c.subnet[region] = aws.ToString(sn.Subnets[0].SubnetId)
		c.sg[region] = aws.ToString(sg.SecurityGroups[0].GroupId)
	}
	return c, nil
}

// createFS creates a file system and waits until it is available.
func (c *cloud) createFS(ctx context.Context, region, token string) (string, error) {
	out, err := c.efs[region].CreateFileSystem(ctx, &efs.CreateFileSystemInput{CreationToken: aws.String(token), Encrypted: aws.Bool(true)})
	if err != nil {
		return "", fmt.Errorf("create-file-system %s: %w", token, err)
	}
	id := aws.ToString(out.FileSystemId)
	return id, c.waitFS(ctx, region, id)
}

func (c *cloud) waitFS(ctx context.Context, region, id string) error {
	deadline := time.Now().Add(60 * time.Second)
	for {
		d, err := c.efs[region].DescribeFileSystems(ctx, &efs.DescribeFileSystemsInput{FileSystemId: aws.String(id)})
		if err == nil && len(d.FileSystems) == 1 && d.FileSystems[0].LifeCycleState == types.LifeCycleStateAvailable {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not available after 60 s (%v)", id, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// createMountTarget makes a mount target in the region's first subnet,
// waits until it is available and answers MOUNT, and returns its address.
func (c *cloud) createMountTarget(ctx context.Context, region, fsID string) (target, error) {
	if err := c.waitFS(ctx, region, fsID); err != nil {
		return target{}, err
	}
	mt, err := c.efs[region].CreateMountTarget(ctx, &efs.CreateMountTargetInput{
		FileSystemId: aws.String(fsID), SubnetId: aws.String(c.subnet[region]), SecurityGroups: []string{c.sg[region]}})
	if err != nil {
		return target{}, fmt.Errorf("create-mount-target %s: %w", fsID, err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		d, err := c.efs[region].DescribeMountTargets(ctx, &efs.DescribeMountTargetsInput{MountTargetId: mt.MountTargetId})
		if err == nil && len(d.MountTargets) == 1 && d.MountTargets[0].LifeCycleState == types.LifeCycleStateAvailable {
			t := mountTarget(region+" "+fsID, aws.ToString(d.MountTargets[0].IpAddress))
			s, err := t.dialRetry(ctx, 30*time.Second)
			if err != nil {
				return target{}, err
			}
			s.close()
			return t, nil
		}
		if time.Now().After(deadline) {
			return target{}, fmt.Errorf("mount target of %s not available after 60 s (%v)", fsID, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// replicate creates a replication configuration from fsID (in us-east-1
// unless region says otherwise) to destRegion, into destFS if given.
func (c *cloud) replicate(ctx context.Context, region, fsID, destRegion, destFS string) (string, error) {
	d := types.DestinationToCreate{Region: aws.String(destRegion)}
	if destFS != "" {
		d.FileSystemId = aws.String(destFS)
	}
	out, err := c.efs[region].CreateReplicationConfiguration(ctx, &efs.CreateReplicationConfigurationInput{
		SourceFileSystemId: aws.String(fsID), Destinations: []types.DestinationToCreate{d}})
	if err != nil {
		return "", fmt.Errorf("create-replication-configuration %s → %s: %w", fsID, destRegion, err)
	}
	if len(out.Destinations) != 1 || aws.ToString(out.Destinations[0].FileSystemId) == "" {
		return "", fmt.Errorf("create-replication-configuration %s: no destination file system id", fsID)
	}
	return aws.ToString(out.Destinations[0].FileSystemId), nil
}

// replicationState returns Destinations[0].Status and LastReplicatedTimestamp.
func (c *cloud) replicationState(ctx context.Context, region, fsID string) (string, time.Time, error) {
	out, err := c.efs[region].DescribeReplicationConfigurations(ctx, &efs.DescribeReplicationConfigurationsInput{FileSystemId: aws.String(fsID)})
	if err != nil {
		return "", time.Time{}, err
	}
	if len(out.Replications) == 0 || len(out.Replications[0].Destinations) == 0 {
		return "", time.Time{}, errors.New("no replication")
	}
	d := out.Replications[0].Destinations[0]
	return string(d.Status), aws.ToTime(d.LastReplicatedTimestamp), nil
}

// waitEnabled polls DescribeReplicationConfigurations every interval
// until the status is ENABLED and returns when it saw it.
func (c *cloud) waitEnabled(ctx context.Context, region, fsID string, interval, timeout time.Duration) (time.Time, error) {
	deadline := time.Now().Add(timeout)
	var last string
	for {
		st, _, err := c.replicationState(ctx, region, fsID)
		if err == nil && st == string(types.ReplicationStatusEnabled) {
			return time.Now(), nil
		}
		if err != nil {
			last = err.Error()
		} else {
			last = st
		}
		if time.Now().After(deadline) {
			return time.Time{}, fmt.Errorf("replication of %s not ENABLED after %s (last: %s)", fsID, timeout, last)
		}
		time.Sleep(interval)
	}
}

// waitReplicatedAfter waits until LastReplicatedTimestamp is at or after t.
func (c *cloud) waitReplicatedAfter(ctx context.Context, region, fsID string, t time.Time, timeout time.Duration) (time.Time, error) {
	deadline := time.Now().Add(timeout)
	for {
		_, last, err := c.replicationState(ctx, region, fsID)
		if err == nil && !last.Before(t) {
			return time.Now(), nil
		}
		if time.Now().After(deadline) {
			return time.Time{}, fmt.Errorf("LastReplicatedTimestamp of %s not past %s after %s (%v, %v)", fsID, t.Format(time.StampMilli), timeout, last, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// replStatus is the part of GET /2015-02-01/regionfs/replication-status
// the harness reads.
type replStatus struct {
	ReplicationID  string `json:"ReplicationId"`
	Role           string
	ShippedRecords uint64
	ShippedBytes   uint64
	ShippedBlocks  uint64
	AppliedRecords uint64
	PendingRecords uint64
	LagSeconds     *float64
	Destinations   []struct {
		Status        string
		FileSystemID  string `json:"FileSystemId"`
		StatusMessage string
	}
	InitialSync struct {
		Active, Done          bool
		Method                string
		BytesDone, BytesTotal uint64
		FilesDone, FilesTotal uint64
	}
}

// status calls regionfs's replication-status operation (SigV4-signed like
// `regionfs status`).
func (c *cloud) status(ctx context.Context, region, fsID string) ([]replStatus, error) {
	u := "http://" + benchEdge + "/2015-02-01/regionfs/replication-status?" + url.Values{"FileSystemId": {fsID}}.Encode()
	req, err := http.NewRequestWithContext(ctx, "GET", u, nil)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(nil)
	if err := v4.NewSigner().SignHTTP(ctx, c.creds, req, hex.EncodeToString(sum[:]), "elasticfilesystem", region, time.Now()); err != nil {
		return nil, err
	}
	res, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, 16<<20))
	if err != nil {
		return nil, err
	}
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("replication-status %s: %s: %s", fsID, res.Status, bytes.TrimSpace(b))
	}
	var out struct{ Replications []replStatus }
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, err
	}
	return out.Replications, nil
}

// failover deletes the replication configuration of srcFS from region
// (us-west-2: a failover) and returns how long the call took.
func (c *cloud) deleteReplication(ctx context.Context, region, srcFS string) (time.Duration, error) {
	t0 := time.Now()
	_, err := c.efs[region].DeleteReplicationConfiguration(ctx, &efs.DeleteReplicationConfigurationInput{SourceFileSystemId: aws.String(srcFS)})
	if err != nil {
		return 0, fmt.Errorf("delete-replication-configuration %s in %s: %w", srcFS, region, err)
	}
	return time.Since(t0), nil
}

func (c *cloud) setProtectionDisabled(ctx context.Context, region, fsID string) error {
	_, err := c.efs[region].UpdateFileSystemProtection(ctx, &efs.UpdateFileSystemProtectionInput{
		FileSystemId: aws.String(fsID), ReplicationOverwriteProtection: types.ReplicationOverwriteProtectionDisabled})
	if err != nil {
		return fmt.Errorf("update-file-system-protection %s DISABLED: %w", fsID, err)
	}
	return nil
}
