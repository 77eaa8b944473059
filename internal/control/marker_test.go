package control_test

import (
	"errors"
	"testing"
	"time"

	"github.com/regionfs/regionfs/internal/control"
)

// extended returns marker with one or two base64url characters appended:
// each a token that decodes (the old markers were bare base64 of a
// position, and "tags/2" + "0" or a file system's key + one more hex digit
// were still positions).
func extended(marker string) []string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	var out []string
	for _, c := range alphabet {
		out = append(out, marker+string(c))
		for _, d := range alphabet {
			out = append(out, marker+string(c)+string(d))
		}
	}
	return out
}

// TestMarkerExtendedRefused: a Marker with characters appended to one the
// list issued is a BadRequest, as any marker the list did not issue; and
// one list's marker is refused by another.
func TestMarkerExtendedRefused(t *testing.T) {
	v := newEnv(t)
	var tags []control.Tag
	for i := range 10 {
		tags = append(tags, control.Tag{Key: "k" + string(rune('0'+i)), Value: "v"})
	}
	for i := range 3 {
		v.clock.Advance(time.Second)
		v.createFS("m"+string(rune('0'+i)), func(in *control.CreateFileSystemInput) { in.Tags = tags })
	}
	fss, fsMarker, err := v.r.DescribeFileSystems(ctx, control.FileSystemQuery{Page: control.Page{Max: 1}})
	if err != nil || len(fss) != 1 || fsMarker == "" {
		t.Fatalf("page 1: %v %q %v", fss, fsMarker, err)
	}
	_, tagMarker, err := v.r.ListTagsForResource(ctx, fss[0].ID, control.Page{Max: 2})
	if err != nil || tagMarker == "" {
		t.Fatalf("tags page 1: %q %v", tagMarker, err)
	}
	for _, m := range extended(fsMarker) {
		_, _, err := v.r.DescribeFileSystems(ctx, control.FileSystemQuery{Page: control.Page{Marker: m}})
		if !errors.Is(err, control.ErrBadRequest) {
			t.Fatalf("DescribeFileSystems marker %q (issued %q): %v, want BadRequest", m, fsMarker, err)
		}
	}
	for _, m := range extended(tagMarker) {
		_, _, err := v.r.ListTagsForResource(ctx, fss[0].ID, control.Page{Marker: m})
		if !errors.Is(err, control.ErrBadRequest) {
			t.Fatalf("ListTagsForResource marker %q (issued %q): %v, want BadRequest", m, tagMarker, err)
		}
	}
	_, _, err = v.r.DescribeAccessPoints(ctx, control.AccessPointQuery{Page: control.Page{Marker: fsMarker}})
	wantErr(t, err, control.ErrBadRequest)
	_, _, err = v.r.DescribeTags(ctx, fss[0].ID, control.Page{Marker: fsMarker})
	wantErr(t, err, control.ErrBadRequest)
}
