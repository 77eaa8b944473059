package control_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/regionfs/regionfs/internal/control"
	"github.com/regionfs/regionfs/internal/engine"
	"github.com/regionfs/regionfs/internal/testkit"
)

func TestCreateAccessPoint(t *testing.T) {
	v := newEnv(t)
	fs := v.availableFS("ap")
	mt, err := v.r.CreateMountTarget(ctx, control.CreateMountTargetInput{FileSystemID: fs.ID, SubnetID: subA})
	wantErr(t, err, nil)
	in := control.CreateAccessPointInput{
		ClientToken: "tok", FileSystemID: fs.ARN, Tags: []control.Tag{{"Name", "app"}},
		PosixUser:     &control.PosixUser{UID: 1001, GID: 1002, SecondaryGIDs: []uint32{5, 6}},
		RootDirectory: control.RootDirectory{Path: "/srv/app", CreationInfo: &control.CreationInfo{OwnerUID: 1001, OwnerGID: 1002, Permissions: "0750"}},
	}
	ap, err := v.r.CreateAccessPoint(ctx, in)
	wantErr(t, err, nil)
	want := control.AccessPoint{
		ID: ap.ID, ARN: "arn:aws:elasticfilesystem:us-east-1:" + account + ":access-point/" + ap.ID, FileSystemID: fs.ID, OwnerID: account,
		ClientToken: "tok", Name: "app", Tags: []control.Tag{{"Name", "app"}}, PosixUser: in.PosixUser, RootDirectory: in.RootDirectory,
		LifeCycleState: control.StateCreating,
	}
	if d := cmp.Diff(want, ap); d != "" {
		t.Fatalf("access point (-want +got):\n%s", d)
	}
	if !control.AccessPointIDPattern.MatchString(ap.ID) {
		t.Error(ap.ID)
	}
	spec, _ := v.mts.Spec(mt.ID)
	wantAP := []control.AccessPointSpec{{ID: ap.ID, Path: "/srv/app", PosixUser: &engine.Cred{UID: 1001, GID: 1002, Groups: []uint32{5, 6}},
		CreationInfo: &control.DirCreation{UID: 1001, GID: 1002, Mode: 0o750}}}
	if d := cmp.Diff(wantAP, spec.AccessPoints); d != "" {
		t.Errorf("exported access points (-want +got):\n%s", d)
	}
	_, err = v.r.CreateAccessPoint(ctx, control.CreateAccessPointInput{ClientToken: "tok", FileSystemID: fs.ID})
	wantErr(t, err, control.ErrAccessPointAlreadyExists)
	var e *control.Error
	if errors.As(err, &e); e.ResourceID != ap.ID {
		t.Errorf("ResourceID %q", e.ResourceID)
	}
	plain, err := v.r.CreateAccessPoint(ctx, control.CreateAccessPointInput{ClientToken: "plain", FileSystemID: fs.ID})
	wantErr(t, err, nil)
	if plain.RootDirectory.Path != "/" || plain.PosixUser != nil || plain.RootDirectory.CreationInfo != nil || plain.Tags != nil {
		t.Errorf("plain: %+v", plain)
	}
	if spec, _ := v.mts.Spec(mt.ID); len(spec.AccessPoints) != 2 {
		t.Errorf("%d exported", len(spec.AccessPoints))
	}
	// A mount target created later exports them too.
	mt2, _ := v.r.CreateMountTarget(ctx, control.CreateMountTargetInput{FileSystemID: fs.ID, SubnetID: subB})
	if spec, _ := v.mts.Spec(mt2.ID); len(spec.AccessPoints) != 2 {
		t.Errorf("%d exported by a new mount target", len(spec.AccessPoints))
	}
	wantErr(t, v.r.DeleteAccessPoint(ctx, ap.ARN), nil)
	if spec, _ := v.mts.Spec(mt.ID); len(spec.AccessPoints) != 1 || spec.AccessPoints[0].ID != plain.ID {
		t.Errorf("after delete: %+v", spec.AccessPoints)
	}
	if err := v.r.DeleteAccessPoint(ctx, ap.ID); err != nil && !errors.Is(err, control.ErrAccessPointNotFound) {
		t.Errorf("delete while deleting: %v", err)
	}
	if !testkit.Until(10*time.Second, func() bool {
		_, _, err := v.r.DescribeAccessPoints(ctx, control.AccessPointQuery{AccessPointID: ap.ID})
		return errors.Is(err, control.ErrAccessPointNotFound)
	}) {
		t.Fatal("access point never deleted")
	}
	wantErr(t, v.r.DeleteAccessPoint(ctx, ap.ID), control.ErrAccessPointNotFound)
	wantErr(t, v.r.DeleteAccessPoint(ctx, "fsap-1"), control.ErrBadRequest)
	// The client token is free again.
	_, err = v.r.CreateAccessPoint(ctx, control.CreateAccessPointInput{ClientToken: "tok", FileSystemID: fs.ID})
	wantErr(t, err, nil)
}

func TestCreateAccessPointRules(t *testing.T) {
	v := newEnv(t, func(o *control.Options) { o.MaxAccessPoints = 3 })
	fs := v.availableFS("rules")
	creating := newEnvFS(t, v)
	tests := []struct {
		name string
		in   control.CreateAccessPointInput
		err  error
	}{
		{"no token", control.CreateAccessPointInput{FileSystemID: fs.ID}, control.ErrBadRequest},
		{"unknown fs", control.CreateAccessPointInput{FileSystemID: "fs-0123456789abcdef0"}, control.ErrFileSystemNotFound},
		{"creating fs", control.CreateAccessPointInput{FileSystemID: creating}, control.ErrIncorrectLifeCycleState},
		{"deep path", control.CreateAccessPointInput{FileSystemID: fs.ID, RootDirectory: control.RootDirectory{Path: "/a/b/c/d"}}, nil},
		{"too deep", control.CreateAccessPointInput{FileSystemID: fs.ID, RootDirectory: control.RootDirectory{Path: "/a/b/c/d/e"}}, control.ErrBadRequest},
		{"relative", control.CreateAccessPointInput{FileSystemID: fs.ID, RootDirectory: control.RootDirectory{Path: "a"}}, control.ErrBadRequest},
		{"trailing slash", control.CreateAccessPointInput{FileSystemID: fs.ID, RootDirectory: control.RootDirectory{Path: "/a/"}}, control.ErrBadRequest},
		{"double slash", control.CreateAccessPointInput{FileSystemID: fs.ID, RootDirectory: control.RootDirectory{Path: "//a"}}, control.ErrBadRequest},
		{"dot", control.CreateAccessPointInput{FileSystemID: fs.ID, RootDirectory: control.RootDirectory{Path: "/a/.."}}, control.ErrBadRequest},
		{"hidden", control.CreateAccessPointInput{FileSystemID: fs.ID, RootDirectory: control.RootDirectory{Path: "/.x"}}, control.ErrBadRequest},
		// issue 9 §5: a NUL was accepted and the mount then failed.
		{"NUL", control.CreateAccessPointInput{FileSystemID: fs.ID, RootDirectory: control.RootDirectory{Path: "/a\x00b"}}, control.ErrBadRequest},
		{"control character", control.CreateAccessPointInput{FileSystemID: fs.ID, RootDirectory: control.RootDirectory{Path: "/a/\tb"}}, control.ErrBadRequest},
		{"DEL", control.CreateAccessPointInput{FileSystemID: fs.ID, RootDirectory: control.RootDirectory{Path: "/a\x7f"}}, control.ErrBadRequest},
		{"shell char", control.CreateAccessPointInput{FileSystemID: fs.ID, RootDirectory: control.RootDirectory{Path: "/a;b"}}, control.ErrBadRequest},
		{"long", control.CreateAccessPointInput{FileSystemID: fs.ID, RootDirectory: control.RootDirectory{Path: "/" + strings.Repeat("a", 100)}}, control.ErrBadRequest},
		{"bad permissions", control.CreateAccessPointInput{FileSystemID: fs.ID, RootDirectory: control.RootDirectory{Path: "/x", CreationInfo: &control.CreationInfo{Permissions: "0800"}}}, control.ErrBadRequest},
		{"short permissions", control.CreateAccessPointInput{FileSystemID: fs.ID, RootDirectory: control.RootDirectory{Path: "/x", CreationInfo: &control.CreationInfo{Permissions: "75"}}}, control.ErrBadRequest},
		{"many groups", control.CreateAccessPointInput{FileSystemID: fs.ID, PosixUser: &control.PosixUser{SecondaryGIDs: make([]uint32, 17)}}, control.ErrBadRequest},
		{"bad tag", control.CreateAccessPointInput{FileSystemID: fs.ID, Tags: []control.Tag{{"aws:x", "y"}}}, control.ErrBadRequest},
		{"sixteen groups", control.CreateAccessPointInput{FileSystemID: fs.ID, PosixUser: &control.PosixUser{UID: 4294967295, SecondaryGIDs: make([]uint32, 16)}}, nil},
		{"unicode path", control.CreateAccessPointInput{FileSystemID: fs.ID, RootDirectory: control.RootDirectory{Path: "/données", CreationInfo: &control.CreationInfo{Permissions: "755"}}}, nil},
		{"limit", control.CreateAccessPointInput{FileSystemID: fs.ID}, control.ErrAccessPointLimitExceeded},
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
		v.clock.Advance(1)
		ap, err := v.r.CreateAccessPoint(ctx, control.CreateAccessPointInput{ClientToken: string(rune('a' + i)), FileSystemID: f})
		wantErr(t, err, nil)
		ids = append(ids, ap.ID)
	}
	list := func(q control.AccessPointQuery) []string {
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
	if got := list(control.AccessPointQuery{}); !slices.Equal(got, ids) {
		t.Errorf("all: %v", got)
	}
	if got := list(control.AccessPointQuery{Page: control.Page{Max: 1}}); !slices.Equal(got, ids) {
		t.Errorf("all, paged: %v", got)
	}
	if got := list(control.AccessPointQuery{FileSystemID: fs1.ID}); !slices.Equal(got, []string{ids[0], ids[2]}) {
		t.Errorf("of fs1: %v", got)
	}
	if got := list(control.AccessPointQuery{AccessPointID: ids[1]}); !slices.Equal(got, ids[1:2]) {
		t.Errorf("one: %v", got)
	}
	for _, tc := range []struct {
		q   control.AccessPointQuery
		err error
	}{
		{control.AccessPointQuery{AccessPointID: ids[0], FileSystemID: fs1.ID}, control.ErrBadRequest},
		{control.AccessPointQuery{AccessPointID: "fsap-0123456789abcdef0"}, control.ErrAccessPointNotFound},
		{control.AccessPointQuery{FileSystemID: "fs-0123456789abcdef0"}, control.ErrFileSystemNotFound},
		{control.AccessPointQuery{Page: control.Page{Marker: "bad"}}, control.ErrBadRequest},
	} {
		_, _, err := v.r.DescribeAccessPoints(ctx, tc.q)
		if !errors.Is(err, tc.err) {
			t.Errorf("%+v: %v", tc.q, err)
		}
	}
	// Deleting a file system deletes its access points.
	wantErr(t, v.r.DeleteFileSystem(ctx, fs1.ID), nil)
	v.waitFSGone(fs1.ID)
	if got := list(control.AccessPointQuery{}); !slices.Equal(got, ids[1:2]) {
		t.Errorf("after deleting fs1: %v", got)
	}
	v.reopen()
	if got := list(control.AccessPointQuery{}); !slices.Equal(got, ids[1:2]) {
		t.Errorf("after a restart: %v", got)
	}
}
