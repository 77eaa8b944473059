package ec2

import (
	"log/slog"
	"testing"

	"github.com/regionfs/regionfs/internal/control/network"
	"github.com/regionfs/regionfs/internal/engine/kv"
	"github.com/regionfs/regionfs/internal/testkit"
)

// FuzzSecurityGroupRequests: any form body sent to the security-group
// operations gets an EC2 answer below 500, never a crash.
func FuzzSecurityGroupRequests(f *testing.F) {
	for _, s := range []string{
		"Action=CreateSecurityGroup&Version=2016-11-15&GroupName=a&GroupDescription=b",
		"Action=AuthorizeSecurityGroupIngress&Version=2016-11-15&GroupId=sg-0a1b2c3d4e5f60001&IpPermissions.1.IpProtocol=tcp&IpPermissions.1.FromPort=1&IpPermissions.1.ToPort=2&IpPermissions.1.IpRanges.1.CidrIp=1.2.3.4/32",
		"Action=RevokeSecurityGroupEgress&Version=2016-11-15&GroupId=sg-0a1b2c3d4e5f60001&SecurityGroupRuleId.1=sgr-00000000",
		"Action=CreateTags&Version=2016-11-15&ResourceId.1=sg-0a1b2c3d4e5f60001&Tag.1.Key=k&Tag.1.Value=v",
		"Action=DescribeSecurityGroupRules&Version=2016-11-15&Filter.1.Name=group-id&Filter.1.Value.1=sg-*",
		"Action=DeleteSecurityGroup&Version=2016-11-15&GroupName=default",
	} {
		f.Add(s)
	}
	nw, err := network.Open(network.Options{Region: "us-east-1", AccountID: "123456789012", VPCID: testRegion().VPC.ID, KV: kv.NewMemory(), NFSPort: 2049,
		Seed: []network.Group{{ID: "sg-0a1b2c3d4e5f60001", Name: "default", Description: "d"}}, MaxRules: 20})
	if err != nil {
		f.Fatal(err)
	}
	h := NewHandler(testRegion(), slog.New(slog.DiscardHandler))
	h.SetNetwork(nw, func(string) []string { return nil })
	f.Fuzz(func(t *testing.T, body string) {
		w := testkit.PostForm(h, body)
		if w.Code >= 500 {
			t.Fatalf("%q → %d %s", body, w.Code, w.Body.String())
		}
	})
}
