package ec2

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"

	"github.com/regionfs/regionfs/internal/api/awserr"
	"github.com/regionfs/regionfs/internal/api/awsproto"
	"github.com/regionfs/regionfs/internal/api/sigv4"
	"github.com/regionfs/regionfs/internal/pagetoken"
	"github.com/regionfs/regionfs/internal/testkit"
)

const (
	akid   = "AKIAEC2TESTEXAMPLE"
	secret = "ec2-test-secret-0123456789"
)

func testRegion() Region {
	return Region{
		Name: "us-east-1", AccountID: "123456789012",
		VPC: VPC{ID: "vpc-0a1b2c3d4e5f60718", CIDR: netip.MustParsePrefix("127.1.0.0/16")},
		Subnets: []Subnet{
			{ID: "subnet-0a1b2c3d4e5f60001", AvailabilityZone: "us-east-1a", AvailabilityZoneID: "use1-az1", CIDR: netip.MustParsePrefix("127.1.1.0/24"), Name: "regionfs-a"},
			{ID: "subnet-0a1b2c3d4e5f60002", AvailabilityZone: "us-east-1b", AvailabilityZoneID: "use1-az2", CIDR: netip.MustParsePrefix("127.1.2.0/24"), Name: "regionfs-b"},
		},
		Groups: []SecurityGroup{
			{ID: "sg-0a1b2c3d4e5f60001", Name: "nfs-clients", Description: "NFS clients", Ingress: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}, NFSPort: 12049},
			{ID: "sg-0a1b2c3d4e5f60002", Name: "closed", Description: "nobody"},
		},
		Endpoint: "127.1.0.1:7070",
		Peers:    []RegionInfo{{Name: "us-west-2", Endpoint: "127.2.0.1:7070"}},
		UsedAddresses: func(id string) int {
			if id == "subnet-0a1b2c3d4e5f60001" {
				return 2
			}
			return 0
		},
	}
}

// server is the EC2 handler behind SigV4 verification, like package region
// wires it.
func server(t *testing.T) *httptest.Server {
	t.Helper()
	v := sigv4.New(sigv4.Options{
		Secret:   func(id string) (string, bool) { return secret, id == akid },
		Region:   func(r string) bool { return r == "us-east-1" },
		Services: []string{"ec2"},
	})
	h := NewHandler(testRegion(), slog.New(slog.DiscardHandler))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if _, err := v.Verify(r, body); err != nil {
			awserr.Responder{Protocol: awsproto.EC2, Service: awsproto.EC2Service, RequestID: "x"}.Fail(w, err)
			return
		}
		r.Body = io.NopCloser(strings.NewReader(string(body)))
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func sdk(t *testing.T, url string) *ec2.Client {
	return ec2.NewFromConfig(testkit.AWSConfig(url, "us-east-1", akid, secret))
}

func TestSDK(t *testing.T) {
	srv := server(t)
	c := sdk(t, srv.URL)
	ctx := context.Background()
	subs, err := c.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{})
	if err != nil {
		t.Fatal(err)
	}
	if len(subs.Subnets) != 2 {
		t.Fatalf("%d subnets", len(subs.Subnets))
	}
	s := subs.Subnets[0]
	if aws.ToString(s.SubnetId) != "subnet-0a1b2c3d4e5f60001" || aws.ToString(s.CidrBlock) != "127.1.1.0/24" ||
		aws.ToString(s.AvailabilityZone) != "us-east-1a" || aws.ToString(s.AvailabilityZoneId) != "use1-az1" ||
		aws.ToString(s.VpcId) != "vpc-0a1b2c3d4e5f60718" || aws.ToInt32(s.AvailableIpAddressCount) != 249 ||
		s.State != types.SubnetStateAvailable || len(s.Tags) != 1 || aws.ToString(s.Tags[0].Value) != "regionfs-a" {
		t.Errorf("subnet: %+v", s)
	}
	for _, tc := range []struct {
		filter types.Filter
		want   int
	}{
		{types.Filter{Name: aws.String("availability-zone"), Values: []string{"us-east-1b"}}, 1},
		{types.Filter{Name: aws.String("availability-zone-id"), Values: []string{"use1-az1", "use1-az2"}}, 2},
		{types.Filter{Name: aws.String("tag:Name"), Values: []string{"regionfs-*"}}, 2},
		{types.Filter{Name: aws.String("tag:Name"), Values: []string{"other"}}, 0},
		{types.Filter{Name: aws.String("vpc-id"), Values: []string{"vpc-0a1b2c3d4e5f60718"}}, 2},
		{types.Filter{Name: aws.String("subnet-id"), Values: []string{"subnet-0a1b2c3d4e5f60002"}}, 1},
	} {
		out, err := c.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{Filters: []types.Filter{tc.filter}})
		if err != nil || len(out.Subnets) != tc.want {
			t.Errorf("filter %s=%v: %v, %v", *tc.filter.Name, tc.filter.Values, len(out.Subnets), err)
		}
	}
	_, err = c.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{SubnetIds: []string{"subnet-0123456789abcdef0"}})
	wantAPIError(t, err, "InvalidSubnetID.NotFound", "The subnet ID 'subnet-0123456789abcdef0' does not exist")
	_, err = c.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{SubnetIds: []string{"nope"}})
	wantAPIError(t, err, "InvalidSubnetID.Malformed", `Invalid id: "nope"`)
	_, err = c.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{Filters: []types.Filter{{Name: aws.String("colour"), Values: []string{"x"}}}})
	wantAPIError(t, err, "InvalidParameterValue", "The filter 'colour' is invalid")
	// An invalid filter is refused whatever the filters before it say
	// (one that matched nothing hid it from the subnets', groups' and
	// rules' filtering; the zones', regions' and VPCs' refused it).
	_, err = c.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{Filters: []types.Filter{
		{Name: aws.String("subnet-id"), Values: []string{"subnet-0123456789abcdef0"}}, {Name: aws.String("colour"), Values: []string{"x"}}}})
	wantAPIError(t, err, "InvalidParameterValue", "The filter 'colour' is invalid")
	_, err = c.DescribeAvailabilityZones(ctx, &ec2.DescribeAvailabilityZonesInput{Filters: []types.Filter{
		{Name: aws.String("zone-name"), Values: []string{"none"}}, {Name: aws.String("tag:Name"), Values: []string{"x"}}}})
	wantAPIError(t, err, "InvalidParameterValue", "The filter 'tag:Name' is invalid")

	sgs, err := c.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{GroupIds: []string{"sg-0a1b2c3d4e5f60001"}})
	if err != nil || len(sgs.SecurityGroups) != 1 {
		t.Fatalf("%v %v", sgs, err)
	}
	g := sgs.SecurityGroups[0]
	if aws.ToString(g.GroupName) != "nfs-clients" || len(g.IpPermissions) != 1 || aws.ToInt32(g.IpPermissions[0].FromPort) != 12049 ||
		aws.ToString(g.IpPermissions[0].IpRanges[0].CidrIp) != "127.0.0.0/8" || aws.ToString(g.IpPermissions[0].Ipv6Ranges[0].CidrIpv6) != "::1/128" {
		t.Errorf("group: %+v", g)
	}
	sgs, err = c.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{Filters: []types.Filter{{Name: aws.String("group-name"), Values: []string{"closed"}}}})
	if err != nil || len(sgs.SecurityGroups) != 1 || len(sgs.SecurityGroups[0].IpPermissions) != 0 {
		t.Errorf("group-name filter: %+v %v", sgs, err)
	}
	_, err = c.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{GroupIds: []string{"sg-0123456789abcdef0"}})
	wantAPIError(t, err, "InvalidGroup.NotFound", "The security group 'sg-0123456789abcdef0' does not exist")
	_, err = c.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{GroupNames: []string{"missing"}})
	wantAPIError(t, err, "InvalidGroup.NotFound", "The security group 'missing' does not exist in default VPC 'vpc-0a1b2c3d4e5f60718'")

	azs, err := c.DescribeAvailabilityZones(ctx, &ec2.DescribeAvailabilityZonesInput{Filters: []types.Filter{{Name: aws.String("zone-name"), Values: []string{"us-east-1a"}}}})
	if err != nil || len(azs.AvailabilityZones) != 1 || aws.ToString(azs.AvailabilityZones[0].ZoneId) != "use1-az1" || azs.AvailabilityZones[0].State != types.AvailabilityZoneStateAvailable {
		t.Errorf("zones: %+v %v", azs, err)
	}
	_, err = c.DescribeAvailabilityZones(ctx, &ec2.DescribeAvailabilityZonesInput{ZoneNames: []string{"us-east-1z"}})
	wantAPIError(t, err, "InvalidParameterValue", "Invalid availability zone: [us-east-1z]")

	regions, err := c.DescribeRegions(ctx, &ec2.DescribeRegionsInput{})
	if err != nil || len(regions.Regions) != 2 || aws.ToString(regions.Regions[0].RegionName) != "us-east-1" ||
		aws.ToString(regions.Regions[1].RegionName) != "us-west-2" || aws.ToString(regions.Regions[1].Endpoint) != "127.2.0.1:7070" ||
		aws.ToString(regions.Regions[0].OptInStatus) != "opt-in-not-required" {
		t.Errorf("regions: %+v %v", regions, err)
	}
	regions, err = c.DescribeRegions(ctx, &ec2.DescribeRegionsInput{Filters: []types.Filter{{Name: aws.String("region-name"), Values: []string{"*-west-*"}}}})
	if err != nil || len(regions.Regions) != 1 || aws.ToString(regions.Regions[0].RegionName) != "us-west-2" {
		t.Errorf("regions by filter: %+v %v", regions, err)
	}
	_, err = c.DescribeRegions(ctx, &ec2.DescribeRegionsInput{RegionNames: []string{"eu-west-9"}})
	wantAPIError(t, err, "InvalidParameterValue", "Invalid region: eu-west-9")

	vpcs, err := c.DescribeVpcs(ctx, &ec2.DescribeVpcsInput{})
	if err != nil || len(vpcs.Vpcs) != 1 || aws.ToString(vpcs.Vpcs[0].CidrBlock) != "127.1.0.0/16" || !aws.ToBool(vpcs.Vpcs[0].IsDefault) {
		t.Errorf("vpcs: %+v %v", vpcs, err)
	}
	_, err = c.DescribeVpcs(ctx, &ec2.DescribeVpcsInput{VpcIds: []string{"vpc-0123456789abcdef0"}})
	wantAPIError(t, err, "InvalidVpcID.NotFound", "The vpc ID 'vpc-0123456789abcdef0' does not exist")

	_, err = c.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{DryRun: aws.Bool(true)})
	wantAPIError(t, err, "DryRunOperation", "Request would have succeeded, but DryRun flag is set.")
}

func TestPagination(t *testing.T) {
	srv := server(t)
	c := sdk(t, srv.URL)
	p := ec2.NewDescribeSubnetsPaginator(c, &ec2.DescribeSubnetsInput{MaxResults: aws.Int32(5)})
	n := 0
	for p.HasMorePages() {
		out, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		n += len(out.Subnets)
	}
	if n != 2 {
		t.Fatalf("paginated %d subnets", n)
	}
	_, err := c.DescribeSubnets(context.Background(), &ec2.DescribeSubnetsInput{MaxResults: aws.Int32(2)})
	wantAPIError(t, err, "InvalidParameterValue", "Value ( 2 ) for parameter maxResults is invalid")
}

func wantAPIError(t *testing.T, err error, code, msgPrefix string) {
	t.Helper()
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		t.Errorf("want %s, got %v", code, err)
		return
	}
	if ae.ErrorCode() != code || !strings.HasPrefix(ae.ErrorMessage(), msgPrefix) {
		t.Errorf("got %s %q, want %s %q", ae.ErrorCode(), ae.ErrorMessage(), code, msgPrefix)
	}
}

func TestRawErrors(t *testing.T) {
	h := NewHandler(testRegion(), slog.New(slog.DiscardHandler))
	for _, tc := range []struct {
		method, body, ctype string
		status              int
		code                string
	}{
		{"POST", "Action=RunInstances&Version=2016-11-15", "application/x-www-form-urlencoded", 400, "InvalidAction"},
		{"POST", "Version=2016-11-15", "application/x-www-form-urlencoded", 400, "MissingAction"},
		{"POST", "Action=DescribeSubnets&Bogus=1", "application/x-www-form-urlencoded", 400, "UnknownParameter"},
		{"POST", "Action=DescribeSubnets&Filter.x.Name=vpc-id", "application/x-www-form-urlencoded", 400, "InvalidParameterValue"},
		{"POST", "Action=DescribeSubnets&Filter.1.Name=vpc-id", "application/x-www-form-urlencoded", 400, "InvalidParameterValue"},
		{"POST", "Action=DescribeSubnets&NextToken=zzz", "application/x-www-form-urlencoded", 400, "InvalidNextToken"},
		{"POST", "%zz", "application/x-www-form-urlencoded", 400, "InvalidQueryParameter"},
		{"POST", `{"Action":"DescribeSubnets"}`, "application/json", 400, "InvalidParameterValue"},
		{"POST", "Action=DescribeSubnets&" + strings.Repeat("a", maxBody), "application/x-www-form-urlencoded", 413, "RequestEntityTooLarge"},
		{"PUT", "", "", 400, "InvalidRequest"},
	} {
		r := httptest.NewRequest(tc.method, "/", strings.NewReader(tc.body))
		if tc.ctype != "" {
			r.Header.Set("Content-Type", tc.ctype)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		body := w.Body.String()
		if w.Code != tc.status || !strings.Contains(body, "<Response><Errors><Error><Code>"+tc.code+"</Code>") || !strings.Contains(body, "<RequestID>") {
			t.Errorf("%s %q: %d %s", tc.method, awsproto.Clip(tc.body), w.Code, body)
		}
	}
}

// brokenBody returns its bytes, then an error: a client gone mid-body.
type brokenBody struct{ data string }

func (b *brokenBody) Read(p []byte) (int, error) {
	if b.data == "" {
		return 0, errors.New("connection reset by peer")
	}
	n := copy(p, b.data)
	b.data = b.data[n:]
	return n, nil
}

// TestBadBody: a body that cannot be read whole is a bad request in the
// shape EC2 answers a malformed one with (400 InvalidQueryParameter); it
// was answered as a method not allowed. A body past the limit is 413
// RequestEntityTooLarge, also when its reading would fail further on.
func TestBadBody(t *testing.T) {
	h := NewHandler(testRegion(), slog.New(slog.DiscardHandler))
	for _, tc := range []struct {
		name   string
		body   io.Reader
		status int
		code   string
	}{
		{"fails mid-read", &brokenBody{"Action=DescribeSubnets&SubnetId.1=subnet-"}, 400, "InvalidQueryParameter"},
		{"fails at once", &brokenBody{}, 400, "InvalidQueryParameter"},
		{"over the limit", strings.NewReader("Action=DescribeSubnets&" + strings.Repeat("a", maxBody)), 413, "RequestEntityTooLarge"},
		{"over the limit, then fails", &brokenBody{"Action=DescribeSubnets&" + strings.Repeat("a", maxBody)}, 413, "RequestEntityTooLarge"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/", tc.body)
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			body := w.Body.String()
			if w.Code != tc.status || !strings.Contains(body, "<Response><Errors><Error><Code>"+tc.code+"</Code>") || !strings.Contains(body, "<RequestID>") {
				t.Errorf("got %d %s, want %d %s", w.Code, body, tc.status, tc.code)
			}
		})
	}
}

func TestXMLShape(t *testing.T) {
	h := NewHandler(testRegion(), slog.New(slog.DiscardHandler))
	r := httptest.NewRequest("GET", "/?"+url.Values{"Action": {"DescribeSubnets"}, "SubnetId.1": {"subnet-0a1b2c3d4e5f60002"}}.Encode(), nil)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	body := w.Body.String()
	for _, want := range []string{
		`<DescribeSubnetsResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">`,
		`<subnetSet><item><subnetId>subnet-0a1b2c3d4e5f60002</subnetId>`,
		`<tagSet><item><key>Name</key><value>regionfs-b</value></item></tagSet>`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("missing %s in\n%s", want, body)
		}
	}
}

func TestMatch(t *testing.T) {
	for _, tc := range []struct {
		p, v string
		want bool
	}{
		{"abc", "abc", true}, {"a*", "abc", true}, {"*c", "abc", true}, {"a?c", "abc", true}, {"a?c", "ac", false},
		{"*", "", true}, {`a\*`, "a*", true}, {`a\*`, "ab", false}, {"a*b*c", "aXbYc", true}, {"abc", "abd", false},
	} {
		if got := match(tc.p, tc.v); got != tc.want {
			t.Errorf("match(%q, %q) = %v", tc.p, tc.v, got)
		}
	}
}

func TestAWSCLI(t *testing.T) {
	aws := testkit.NeedTool(t, "aws")
	srv := server(t)
	dir := t.TempDir()
	env := append(os.Environ(), "AWS_ACCESS_KEY_ID="+akid, "AWS_SECRET_ACCESS_KEY="+secret, "AWS_DEFAULT_REGION=us-east-1",
		"AWS_EC2_METADATA_DISABLED=true", "AWS_PAGER=", "AWS_MAX_ATTEMPTS=1", "AWS_ENDPOINT_URL_EC2="+srv.URL,
		"AWS_CONFIG_FILE="+dir+"/c", "AWS_SHARED_CREDENTIALS_FILE="+dir+"/s")
	run := func(args ...string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, aws, append([]string{"ec2"}, args...)...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"describe-subnets", "--query", "Subnets[].SubnetId", "--output", "text"}, "subnet-0a1b2c3d4e5f60001\tsubnet-0a1b2c3d4e5f60002"},
		{[]string{"describe-subnets", "--filters", "Name=availability-zone,Values=us-east-1b", "--query", "Subnets[].CidrBlock", "--output", "text"}, "127.1.2.0/24"},
		{[]string{"describe-subnets", "--filters", "Name=tag:Name,Values=regionfs-a", "--query", "Subnets[].AvailabilityZoneId", "--output", "text"}, "use1-az1"},
		{[]string{"describe-security-groups", "--query", "SecurityGroups[0].IpPermissions[0].IpRanges[0].CidrIp", "--output", "text"}, "127.0.0.0/8"},
		{[]string{"describe-security-groups", "--group-names", "closed", "--query", "SecurityGroups[].GroupId", "--output", "text"}, "sg-0a1b2c3d4e5f60002"},
		{[]string{"describe-availability-zones", "--query", "AvailabilityZones[].ZoneName", "--output", "text"}, "us-east-1a\tus-east-1b"},
		{[]string{"describe-vpcs", "--filters", "Name=vpc-id,Values=vpc-0a1b2c3d4e5f60718", "--query", "Vpcs[].CidrBlock", "--output", "text"}, "127.1.0.0/16"},
	} {
		out, err := run(tc.args...)
		if err != nil || strings.TrimSpace(out) != tc.want {
			t.Errorf("aws ec2 %v: %v\n%s\nwant %q", tc.args, err, out, tc.want)
		}
	}
	out, err := run("describe-subnets", "--subnet-ids", "subnet-0123456789abcdef0")
	if err == nil || !strings.Contains(out, "An error occurred (InvalidSubnetID.NotFound) when calling the DescribeSubnets operation: The subnet ID 'subnet-0123456789abcdef0' does not exist") {
		t.Errorf("not found: %v %s", err, out)
	}
	out, _ = run("describe-security-groups", "--output", "json")
	var v struct{ SecurityGroups []map[string]any }
	if err := json.Unmarshal([]byte(out), &v); err != nil || len(v.SecurityGroups) != 2 {
		t.Errorf("json: %v %s", err, out)
	}
}

func FuzzDecode(f *testing.F) {
	f.Add("Action=DescribeSubnets&Filter.1.Name=tag:Name&Filter.1.Value.1=a*&SubnetId.1=subnet-0a1b2c3d4e5f60001")
	f.Add("Action=DescribeSecurityGroups&GroupName.1=x&MaxResults=5&NextToken=o1")
	f.Add("Action=DescribeSecurityGroups&MaxResults=5&NextToken=" + pagetoken.EncodeIndex(tokenKind, 1))
	f.Add("Action=DescribeVpcs&Filter.0.Name=&Filter.1.Value.x=1")
	f.Add("Action=DescribeAvailabilityZones&ZoneName.1=us-east-1a&Filter.1.Name=zone-id&Filter.1.Value.1=*")
	f.Add("Action=DescribeRegions&RegionName.1=us-east-1&Filter.1.Name=endpoint&Filter.1.Value.1=127.*&AllRegions=true")
	h := NewHandler(testRegion(), slog.New(slog.DiscardHandler))
	f.Fuzz(func(t *testing.T, body string) {
		w := testkit.PostForm(h, body)
		if w.Code != 200 && !strings.Contains(w.Body.String(), "<Response><Errors><Error><Code>") {
			t.Fatalf("%d without an EC2 error body: %s", w.Code, w.Body.String())
		}
		if w.Code >= 500 {
			t.Fatalf("server error for %q: %s", body, w.Body.String())
		}
	})
}

func TestBoto3(t *testing.T) {
	py := testkit.NeedPython(t, "boto3")
	srv := server(t)
	script := `
import sys, boto3, botocore.exceptions
c = boto3.client("ec2", region_name="us-east-1", endpoint_url=sys.argv[1], aws_access_key_id=sys.argv[2], aws_secret_access_key=sys.argv[3])
subs = c.describe_subnets(Filters=[{"Name": "availability-zone-id", "Values": ["use1-az2"]}])["Subnets"]
print(subs[0]["SubnetId"], subs[0]["CidrBlock"], subs[0]["AvailableIpAddressCount"])
g = c.describe_security_groups(GroupIds=["sg-0a1b2c3d4e5f60001"])["SecurityGroups"][0]
print(g["GroupName"], g["IpPermissions"][0]["FromPort"], [r["CidrIp"] for r in g["IpPermissions"][0]["IpRanges"]])
print([z["ZoneName"] for z in c.describe_availability_zones()["AvailabilityZones"]])
print(c.describe_vpcs()["Vpcs"][0]["VpcId"])
try:
    c.describe_security_groups(GroupIds=["sg-0000000000000000f"])
except botocore.exceptions.ClientError as e:
    print(e.response["Error"]["Code"], e.response["ResponseMetadata"]["HTTPStatusCode"])
`
	out, err := exec.Command(py, "-c", script, srv.URL, akid, secret).CombinedOutput()
	want := "subnet-0a1b2c3d4e5f60002 127.1.2.0/24 251\nnfs-clients 12049 ['127.0.0.0/8']\n['us-east-1a', 'us-east-1b']\nvpc-0a1b2c3d4e5f60718\nInvalidGroup.NotFound 400\n"
	if err != nil || string(out) != want {
		t.Fatalf("boto3: %v\n%s\nwant\n%s", err, out, want)
	}
}
