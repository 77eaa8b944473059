package efs_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/efs"
	"github.com/aws/aws-sdk-go-v2/service/efs/types"
	"github.com/aws/smithy-go"

	apiefs "github.com/regionfs/regionfs/internal/api/efs"
	"github.com/regionfs/regionfs/internal/api/region"
	"github.com/regionfs/regionfs/internal/control"
	"github.com/regionfs/regionfs/internal/control/controltest"
	"github.com/regionfs/regionfs/internal/engine"
	"github.com/regionfs/regionfs/internal/engine/disk"
	"github.com/regionfs/regionfs/internal/engine/kms"
	"github.com/regionfs/regionfs/internal/engine/kms/kmstest"
	"github.com/regionfs/regionfs/internal/engine/kv"
	"github.com/regionfs/regionfs/internal/testkit"
)

// The end-to-end harness: the real region API server (SigV4 verification,
// dispatch by service) in front of the EFS handler, over a control plane
// on an in-memory engine, driven by aws-sdk-go-v2.

const (
	regionName = "us-east-1"
	accountID  = "123456789012"
	accessKey  = "AKIAREGIONFSTEST0001"
	secretKey  = "c2VjcmV0IGtleSBmb3IgdGVzdHMgb25seQ"
	subA       = "subnet-0a1b2c3d4e5f60001" // us-east-1a 127.1.1.0/24
	subB       = "subnet-0a1b2c3d4e5f60002" // us-east-1b 127.1.2.0/24
	subTiny    = "subnet-0a1b2c3d4e5f60003" // us-east-1c 127.1.3.0/29 (3 usable addresses)
	sgNFS      = "sg-0a1b2c3d4e5f60001"
	sgOther    = "sg-0a1b2c3d4e5f60002"
	defaultKey = "2f4c8a1e-6b7d-4c3a-9e8f-0a1b2c3d4e5f"
)

func regionInfo() control.RegionInfo {
	info := control.RegionInfo{
		Name: regionName, AccountID: accountID, VPCID: "vpc-0a1b2c3d4e5f60718",
		Subnets: []control.Subnet{
			{ID: subA, AvailabilityZone: "us-east-1a", AvailabilityZoneID: "use1-az1", CIDR: netip.MustParsePrefix("127.1.1.0/24")},
			{ID: subB, AvailabilityZone: "us-east-1b", AvailabilityZoneID: "use1-az2", CIDR: netip.MustParsePrefix("127.1.2.0/24")},
			{ID: subTiny, AvailabilityZone: "us-east-1c", AvailabilityZoneID: "use1-az4", CIDR: netip.MustParsePrefix("127.1.3.0/29")},
		},
		SecurityGroups: []control.SecurityGroup{
			{ID: sgNFS, Name: "nfs-clients", Ingress: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}},
			{ID: sgOther, Name: "nobody"},
		},
	}
	for i := 3; i <= 7; i++ {
		info.SecurityGroups = append(info.SecurityGroups, control.SecurityGroup{ID: fmt.Sprintf("sg-0a1b2c3d4e5f6000%d", i), Name: fmt.Sprint("g", i)})
	}
	return info
}

type server struct {
	t      testing.TB
	url    string
	c      *efs.Client
	r      *control.Region
	kv     *kv.Memory
	mts    *controltest.MountTargets
	clock  *testkit.Clock
	ring   *kms.Keyring
	http   *httptest.Server
	engine *engine.Engine
}

func newServer(t testing.TB, mods ...func(*control.Options)) *server {
	t.Helper()
	ctx := context.Background()
	ring := kmstest.Ring(t, kmstest.Key(t, defaultKey, control.DefaultKMSKey), kmstest.Key(t, "mrk-0123456789abcdef0123456789abcdef", "alias/team"))
	log := slog.New(slog.DiscardHandler)
	s := &server{t: t, kv: kv.NewMemory(), mts: controltest.NewMountTargets(), ring: ring,
		clock: testkit.NewClock(time.Now().UTC().Truncate(time.Millisecond))}
	var err error
	s.engine, err = engine.Open(ctx, engine.Options{KV: s.kv, Disk: disk.NewMem(), Keyring: ring, Logger: log,
		GCInterval: time.Hour, MergeDelay: time.Hour, OnFatal: func(err error) { t.Errorf("fatal storage error: %v", err) }})
	if err != nil {
		t.Fatal(err)
	}
	o := control.Options{Region: regionInfo(), KV: s.kv, Engine: s.engine, Keyring: ring, MountTargets: s.mts,
		NFSPort: 12049, Clock: s.clock.Now, Logger: log}
	for _, m := range mods {
		m(&o)
	}
	if s.r, err = control.Open(ctx, o); err != nil {
		t.Fatal(err)
	}
	api, err := region.New(region.Options{
		Name:   regionName,
		Secret: func(id string) (string, bool) { return secretKey, id == accessKey },
		EFS:    apiefs.NewHandler(s.r, log),
		Logger: log,
	})
	if err != nil {
		t.Fatal(err)
	}
	s.http = httptest.NewServer(api.Handler())
	s.url = s.http.URL
	s.c = s.client(accessKey, secretKey)
	t.Cleanup(func() {
		s.http.Close()
		s.r.Close()
		s.engine.Close()
	})
	return s
}

func (s *server) client(id, secret string) *efs.Client {
	return efs.NewFromConfig(testkit.AWSConfig(s.url, regionName, id, secret), func(o *efs.Options) { o.HTTPClient = s.http.Client() })
}

var ctx = context.Background()

// createFS creates a file system and waits until it is available.
func (s *server) createFS(token string, mods ...func(*efs.CreateFileSystemInput)) *efs.CreateFileSystemOutput {
	s.t.Helper()
	in := &efs.CreateFileSystemInput{CreationToken: aws.String(token)}
	for _, m := range mods {
		m(in)
	}
	out, err := s.c.CreateFileSystem(ctx, in)
	if err != nil {
		s.t.Fatalf("CreateFileSystem %s: %v", token, err)
	}
	s.waitFS(*out.FileSystemId, types.LifeCycleStateAvailable)
	return out
}

func (s *server) waitFS(id string, state types.LifeCycleState) types.FileSystemDescription {
	s.t.Helper()
	var fs types.FileSystemDescription
	testkit.Eventually(s.t, 10*time.Second, func() error {
		out, err := s.c.DescribeFileSystems(ctx, &efs.DescribeFileSystemsInput{FileSystemId: aws.String(id)})
		if err == nil && out.FileSystems[0].LifeCycleState == state {
			fs = out.FileSystems[0]
			return nil
		}
		return fmt.Errorf("file system %s never %s: %v", id, state, err)
	})
	return fs
}

func (s *server) waitMT(id string, state types.LifeCycleState) {
	s.t.Helper()
	testkit.Eventually(s.t, 10*time.Second, func() error {
		out, err := s.c.DescribeMountTargets(ctx, &efs.DescribeMountTargetsInput{MountTargetId: aws.String(id)})
		if err == nil && out.MountTargets[0].LifeCycleState == state {
			return nil
		}
		if state == types.LifeCycleStateDeleted && errors.As(err, new(*types.MountTargetNotFound)) {
			return nil
		}
		return fmt.Errorf("mount target %s never %s: %v", id, state, err)
	})
}

// expectError checks that err is the SDK's modeled error E, with the HTTP
// status, the error code and a message, and returns it.
func expectError[E interface {
	error
	ErrorCode() string
}](t *testing.T, err error, status int) E {
	t.Helper()
	var target E
	if !errors.As(err, &target) {
		t.Fatalf("error %v (%T) is not a %T", err, err, target)
	}
	checkAPIError(t, err, target.ErrorCode(), status)
	return target
}

// checkAPIError checks an error's code, status and message as the SDK
// parsed them.
func checkAPIError(t *testing.T, err error, code string, status int) {
	t.Helper()
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("error %v is not an API error", err)
	}
	if ae.ErrorCode() != code || ae.ErrorMessage() == "" {
		t.Errorf("code %q message %q, want code %q and a message", ae.ErrorCode(), ae.ErrorMessage(), code)
	}
	var re *awshttp.ResponseError
	if !errors.As(err, &re) || re.HTTPStatusCode() != status || re.ServiceRequestID() == "" {
		t.Errorf("HTTP status %v, request id %q; want %d", statusOf(re), requestIDOf(re), status)
	}
}

func statusOf(re *awshttp.ResponseError) any {
	if re == nil {
		return nil
	}
	return re.HTTPStatusCode()
}

func requestIDOf(re *awshttp.ResponseError) string {
	if re == nil {
		return ""
	}
	return re.ServiceRequestID()
}

// rawRequest sends a signed-by-hand-free request straight to the handler
// with a verified identity in its context (for what the SDK cannot send).
func rawRequest(t testing.TB, h http.Handler, method, target, body string, hdr ...string) *httptest.ResponseRecorder {
	t.Helper()
	return rawRequestIn(t, h, regionName, method, target, body, hdr...)
}
