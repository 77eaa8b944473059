package control_test

import (
	"errors"
	"regexp"
	"testing"

	"github.com/regionfs/regionfs/internal/control"
)

// TestMalformedIDMessages: every operation refuses a malformed file
// system, access point or mount target id with AWS's one validation
// message (control.PatternMessage), as the EFS API's own checks do; before,
// each kind of id had its own words ("Invalid mount target id 'x'.").
func TestMalformedIDMessages(t *testing.T) {
	v := newEnv(t)
	fs := v.availableFS("ids")
	for _, tc := range []struct {
		name    string
		member  string
		value   string
		pattern *regexp.Regexp
		call    func(string) error
	}{
		{"DescribeMountTargets file system", "FileSystemId", "fs-xyz", control.FileSystemRefPattern, func(id string) error {
			_, _, err := v.r.DescribeMountTargets(ctx, control.MountTargetQuery{FileSystemID: id})
			return err
		}},
		{"DescribeMountTargets mount target", "MountTargetId", "mt-1", control.MountTargetIDPattern, func(id string) error {
			_, _, err := v.r.DescribeMountTargets(ctx, control.MountTargetQuery{MountTargetID: id})
			return err
		}},
		{"DescribeAccessPoints access point", "AccessPointId", "ap-1", control.AccessPointRefPattern, func(id string) error {
			_, _, err := v.r.DescribeAccessPoints(ctx, control.AccessPointQuery{AccessPointID: id})
			return err
		}},
		{"CreateAccessPoint file system", "FileSystemId", "arn:aws:elasticfilesystem:us-east-1:1:file-system/x", control.FileSystemRefPattern, func(id string) error {
			_, err := v.r.CreateAccessPoint(ctx, control.CreateAccessPointInput{ClientToken: "t", FileSystemID: id})
			return err
		}},
		{"DeleteMountTarget", "MountTargetId", "fsmt-xyz", control.MountTargetIDPattern, func(id string) error {
			return v.r.DeleteMountTarget(ctx, id)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call(tc.value)
			var ce *control.Error
			if !errors.Is(err, control.ErrBadRequest) || !errors.As(err, &ce) {
				t.Fatalf("%v, want a BadRequest", err)
			}
			if want := control.PatternMessage(tc.member, tc.value, tc.pattern); ce.Message != want {
				t.Fatalf("message %q,\nwant %q", ce.Message, want)
			}
		})
	}
	if !control.FileSystemRefPattern.MatchString(fs.ID) || !control.FileSystemRefPattern.MatchString(fs.ARN) {
		t.Errorf("the file system's own id %s or ARN %s does not match the model's pattern", fs.ID, fs.ARN)
	}
}
