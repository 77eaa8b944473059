package efsrepl

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/efs"
	"github.com/aws/aws-sdk-go-v2/service/efs/types"
	"github.com/aws/smithy-go"

	"github.com/regionfs/regionfs/internal/control"
	"github.com/regionfs/regionfs/internal/control/replconf"
	"github.com/regionfs/regionfs/internal/engine"
	"github.com/regionfs/regionfs/internal/replication"
	"github.com/regionfs/regionfs/internal/testkit"
)

// fakeManager answers like replconf.Manager (whose semantics are tested
// in its own package); here the wire shapes are what is under test.
type fakeManager struct {
	mu      sync.Mutex
	configs []replconf.Description
	calls   []string
}

func (f *fakeManager) Create(_ context.Context, src string, dests []replconf.Destination) (replconf.Description, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, fmt.Sprintf("create %s %+v", src, dests))
	if src == "fs-00000000000000000" {
		return replconf.Description{}, fmt.Errorf("%w: %s", control.ErrFileSystemNotFound, src)
	}
	for _, c := range f.configs {
		if c.SourceFileSystemID == src {
			return replconf.Description{}, fmt.Errorf("%w: %s", control.ErrReplicationAlreadyExists, src)
		}
	}
	if len(dests) != 1 {
		return replconf.Description{}, fmt.Errorf("%w: exactly one destination", control.ErrValidation)
	}
	d := replconf.Description{Config: replconf.Config{ID: "rc-1", SourceFileSystemID: src, SourceRegion: "us-east-1",
		SourceARN: "arn:aws:elasticfilesystem:us-east-1:123456789012:file-system/" + src, OriginalSourceARN: "arn:aws:elasticfilesystem:us-east-1:123456789012:file-system/" + src,
		CreationTime: time.Unix(1700000000, 0), DestFileSystemID: "fs-0aaaaaaaaaaaaaaaa", DestRegion: dests[0].Region, DestOwnerID: "123456789012"},
		Status: replication.StateEnabling}
	f.configs = append(f.configs, d)
	return d, nil
}

// DescribeEnds: the fake keeps one end per configuration.
func (f *fakeManager) DescribeEnds(ctx context.Context, fsID string) ([]replconf.Description, error) {
	return f.Describe(ctx, fsID)
}

func (f *fakeManager) Describe(_ context.Context, fsID string) ([]replconf.Description, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []replconf.Description
	for _, c := range f.configs {
		if fsID == "" || c.SourceFileSystemID == fsID || c.DestFileSystemID == fsID {
			c.Status, c.LastReplicated = replication.StateEnabled, time.Unix(1700000100, 500_000_000)
			out = append(out, c)
		}
	}
	if len(out) == 0 && fsID != "" {
		return nil, fmt.Errorf("%w: %s", control.ErrReplicationNotFound, fsID)
	}
	return out, nil
}

func (f *fakeManager) Delete(_ context.Context, fsID, mode string) (*replconf.Promotion, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "delete "+fsID+" "+mode)
	for i, c := range f.configs {
		if c.SourceFileSystemID == fsID || c.DestFileSystemID == fsID {
			f.configs = append(f.configs[:i], f.configs[i+1:]...)
			return &replconf.Promotion{RecoveryPoint: engine.RecoveryPoint{Seq: 9}}, nil
		}
	}
	return nil, fmt.Errorf("%w: %s", control.ErrReplicationNotFound, fsID)
}

func (f *fakeManager) PlannedFailover(context.Context, string) (*replconf.Promotion, error) {
	return nil, replication.ErrUnreachable
}

func (f *fakeManager) Failover(_ context.Context, fsID string, force bool) (*replconf.Promotion, error) {
	if fsID == enablingFS {
		return &replconf.Promotion{RecoveryPoint: engine.RecoveryPoint{OldEpoch: 1, NewEpoch: 2, Empty: true}}, nil
	}
	return &replconf.Promotion{RecoveryPoint: engine.RecoveryPoint{Seq: 41, Time: time.Unix(1700000000, 0), OldEpoch: 1, NewEpoch: 2}, SourceDurable: 44}, nil
}

func (f *fakeManager) LossReport(context.Context, string, int) (replconf.Tombstone, []replconf.Change, bool, error) {
	return replconf.Tombstone{}, nil, false, control.ErrReplicationNotFound
}

func (f *fakeManager) Verify(_ context.Context, fsID string) (replconf.Description, replconf.VerifyResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "verify "+fsID)
	for _, c := range f.configs {
		if c.SourceFileSystemID == fsID || c.DestFileSystemID == fsID {
			return c, replconf.VerifyResult{ID: c.ID, Seq: 42, Ranges: 3, Blocks: 2, DifferCount: 1,
				Differ: []replication.VerifyRange{{From: "inode 2 attributes", To: "the end"}}, Repair: "repaired"}, nil
		}
	}
	return replconf.Description{}, replconf.VerifyResult{}, fmt.Errorf("%w: %s", control.ErrReplicationNotFound, fsID)
}

func (f *fakeManager) SetAutoFailover(_ context.Context, fsID string, after time.Duration) (replconf.Description, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, fmt.Sprintf("auto-failover %s %s", fsID, after))
	for i, c := range f.configs {
		if c.SourceFileSystemID == fsID || c.DestFileSystemID == fsID {
			f.configs[i].AutoFailoverAfter = after
			return f.configs[i], nil
		}
	}
	return replconf.Description{}, fmt.Errorf("%w: %s", control.ErrReplicationNotFound, fsID)
}

func (f *fakeManager) SetPolicy(_ context.Context, fsID string, maxLag time.Duration) (replconf.Description, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, fmt.Sprintf("policy %s %s", fsID, maxLag))
	for i, c := range f.configs {
		if c.SourceFileSystemID == fsID || c.DestFileSystemID == fsID {
			f.configs[i].MaxPromotionLag = maxLag
			return f.configs[i], nil
		}
	}
	return replconf.Description{}, fmt.Errorf("%w: %s", control.ErrReplicationNotFound, fsID)
}

// replicatingServer serves a fake manager holding one replication of
// fs-0123456789abcdef0 (its calls cleared) at url until the test ends; post sends
// a JSON body to path and returns the status, error type and body.
func replicatingServer(t *testing.T, path string) (f *fakeManager, url string, post func(body string) (int, string, string)) {
	t.Helper()
	f = &fakeManager{}
	srv := httptest.NewServer(Wrap(nil, f, nil))
	t.Cleanup(srv.Close)
	if _, err := f.Create(context.Background(), "fs-0123456789abcdef0", []replconf.Destination{{Region: "us-west-2"}}); err != nil {
		t.Fatal(err)
	}
	f.calls = nil
	return f, srv.URL, func(body string) (int, string, string) {
		t.Helper()
		res, err := http.Post(srv.URL+path, "application/json", stringsReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, res.Header.Get("x-amzn-ErrorType"), string(b)
	}
}

// The replication policy operation: bad bodies are 400s that never reach
// the manager; a good one sets the guard, which replication-status shows.
func TestReplicationPolicy(t *testing.T) {
	f, url, post := replicatingServer(t, "/2015-02-01/regionfs/replication-policy")
	for name, body := range map[string]string{
		"not json":   "{",
		"no lag":     `{"FileSystemId":"fs-0aaaaaaaaaaaaaaaa"}`,
		"negative":   `{"FileSystemId":"fs-0aaaaaaaaaaaaaaaa","MaxPromotionLagSeconds":-1}`,
		"huge":       `{"FileSystemId":"fs-0aaaaaaaaaaaaaaaa","MaxPromotionLagSeconds":1e300}`,
		"bad fs id":  `{"FileSystemId":"nope","MaxPromotionLagSeconds":1}`,
		"string lag": `{"FileSystemId":"fs-0aaaaaaaaaaaaaaaa","MaxPromotionLagSeconds":"1"}`,
	} {
		if code, typ, body := post(body); code != 400 || typ != "BadRequest" || strings.Contains(body, "bad request:") {
			t.Errorf("%s: %d %s %s", name, code, typ, body)
		}
	}
	if len(f.calls) != 0 {
		t.Fatalf("bad requests reached the manager: %v", f.calls)
	}
	if code, typ, _ := post(`{"FileSystemId":"fs-0bbbbbbbbbbbbbbbb","MaxPromotionLagSeconds":1}`); code != 404 || typ != "ReplicationNotFound" {
		t.Errorf("unknown file system: %d %s", code, typ)
	}
	code, _, body := post(`{"FileSystemId":"fs-0aaaaaaaaaaaaaaaa","MaxPromotionLagSeconds":2.5}`)
	if code != 200 || !strings.Contains(body, `"MaxPromotionLagSeconds":2.5`) || !strings.Contains(body, `"ReplicationId":"rc-1"`) {
		t.Fatalf("set policy: %d %s", code, body)
	}
	code, _, body = post(`{"FileSystemId":"fs-0aaaaaaaaaaaaaaaa","AutoFailoverAfterSeconds":300}`)
	if code != 200 || !strings.Contains(body, `"AutoFailoverAfterSeconds":300`) || !strings.Contains(body, `"MaxPromotionLagSeconds":2.5`) {
		t.Fatalf("set automatic failover: %d %s", code, body)
	}
	if code, typ, _ := post(`{"FileSystemId":"fs-0aaaaaaaaaaaaaaaa","AutoFailoverAfterSeconds":-1}`); code != 400 || typ != "BadRequest" {
		t.Fatalf("negative automatic failover delay: %d %s", code, typ)
	}
	res, err := http.Get(url + "/2015-02-01/regionfs/replication-status?FileSystemId=fs-0aaaaaaaaaaaaaaaa")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if !strings.Contains(string(b), `"MaxPromotionLagSeconds":2.5`) {
		t.Fatalf("replication-status without the policy: %s", b)
	}
}

// The verify operation: bad bodies are 400s that never reach the
// manager; a pass's result comes back with what differs in words.
func TestVerifyOperation(t *testing.T) {
	f, _, post := replicatingServer(t, "/2015-02-01/regionfs/verify")
	for name, body := range map[string]string{"not json": "{", "no id": `{}`, "bad fs id": `{"FileSystemId":"nope"}`, "number": `{"FileSystemId":1}`} {
		if code, typ, body := post(body); code != 400 || typ != "BadRequest" || strings.Contains(body, "bad request:") {
			t.Errorf("%s: %d %s %s", name, code, typ, body)
		}
	}
	if len(f.calls) != 0 {
		t.Fatalf("bad requests reached the manager: %v", f.calls)
	}
	if code, typ, _ := post(`{"FileSystemId":"fs-0bbbbbbbbbbbbbbbb"}`); code != 404 || typ != "ReplicationNotFound" {
		t.Errorf("unknown file system: %d %s", code, typ)
	}
	code, _, body := post(`{"FileSystemId":"fs-0aaaaaaaaaaaaaaaa"}`)
	for _, want := range []string{`"ReplicationId":"rc-1"`, `"Seq":42`, `"Match":false`, `"DifferingRanges":1`, `"From":"inode 2 attributes"`, `"Repair":"repaired"`} {
		if code != 200 || !strings.Contains(body, want) {
			t.Fatalf("verify: %d %s (want %s)", code, body, want)
		}
	}
}

func client(t *testing.T, h http.Handler) *efs.Client {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return efs.NewFromConfig(testkit.AWSConfig(srv.URL, "us-east-1", "AKID", "SECRET"))
}

func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return "<" + fmt.Sprint(err) + ">"
}

func TestReplicationOperationsWithTheGoSDK(t *testing.T) {
	ctx := context.Background()
	f := &fakeManager{}
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Header().Set("X-Next", "1"); w.WriteHeader(418) })
	c := client(t, Wrap(next, f, nil))
	out, err := c.CreateReplicationConfiguration(ctx, &efs.CreateReplicationConfigurationInput{
		SourceFileSystemId: aws.String("fs-0123456789abcdef0"),
		Destinations:       []types.DestinationToCreate{{Region: aws.String("us-west-2"), KmsKeyId: aws.String("alias/aws/elasticfilesystem")}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(out.Destinations[0].FileSystemId) != "fs-0aaaaaaaaaaaaaaaa" || out.Destinations[0].Status != types.ReplicationStatusEnabling ||
		aws.ToString(out.SourceFileSystemRegion) != "us-east-1" || !out.CreationTime.Equal(time.Unix(1700000000, 0)) ||
		out.Destinations[0].LastReplicatedTimestamp != nil {
		t.Fatalf("create: %+v %+v", out, out.Destinations[0])
	}
	if f.calls[0] != "create fs-0123456789abcdef0 [{Region:us-west-2 FileSystemID: AvailabilityZoneName: KMSKeyID:alias/aws/elasticfilesystem RoleArn:}]" {
		t.Fatalf("decoded request: %s", f.calls[0])
	}
	_, err = c.CreateReplicationConfiguration(ctx, &efs.CreateReplicationConfigurationInput{
		SourceFileSystemId: aws.String("fs-0123456789abcdef0"), Destinations: []types.DestinationToCreate{{Region: aws.String("us-west-2")}}})
	if apiCode(err) != "ReplicationAlreadyExists" {
		t.Fatalf("second create: %v", err)
	}
	d, err := c.DescribeReplicationConfigurations(ctx, &efs.DescribeReplicationConfigurationsInput{FileSystemId: aws.String("fs-0aaaaaaaaaaaaaaaa")})
	if err != nil || len(d.Replications) != 1 {
		t.Fatalf("describe: %+v %v", d, err)
	}
	if ts := d.Replications[0].Destinations[0].LastReplicatedTimestamp; ts == nil || !ts.Equal(time.Unix(1700000100, 500_000_000)) {
		t.Fatalf("LastReplicatedTimestamp %v", ts)
	}
	// Pagination.
	f.configs = append(f.configs, f.configs[0])
	f.configs[1].SourceFileSystemID = "fs-0123456789abcdef1"
	p1, err := c.DescribeReplicationConfigurations(ctx, &efs.DescribeReplicationConfigurationsInput{MaxResults: aws.Int32(1)})
	if err != nil || len(p1.Replications) != 1 || p1.NextToken == nil {
		t.Fatalf("page 1: %+v %v", p1, err)
	}
	// A token with a character appended (the old tokens were bare
	// positions: "1" + "0" was another one) is not one the list issued.
	for _, tok := range []string{*p1.NextToken + "0", *p1.NextToken + "A", "1", "10"} {
		_, err := c.DescribeReplicationConfigurations(ctx, &efs.DescribeReplicationConfigurationsInput{NextToken: aws.String(tok)})
		if !strings.Contains(fmt.Sprint(err), "BadRequest") {
			t.Fatalf("NextToken %q (issued %q): %v, want BadRequest", tok, *p1.NextToken, err)
		}
	}
	p2, err := c.DescribeReplicationConfigurations(ctx, &efs.DescribeReplicationConfigurationsInput{MaxResults: aws.Int32(1), NextToken: p1.NextToken})
	if err != nil || len(p2.Replications) != 1 || p2.NextToken != nil || aws.ToString(p2.Replications[0].SourceFileSystemId) != "fs-0123456789abcdef1" {
		t.Fatalf("page 2: %+v %v", p2, err)
	}
	if _, err := c.DeleteReplicationConfiguration(ctx, &efs.DeleteReplicationConfigurationInput{
		SourceFileSystemId: aws.String("fs-0123456789abcdef1"), DeletionMode: types.DeletionModeLocalConfigurationOnly}); err != nil {
		t.Fatal(err)
	}
	if got := f.calls[len(f.calls)-1]; got != "delete fs-0123456789abcdef1 LOCAL_CONFIGURATION_ONLY" {
		t.Fatalf("delete decoded as %q", got)
	}
	// Errors as the SDK types them.
	_, err = c.DeleteReplicationConfiguration(ctx, &efs.DeleteReplicationConfigurationInput{SourceFileSystemId: aws.String("fs-0123456789abcdef1")})
	var rnf *types.ReplicationNotFound
	if !errors.As(err, &rnf) {
		t.Fatalf("repeated delete: %v", err)
	}
	_, err = c.CreateReplicationConfiguration(ctx, &efs.CreateReplicationConfigurationInput{
		SourceFileSystemId: aws.String("fs-00000000000000000"), Destinations: []types.DestinationToCreate{{Region: aws.String("us-west-2")}}})
	var fnf *types.FileSystemNotFound
	if !errors.As(err, &fnf) {
		t.Fatalf("missing source: %v", err)
	}
	_, err = c.DescribeReplicationConfigurations(ctx, &efs.DescribeReplicationConfigurationsInput{FileSystemId: aws.String("fs-0123456789abcdef9")})
	if !errors.As(err, &rnf) {
		t.Fatalf("describe without replication: %v", err)
	}
	for name, in := range map[string]*efs.CreateReplicationConfigurationInput{
		"bad source id":  {SourceFileSystemId: aws.String("fs-XYZ"), Destinations: []types.DestinationToCreate{{Region: aws.String("us-west-2")}}},
		"bad region":     {SourceFileSystemId: aws.String("fs-0123456789abcdef3"), Destinations: []types.DestinationToCreate{{Region: aws.String("US WEST")}}},
		"bad kms key":    {SourceFileSystemId: aws.String("fs-0123456789abcdef3"), Destinations: []types.DestinationToCreate{{Region: aws.String("us-west-2"), KmsKeyId: aws.String("nope nope")}}},
		"bad dest fs id": {SourceFileSystemId: aws.String("fs-0123456789abcdef3"), Destinations: []types.DestinationToCreate{{FileSystemId: aws.String("fs-1")}}},
		"bad role arn":   {SourceFileSystemId: aws.String("fs-0123456789abcdef3"), Destinations: []types.DestinationToCreate{{RoleArn: aws.String("role")}}},
	} {
		_, err := c.CreateReplicationConfiguration(ctx, in)
		var br *types.BadRequest
		if !errors.As(err, &br) {
			t.Errorf("%s: %v", name, err)
		}
	}
	// A malformed id is refused in AWS's words, as by the EFS API.
	_, err = c.CreateReplicationConfiguration(ctx, &efs.CreateReplicationConfigurationInput{SourceFileSystemId: aws.String("fs-XYZ"),
		Destinations: []types.DestinationToCreate{{Region: aws.String("us-west-2")}}})
	if want := control.PatternMessage("SourceFileSystemId", "fs-XYZ", control.FileSystemRefPattern); !strings.Contains(fmt.Sprint(err), want) {
		t.Errorf("bad source id: %v, want %q", err, want)
	}
	_, err = c.CreateReplicationConfiguration(ctx, &efs.CreateReplicationConfigurationInput{
		SourceFileSystemId: aws.String("fs-0123456789abcdef3"), Destinations: []types.DestinationToCreate{{Region: aws.String("us-west-2")}, {Region: aws.String("us-west-2")}}})
	var ve *types.ValidationException
	if !errors.As(err, &ve) {
		t.Fatalf("two destinations: %v", err)
	}
	// Everything else goes to the rest of the EFS API.
	if _, err := c.DescribeFileSystems(ctx, &efs.DescribeFileSystemsInput{}); apiCode(err) == "" || err == nil {
		t.Fatalf("other operations not passed on: %v", err)
	}
}

func TestBadBodies(t *testing.T) {
	f := &fakeManager{}
	srv := httptest.NewServer(Wrap(nil, f, nil))
	defer srv.Close()
	for name, body := range map[string]string{
		"not json":          "{",
		"wrong type":        `{"Destinations":"us-west-2"}`,
		"no destinations":   `{}`,
		"wrong member type": `{"Destinations":[{"Region":7}]}`,
	} {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/2015-02-01/file-systems/fs-0123456789abcdef0/replication-configuration", stringsReader(body))
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 400 || res.Header.Get("x-amzn-ErrorType") != "BadRequest" {
			t.Errorf("%s: %d %s", name, res.StatusCode, res.Header.Get("x-amzn-ErrorType"))
		}
	}
	if len(f.calls) != 0 {
		t.Fatalf("bad requests reached the manager: %v", f.calls)
	}
	big := make([]byte, 2<<20)
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/2015-02-01/file-systems/fs-0123456789abcdef0/replication-configuration", bytesReader(big))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 400 {
		t.Fatalf("oversized body: %d", res.StatusCode)
	}
}

// enablingFS is, for fakeManager.Failover, a replica whose initial sync
// had not finished.
const enablingFS = "fs-0eeeeeeeeeeeeeee1"

// The failover answer says when nothing was recovered (a replica promoted
// before its initial sync finished), and only then.
func TestFailoverAnswerEmpty(t *testing.T) {
	for _, tc := range []struct {
		fs    string
		empty bool
	}{{enablingFS, true}, {"fs-0123456789abcdef0", false}} {
		_, _, post := replicatingServer(t, "/2015-02-01/regionfs/failover")
		code, typ, body := post(`{"FileSystemId":"` + tc.fs + `"}`)
		if code != http.StatusOK {
			t.Fatalf("failover %s: %d %s %s", tc.fs, code, typ, body)
		}
		var r struct {
			RecoveryPoint struct {
				Seq                   uint64
				InitialSyncUnfinished bool
				EmptyReason           string
			}
		}
		if err := json.Unmarshal([]byte(body), &r); err != nil {
			t.Fatal(err)
		}
		rp := r.RecoveryPoint
		if rp.InitialSyncUnfinished != tc.empty || (rp.EmptyReason != "") != tc.empty ||
			(tc.empty && rp.EmptyReason != "the initial sync had not finished: no state of the source was recovered") {
			t.Fatalf("failover %s answered %s", tc.fs, body)
		}
	}
}
