package efs_test

import (
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/efs"
	"github.com/aws/aws-sdk-go-v2/service/efs/types"

	"github.com/regionfs/regionfs/internal/control"
)

func TestSDKMountTargets(t *testing.T) {
	s := newServer(t)
	fs := s.createFS("mt")
	a, err := s.c.CreateMountTarget(ctx, &efs.CreateMountTargetInput{FileSystemId: fs.FileSystemId, SubnetId: aws.String(subA), SecurityGroups: []string{sgNFS}})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(a.IpAddress) != "127.1.1.4" || aws.ToString(a.SubnetId) != subA || aws.ToString(a.AvailabilityZoneName) != "us-east-1a" ||
		aws.ToString(a.AvailabilityZoneId) != "use1-az1" || aws.ToString(a.VpcId) != "vpc-0a1b2c3d4e5f60718" || aws.ToString(a.OwnerId) != accountID ||
		a.LifeCycleState != types.LifeCycleStateCreating || aws.ToString(a.NetworkInterfaceId) == "" {
		t.Errorf("CreateMountTarget output %+v", a)
	}
	spec, ok := s.mts.Spec(*a.MountTargetId)
	if !ok || spec.Addr != netip.MustParseAddrPort("127.1.1.4:12049") || !slices.Equal(spec.Ingress, []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}) {
		t.Errorf("served spec %+v (served %v)", spec, ok)
	}
	s.clock.Advance(time.Millisecond)
	b, err := s.c.CreateMountTarget(ctx, &efs.CreateMountTargetInput{FileSystemId: fs.FileSystemArn, SubnetId: aws.String(subB), IpAddress: aws.String("127.1.2.77"), IpAddressType: types.IpAddressTypeIpv4Only})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(b.IpAddress) != "127.1.2.77" {
		t.Error(aws.ToString(b.IpAddress))
	}
	s.waitMT(*a.MountTargetId, types.LifeCycleStateAvailable)
	s.waitMT(*b.MountTargetId, types.LifeCycleStateAvailable)
	if d := s.waitFS(*fs.FileSystemId, types.LifeCycleStateAvailable); d.NumberOfMountTargets != 2 {
		t.Errorf("NumberOfMountTargets %d", d.NumberOfMountTargets)
	}
	// Listing with the paginator (one per page), by file system and by
	// access point.
	p := efs.NewDescribeMountTargetsPaginator(s.c, &efs.DescribeMountTargetsInput{FileSystemId: fs.FileSystemId, MaxItems: aws.Int32(1)})
	var ids []string
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range out.MountTargets {
			ids = append(ids, *m.MountTargetId)
		}
	}
	if !slices.Equal(ids, []string{*a.MountTargetId, *b.MountTargetId}) {
		t.Errorf("paged mount targets %v", ids)
	}
	ap, err := s.c.CreateAccessPoint(ctx, &efs.CreateAccessPointInput{ClientToken: aws.String("ap"), FileSystemId: fs.FileSystemId})
	if err != nil {
		t.Fatal(err)
	}
	byAP, err := s.c.DescribeMountTargets(ctx, &efs.DescribeMountTargetsInput{AccessPointId: ap.AccessPointId})
	if err != nil || len(byAP.MountTargets) != 2 {
		t.Errorf("by access point: %v %v", byAP, err)
	}
	// Security groups.
	sgs, err := s.c.DescribeMountTargetSecurityGroups(ctx, &efs.DescribeMountTargetSecurityGroupsInput{MountTargetId: b.MountTargetId})
	if err != nil || !slices.Equal(sgs.SecurityGroups, []string{sgNFS}) { // the VPC's first group is its default here
		t.Errorf("default groups %v %v", sgs, err)
	}
	if _, err := s.c.ModifyMountTargetSecurityGroups(ctx, &efs.ModifyMountTargetSecurityGroupsInput{MountTargetId: b.MountTargetId, SecurityGroups: []string{sgOther}}); err != nil {
		t.Fatal(err)
	}
	if spec, _ := s.mts.Spec(*b.MountTargetId); len(spec.Ingress) != 0 {
		t.Errorf("ingress after modify: %v", spec.Ingress)
	}
	sgs, _ = s.c.DescribeMountTargetSecurityGroups(ctx, &efs.DescribeMountTargetSecurityGroupsInput{MountTargetId: b.MountTargetId})
	if !slices.Equal(sgs.SecurityGroups, []string{sgOther}) {
		t.Error(sgs.SecurityGroups)
	}
	// Errors.
	for _, tc := range []struct {
		name  string
		in    efs.CreateMountTargetInput
		check func(*testing.T, error)
	}{
		{"zone taken", efs.CreateMountTargetInput{SubnetId: aws.String(subA)}, func(t *testing.T, err error) { expectError[*types.MountTargetConflict](t, err, 409) }},
		{"unknown subnet", efs.CreateMountTargetInput{SubnetId: aws.String("subnet-0123456789abcdef0")}, func(t *testing.T, err error) { expectError[*types.SubnetNotFound](t, err, 400) }},
		{"bad subnet id", efs.CreateMountTargetInput{SubnetId: aws.String("subnet-XYZ")}, badRequest},
		{"unknown group", efs.CreateMountTargetInput{SubnetId: aws.String(subTiny), SecurityGroups: []string{"sg-0123456789abcdef0"}}, func(t *testing.T, err error) { expectError[*types.SecurityGroupNotFound](t, err, 400) }},
		{"six groups", efs.CreateMountTargetInput{SubnetId: aws.String(subTiny), SecurityGroups: []string{sgNFS, sgOther, "sg-0a1b2c3d4e5f60003", "sg-0a1b2c3d4e5f60004", "sg-0a1b2c3d4e5f60005", "sg-0a1b2c3d4e5f60006"}},
			func(t *testing.T, err error) { expectError[*types.SecurityGroupLimitExceeded](t, err, 400) }},
		{"address outside the subnet", efs.CreateMountTargetInput{SubnetId: aws.String(subTiny), IpAddress: aws.String("127.1.1.9")}, badRequest},
		{"address pattern", efs.CreateMountTargetInput{SubnetId: aws.String(subTiny), IpAddress: aws.String("1.2.3")}, badRequest},
		{"IPv6", efs.CreateMountTargetInput{SubnetId: aws.String(subTiny), IpAddressType: types.IpAddressTypeDualStack}, badRequest},
		{"unknown file system", efs.CreateMountTargetInput{FileSystemId: aws.String("fs-0123456789abcdef0"), SubnetId: aws.String(subTiny)}, func(t *testing.T, err error) { expectError[*types.FileSystemNotFound](t, err, 404) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := tc.in
			if in.FileSystemId == nil {
				in.FileSystemId = fs.FileSystemId
			}
			_, err := s.c.CreateMountTarget(ctx, &in)
			tc.check(t, err)
		})
	}
	_, err = s.c.DescribeMountTargets(ctx, &efs.DescribeMountTargetsInput{})
	badRequest(t, err)
	_, err = s.c.DescribeMountTargets(ctx, &efs.DescribeMountTargetsInput{MountTargetId: aws.String("fsmt-0123456789abcdef0")})
	expectError[*types.MountTargetNotFound](t, err, 404)
	_, err = s.c.DescribeMountTargets(ctx, &efs.DescribeMountTargetsInput{AccessPointId: aws.String("fsap-0123456789abcdef0")})
	expectError[*types.AccessPointNotFound](t, err, 404)
	_, err = s.c.DescribeMountTargets(ctx, &efs.DescribeMountTargetsInput{FileSystemId: aws.String("fs-0123456789abcdef0")})
	expectError[*types.FileSystemNotFound](t, err, 404)
	_, err = s.c.ModifyMountTargetSecurityGroups(ctx, &efs.ModifyMountTargetSecurityGroupsInput{MountTargetId: a.MountTargetId, SecurityGroups: []string{"sg-0123456789abcdef0"}})
	expectError[*types.SecurityGroupNotFound](t, err, 400)
	_, err = s.c.DescribeMountTargetSecurityGroups(ctx, &efs.DescribeMountTargetSecurityGroupsInput{MountTargetId: aws.String("fsmt-0123456789abcdef0")})
	expectError[*types.MountTargetNotFound](t, err, 404)
	// Deleting.
	if _, err := s.c.DeleteMountTarget(ctx, &efs.DeleteMountTargetInput{MountTargetId: a.MountTargetId}); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.mts.Spec(*a.MountTargetId); ok {
		t.Error("deleted mount target still served")
	}
	s.waitMT(*a.MountTargetId, types.LifeCycleStateDeleted)
	_, err = s.c.DeleteMountTarget(ctx, &efs.DeleteMountTargetInput{MountTargetId: a.MountTargetId})
	expectError[*types.MountTargetNotFound](t, err, 404)
}

func TestSDKMountTargetStatesAndLimits(t *testing.T) {
	s := newServer(t, func(o *control.Options) { o.TransitionDelay = time.Hour; o.MaxNetworkInterfaces = 4 })
	out, err := s.c.CreateFileSystem(ctx, &efs.CreateFileSystemInput{CreationToken: aws.String("slow")})
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.c.CreateMountTarget(ctx, &efs.CreateMountTargetInput{FileSystemId: out.FileSystemId, SubnetId: aws.String(subA)})
	expectError[*types.IncorrectFileSystemLifeCycleState](t, err, 409)
	_, err = s.c.CreateAccessPoint(ctx, &efs.CreateAccessPointInput{ClientToken: aws.String("x"), FileSystemId: out.FileSystemId})
	expectError[*types.IncorrectFileSystemLifeCycleState](t, err, 409)
	var fss []*string
	for _, tok := range []string{"f1", "f2", "f3", "oz"} {
		in := &efs.CreateFileSystemInput{CreationToken: aws.String(tok)}
		if tok == "oz" {
			in.AvailabilityZoneName = aws.String("us-east-1a")
		}
		o, err := s.c.CreateFileSystem(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		fss = append(fss, o.FileSystemId)
	}
	s.clock.Advance(time.Hour)
	for _, id := range fss {
		s.waitFS(*id, types.LifeCycleStateAvailable)
	}
	// One Zone in another zone.
	_, err = s.c.CreateMountTarget(ctx, &efs.CreateMountTargetInput{FileSystemId: fss[3], SubnetId: aws.String(subB)})
	expectError[*types.AvailabilityZonesMismatch](t, err, 400)
	// The tiny subnet has three addresses.
	var mts []*string
	for i := range 3 {
		m, err := s.c.CreateMountTarget(ctx, &efs.CreateMountTargetInput{FileSystemId: fss[i], SubnetId: aws.String(subTiny)})
		if err != nil {
			t.Fatal(err)
		}
		mts = append(mts, m.MountTargetId)
	}
	// A mount target being created cannot change its groups.
	_, err = s.c.ModifyMountTargetSecurityGroups(ctx, &efs.ModifyMountTargetSecurityGroupsInput{MountTargetId: mts[0], SecurityGroups: []string{sgOther}})
	expectError[*types.IncorrectMountTargetState](t, err, 409)
	_, err = s.c.CreateMountTarget(ctx, &efs.CreateMountTargetInput{FileSystemId: fss[3], SubnetId: aws.String(subA), IpAddress: aws.String("127.1.3.4")})
	badRequest(t, err) // an address of another subnet
	_, err = s.c.CreateMountTarget(ctx, &efs.CreateMountTargetInput{FileSystemId: fss[0], SubnetId: aws.String(subB), IpAddress: aws.String("127.1.2.4")})
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.c.CreateMountTarget(ctx, &efs.CreateMountTargetInput{FileSystemId: fss[1], SubnetId: aws.String(subB), IpAddress: aws.String("127.1.2.4")})
	expectError[*types.NetworkInterfaceLimitExceeded](t, err, 409) // 4 of 4 in use
	if _, err := s.c.DeleteMountTarget(ctx, &efs.DeleteMountTargetInput{MountTargetId: mts[2]}); err != nil {
		t.Fatal(err)
	}
	_, err = s.c.CreateMountTarget(ctx, &efs.CreateMountTargetInput{FileSystemId: fss[1], SubnetId: aws.String(subB), IpAddress: aws.String("127.1.2.4")})
	expectError[*types.NetworkInterfaceLimitExceeded](t, err, 409) // still deleting
	s.clock.Advance(time.Hour)
	s.waitMT(*mts[2], types.LifeCycleStateDeleted)
	_, err = s.c.CreateMountTarget(ctx, &efs.CreateMountTargetInput{FileSystemId: fss[1], SubnetId: aws.String(subB), IpAddress: aws.String("127.1.2.4")})
	expectError[*types.IpAddressInUse](t, err, 409)
	if _, err := s.c.CreateMountTarget(ctx, &efs.CreateMountTargetInput{FileSystemId: fss[3], SubnetId: aws.String(subTiny)}); err == nil {
		t.Fatal("a One Zone file system got a mount target outside its zone")
	}
	_, err = s.c.DeleteMountTarget(ctx, &efs.DeleteMountTargetInput{MountTargetId: mts[1]})
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.c.DescribeMountTargetSecurityGroups(ctx, &efs.DescribeMountTargetSecurityGroupsInput{MountTargetId: mts[1]})
	expectError[*types.IncorrectMountTargetState](t, err, 409)
}

func TestSDKNoFreeAddresses(t *testing.T) {
	s := newServer(t)
	var fss []*string
	for _, tok := range []string{"a", "b", "c", "d"} {
		fss = append(fss, s.createFS(tok).FileSystemId)
	}
	for i := range 3 {
		if _, err := s.c.CreateMountTarget(ctx, &efs.CreateMountTargetInput{FileSystemId: fss[i], SubnetId: aws.String(subTiny)}); err != nil {
			t.Fatal(err)
		}
	}
	_, err := s.c.CreateMountTarget(ctx, &efs.CreateMountTargetInput{FileSystemId: fss[3], SubnetId: aws.String(subTiny)})
	expectError[*types.NoFreeAddressesInSubnet](t, err, 409)
}
