package efs_test

import (
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/efs"
	"github.com/aws/aws-sdk-go-v2/service/efs/types"

	"github.com/regionfs/regionfs/internal/control"
	"github.com/regionfs/regionfs/internal/engine"
	"github.com/regionfs/regionfs/internal/testkit"
)

func TestSDKAccessPoints(t *testing.T) {
	s := newServer(t, func(o *control.Options) { o.MaxAccessPoints = 3 })
	fs := s.createFS("ap")
	mt, err := s.c.CreateMountTarget(ctx, &efs.CreateMountTargetInput{FileSystemId: fs.FileSystemId, SubnetId: aws.String(subA)})
	if err != nil {
		t.Fatal(err)
	}
	ap, err := s.c.CreateAccessPoint(ctx, &efs.CreateAccessPointInput{
		ClientToken: aws.String("tok"), FileSystemId: fs.FileSystemId,
		Tags:          []types.Tag{{Key: aws.String("Name"), Value: aws.String("web")}},
		PosixUser:     &types.PosixUser{Uid: aws.Int64(1000), Gid: aws.Int64(1000), SecondaryGids: []int64{4, 4294967295}},
		RootDirectory: &types.RootDirectory{Path: aws.String("/srv/web"), CreationInfo: &types.CreationInfo{OwnerUid: aws.Int64(1000), OwnerGid: aws.Int64(1000), Permissions: aws.String("0755")}},
	})
	if err != nil {
		t.Fatal(err)
	}
	id := aws.ToString(ap.AccessPointId)
	if aws.ToString(ap.AccessPointArn) != "arn:aws:elasticfilesystem:us-east-1:123456789012:access-point/"+id || aws.ToString(ap.Name) != "web" ||
		aws.ToString(ap.ClientToken) != "tok" || aws.ToString(ap.FileSystemId) != *fs.FileSystemId || aws.ToString(ap.OwnerId) != accountID ||
		ap.LifeCycleState != types.LifeCycleStateCreating || aws.ToInt64(ap.PosixUser.Uid) != 1000 || !slices.Equal(ap.PosixUser.SecondaryGids, []int64{4, 4294967295}) ||
		aws.ToString(ap.RootDirectory.Path) != "/srv/web" || aws.ToString(ap.RootDirectory.CreationInfo.Permissions) != "0755" {
		t.Errorf("CreateAccessPoint output %+v", ap)
	}
	spec, _ := s.mts.Spec(*mt.MountTargetId)
	if len(spec.AccessPoints) != 1 || spec.AccessPoints[0].ID != id || spec.AccessPoints[0].Path != "/srv/web" ||
		!reflect.DeepEqual(spec.AccessPoints[0].PosixUser, &engine.Cred{UID: 1000, GID: 1000, Groups: []uint32{4, 4294967295}}) ||
		*spec.AccessPoints[0].CreationInfo != (control.DirCreation{UID: 1000, GID: 1000, Mode: 0o755}) {
		t.Errorf("exported %+v", spec.AccessPoints)
	}
	_, err = s.c.CreateAccessPoint(ctx, &efs.CreateAccessPointInput{ClientToken: aws.String("tok"), FileSystemId: fs.FileSystemId})
	if e := expectError[*types.AccessPointAlreadyExists](t, err, 409); aws.ToString(e.AccessPointId) != id {
		t.Errorf("AccessPointAlreadyExists.AccessPointId = %q", aws.ToString(e.AccessPointId))
	}
	s.clock.Advance(time.Millisecond)
	ap2, err := s.c.CreateAccessPoint(ctx, &efs.CreateAccessPointInput{ClientToken: aws.String("tok2"), FileSystemId: fs.FileSystemArn})
	if err != nil {
		t.Fatal(err)
	}
	s.clock.Advance(time.Millisecond)
	if _, err := s.c.CreateAccessPoint(ctx, &efs.CreateAccessPointInput{ClientToken: aws.String("tok3"), FileSystemId: fs.FileSystemId}); err != nil {
		t.Fatal(err)
	}
	_, err = s.c.CreateAccessPoint(ctx, &efs.CreateAccessPointInput{ClientToken: aws.String("tok4"), FileSystemId: fs.FileSystemId})
	expectError[*types.AccessPointLimitExceeded](t, err, 403)
	// Listing.
	p := efs.NewDescribeAccessPointsPaginator(s.c, &efs.DescribeAccessPointsInput{FileSystemId: fs.FileSystemId, MaxResults: aws.Int32(2)})
	var ids []string
	pages := 0
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, a := range out.AccessPoints {
			ids = append(ids, *a.AccessPointId)
		}
	}
	if pages != 2 || len(ids) != 3 || ids[0] != id || ids[1] != *ap2.AccessPointId {
		t.Errorf("%d pages: %v", pages, ids)
	}
	one, err := s.c.DescribeAccessPoints(ctx, &efs.DescribeAccessPointsInput{AccessPointId: ap.AccessPointArn})
	if err != nil || len(one.AccessPoints) != 1 || *one.AccessPoints[0].AccessPointId != id {
		t.Errorf("by ARN: %v %v", one, err)
	}
	_, err = s.c.DescribeAccessPoints(ctx, &efs.DescribeAccessPointsInput{AccessPointId: ap.AccessPointId, FileSystemId: fs.FileSystemId})
	badRequest(t, err)
	_, err = s.c.DescribeAccessPoints(ctx, &efs.DescribeAccessPointsInput{AccessPointId: aws.String("fsap-0123456789abcdef0")})
	expectError[*types.AccessPointNotFound](t, err, 404)
	_, err = s.c.DescribeAccessPoints(ctx, &efs.DescribeAccessPointsInput{FileSystemId: aws.String("fs-0123456789abcdef0")})
	expectError[*types.FileSystemNotFound](t, err, 404)
	// Bad input.
	for _, in := range []*efs.CreateAccessPointInput{
		{ClientToken: aws.String("b1"), FileSystemId: fs.FileSystemId, RootDirectory: &types.RootDirectory{Path: aws.String("/a/../b")}},
		{ClientToken: aws.String("b2"), FileSystemId: fs.FileSystemId, RootDirectory: &types.RootDirectory{Path: aws.String("/x"), CreationInfo: &types.CreationInfo{OwnerUid: aws.Int64(1), OwnerGid: aws.Int64(1), Permissions: aws.String("999")}}},
		{ClientToken: aws.String("b3"), FileSystemId: fs.FileSystemId, PosixUser: &types.PosixUser{Uid: aws.Int64(-1), Gid: aws.Int64(0)}},
		{ClientToken: aws.String("b4"), FileSystemId: fs.FileSystemId, PosixUser: &types.PosixUser{Uid: aws.Int64(1), Gid: aws.Int64(4294967296)}},
		{ClientToken: aws.String("b5"), FileSystemId: aws.String("fs-nope")},
	} {
		_, err := s.c.CreateAccessPoint(ctx, in)
		badRequest(t, err)
	}
	_, err = s.c.CreateAccessPoint(ctx, &efs.CreateAccessPointInput{ClientToken: aws.String("nf"), FileSystemId: aws.String("fs-0123456789abcdef0")})
	expectError[*types.FileSystemNotFound](t, err, 404)
	// Deleting.
	if _, err := s.c.DeleteAccessPoint(ctx, &efs.DeleteAccessPointInput{AccessPointId: ap.AccessPointArn}); err != nil {
		t.Fatal(err)
	}
	if spec, _ := s.mts.Spec(*mt.MountTargetId); len(spec.AccessPoints) != 2 {
		t.Errorf("%d access points exported after a delete", len(spec.AccessPoints))
	}
	testkit.Until(10*time.Second, func() bool {
		_, err = s.c.DescribeAccessPoints(ctx, &efs.DescribeAccessPointsInput{AccessPointId: ap.AccessPointId})
		return err != nil
	})
	expectError[*types.AccessPointNotFound](t, err, 404)
	_, err = s.c.DeleteAccessPoint(ctx, &efs.DeleteAccessPointInput{AccessPointId: ap.AccessPointId})
	expectError[*types.AccessPointNotFound](t, err, 404)
}
