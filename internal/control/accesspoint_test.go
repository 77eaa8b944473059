package control

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/regionfs/regionfs/internal/engine"
)

func TestCreateAccessPoint(t *testing.T) {
	v := newEnv(t)
	fs := v.availableFS("ap")
	mt, err := v.r.CreateMountTarget(ctx, CreateMountTargetInput{FileSystemID: fs.ID, SubnetID: subA})
	wantErr(t, err, nil)
	in := CreateAccessPointInput{
		ClientToken: "tok", FileSystemID: fs.ARN, Tags: []Tag{{"Name", "app"}},
		PosixUser:     &PosixUser{UID: 1001, GID: 1002, SecondaryGIDs: []uint32{5, 6}},
		RootDirectory: RootDirectory{Path: "/srv/app", CreationInfo: &CreationInfo{OwnerUID: 1001, OwnerGID: 1002, Permissions: "0750"}},
	}
	ap, err := v.r.CreateAccessPoint(ctx, in)
	wantErr(t, err, nil)
	want := AccessPoint{
		ID: ap.ID, ARN: "arn:aws:elasticfilesystem:us-east-1:" + account + ":access-point/" + ap.ID, FileSystemID: fs.ID, OwnerID: account,
		ClientToken: "tok", Name: "app", Tags: []Tag{{"Name", "app"}}, PosixUser: in.PosixUser, RootDirectory: in.RootDirectory,
		LifeCycleState: StateCreating,
	}
	if d := cmp.Diff(want, ap); d != "" {
		t.Fatalf("access point (-want +got):\n%s", d)
	}
	if !apIDPattern.MatchString(ap.ID) {
		t.Error(ap.ID)
	}
	spec, _ := v.mts.spec(mt.ID)
	wantAP := []AccessPointSpec{{ID: ap.ID, Path: "/srv/app", PosixUser: &engine.Cred{UID: 1001, GID: 1002, Groups: []uint32{5, 6}},
		CreationInfo: &DirCreation{UID: 1001, GID: 1002, Mode: 0o750}}}
	if d := cmp.Diff(wantAP, spec.AccessPoints); d != "" {
		t.Errorf("exported access points (-want +got):\n%s", d)
	}
	_, err = v.r.CreateAccessPoint(ctx, CreateAccessPointInput{ClientToken: "tok", FileSystemID: fs.ID})
	wantErr(t, err, ErrAccessPointAlreadyExists)
	var e *Error
	if errors.As(err, &e); e.ResourceID != ap.ID {
		t.Errorf("ResourceID %q", e.ResourceID)
	}
	plain, err := v.r.CreateAccessPoint(ctx, CreateAccessPointInput{ClientToken: "plain", FileSystemID: fs.ID})
	wantErr(t, err, nil)
	if plain.RootDirectory.Path != "/" || plain.PosixUser != nil || plain.RootDirectory.CreationInfo != nil || plain.Tags != nil {
		t.Errorf("plain: %+v", plain)
	}
	if spec, _ := v.mts.spec(mt.ID); len(spec.AccessPoints) != 2 {
		t.Errorf("%d exported", len(spec.AccessPoints))
	}
	// A mount target created later exports them too.
	mt2, _ := v.r.CreateMountTarget(ctx, CreateMountTargetInput{FileSystemID: fs.ID, SubnetID: subB})
	if spec, _ := v.mts.spec(mt2.ID); len(spec.AccessPoints) != 2 {
		t.Errorf("%d exported by a new mount target", len(spec.AccessPoints))
	}
	wantErr(t, v.r.DeleteAccessPoint(ctx, ap.ARN), nil)
	if spec, _ := v.mts.spec(mt.ID); len(spec.AccessPoints) != 1 || spec.AccessPoints[0].ID != plain.ID {
		t.Errorf("after delete: %+v", spec.AccessPoints)
	}
	if err := v.r.DeleteAccessPoint(ctx, ap.ID); err != nil && !errors.Is(err, ErrAccessPointNotFound) {
		t.Errorf("delete while deleting: %v", err)
	}
	if err := poll(func() bool {
		_, _, err := v.r.DescribeAccessPoints(ctx, AccessPointQuery{AccessPointID: ap.ID})
		return errors.Is(err, ErrAccessPointNotFound)
	}); err != nil {
		t.Fatal("access point never deleted")
	}
	wantErr(t, v.r.DeleteAccessPoint(ctx, ap.ID), ErrAccessPointNotFound)
	wantErr(t, v.r.DeleteAccessPoint(ctx, "fsap-1"), ErrBadRequest)
	// The client token is free again.
	_, err = v.r.CreateAccessPoint(ctx, CreateAccessPointInput{ClientToken: "tok", FileSystemID: fs.ID})
	wantErr(t, err, nil)
}

func TestCreateAccessPointRules(t *testing.T) {
	v := newEnv(t, func(o *Options) { o.MaxAccessPoints = 3 })
	fs := v.availableFS("rules")
	creating := newEnvFS(t, v)
	tests := []struct {
		name string
		in   CreateAccessPointInput
		err  error
	}{
		{"no token", CreateAccessPointInput{FileSystemID: fs.ID}, ErrBadRequest},
		{"unknown fs", CreateAccessPointInput{FileSystemID: "fs-0123456789abcdef0"}, ErrFileSystemNotFound},
		{"creating fs", CreateAccessPointInput{FileSystemID: creating}, ErrIncorrectLifeCycleState},
		{"deep path", CreateAccessPointInput{FileSystemID: fs.ID, RootDirectory: RootDirectory{Path: "/a/b/c/d"}}, nil},
		{"too deep", CreateAccessPointInput{FileSystemID: fs.ID, RootDirectory: RootDirectory{Path: "/a/b/c/d/e"}}, ErrBadRequest},
		{"relative", CreateAccessPointInput{FileSystemID: fs.ID, RootDirectory: RootDirectory{Path: "a"}}, ErrBadRequest},
		{"trailing slash", CreateAccessPointInput{FileSystemID: fs.ID, RootDirectory: RootDirectory{Path: "/a/"}}, ErrBadRequest},
		{"double slash", CreateAccessPointInput{FileSystemID: fs.ID, RootDirectory: RootDirectory{Path: "//a"}}, ErrBadRequest},
		{"dot", CreateAccessPointInput{FileSystemID: fs.ID, RootDirectory: RootDirectory{Path: "/a/.."}}, ErrBadRequest},
		{"hidden", CreateAccessPointInput{FileSystemID: fs.ID, RootDirectory: RootDirectory{Path: "/.x"}}, ErrBadRequest},
		{"shell char", CreateAccessPointInput{FileSystemID: fs.ID, RootDirectory: RootDirectory{Path: "/a;b"}}, ErrBadRequest},
		{"long", CreateAccessPointInput{FileSystemID: fs.ID, RootDirectory: RootDirectory{Path: "/" + strings.Repeat("a", 100)}}, ErrBadRequest},
		{"bad permissions", CreateAccessPointInput{FileSystemID: fs.ID, RootDirectory: RootDirectory{Path: "/x", CreationInfo: &CreationInfo{Permissions: "0800"}}}, ErrBadRequest},
		{"short permissions", CreateAccessPointInput{FileSystemID: fs.ID, RootDirectory: RootDirectory{Path: "/x", CreationInfo: &CreationInfo{Permissions: "75"}}}, ErrBadRequest},
		{"many groups", CreateAccessPointInput{FileSystemID: fs.ID, PosixUser: &PosixUser{SecondaryGIDs: make([]uint32, 17)}}, ErrBadRequest},
		{"bad tag", CreateAccessPointInput{FileSystemID: fs.ID, Tags: []Tag{{"aws:x", "y"}}}, ErrBadRequest},
		{"sixteen groups", CreateAccessPointInput{FileSystemID: fs.ID, PosixUser: &PosixUser{UID: 4294967295, SecondaryGIDs: make([]uint32, 16)}}, nil},
		{"unicode path", CreateAccessPointInput{FileSystemID: fs.ID, RootDirectory: RootDirectory{Path: "/données", CreationInfo: &CreationInfo{Permissions: "755"}}}, nil},
		{"limit", CreateAccessPointInput{FileSystemID: fs.ID}, ErrAccessPointLimitExceeded},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name != "no token" {
				tc.in.ClientToken = "t" + string(rune('a'+i))
			}
			_, err := v.r.CreateAccessPoint(ctx, tc.in)
			wantErr(t, err, tc.err)
		})
	}
}

func TestDescribeAccessPoints(t *testing.T) {
	v := newEnv(t)
	fs1, fs2 := v.availableFS("1"), v.availableFS("2")
	var ids []string
	for i, f := range []string{fs1.ID, fs2.ID, fs1.ID} {
		v.clock.advance(1)
		ap, err := v.r.CreateAccessPoint(ctx, CreateAccessPointInput{ClientToken: string(rune('a' + i)), FileSystemID: f})
		wantErr(t, err, nil)
		ids = append(ids, ap.ID)
	}
	list := func(q AccessPointQuery) []string {
		t.Helper()
		var out []string
		for {
			aps, next, err := v.r.DescribeAccessPoints(ctx, q)
			wantErr(t, err, nil)
			for _, a := range aps {
				out = append(out, a.ID)
			}
			if next == "" {
				return out
			}
			q.Marker = next
		}
	}
	if got := list(AccessPointQuery{}); !slices.Equal(got, ids) {
		t.Errorf("all: %v", got)
	}
	if got := list(AccessPointQuery{Page: Page{Max: 1}}); !slices.Equal(got, ids) {
		t.Errorf("all, paged: %v", got)
	}
	if got := list(AccessPointQuery{FileSystemID: fs1.ID}); !slices.Equal(got, []string{ids[0], ids[2]}) {
		t.Errorf("of fs1: %v", got)
	}
	if got := list(AccessPointQuery{AccessPointID: ids[1]}); !slices.Equal(got, ids[1:2]) {
		t.Errorf("one: %v", got)
	}
	for _, tc := range []struct {
		q   AccessPointQuery
		err error
	}{
		{AccessPointQuery{AccessPointID: ids[0], FileSystemID: fs1.ID}, ErrBadRequest},
		{AccessPointQuery{AccessPointID: "fsap-0123456789abcdef0"}, ErrAccessPointNotFound},
		{AccessPointQuery{FileSystemID: "fs-0123456789abcdef0"}, ErrFileSystemNotFound},
		{AccessPointQuery{Page: Page{Marker: "bad"}}, ErrBadRequest},
	} {
		_, _, err := v.r.DescribeAccessPoints(ctx, tc.q)
		if !errors.Is(err, tc.err) {
			t.Errorf("%+v: %v", tc.q, err)
		}
	}
	// Deleting a file system deletes its access points.
	wantErr(t, v.r.DeleteFileSystem(ctx, fs1.ID), nil)
	v.waitFSGone(fs1.ID)
	if got := list(AccessPointQuery{}); !slices.Equal(got, ids[1:2]) {
		t.Errorf("after deleting fs1: %v", got)
	}
	v.reopen()
	if got := list(AccessPointQuery{}); !slices.Equal(got, ids[1:2]) {
		t.Errorf("after a restart: %v", got)
	}
}
