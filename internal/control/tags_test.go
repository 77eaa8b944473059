package control_test

import (
	"fmt"
	"slices"
	"testing"

	"github.com/regionfs/regionfs/internal/control"
)

func TestTagResource(t *testing.T) {
	v := newEnv(t)
	fs := v.availableFS("tags", func(in *control.CreateFileSystemInput) { in.Tags = []control.Tag{{"Name", "old"}} })
	ap, err := v.r.CreateAccessPoint(ctx, control.CreateAccessPointInput{ClientToken: "t", FileSystemID: fs.ID})
	wantErr(t, err, nil)
	for _, ref := range []string{fs.ID, fs.ARN, ap.ID, ap.ARN} {
		t.Run(ref, func(t *testing.T) {
			wantErr(t, v.r.TagResource(ctx, ref, []control.Tag{{"env", "prod"}, {"Name", "new"}}), nil)
			tags, next, err := v.r.ListTagsForResource(ctx, ref, control.Page{})
			if err != nil || next != "" || !slices.Equal(tags, []control.Tag{{"Name", "new"}, {"env", "prod"}}) {
				t.Errorf("tags %v %q %v", tags, next, err)
			}
			wantErr(t, v.r.UntagResource(ctx, ref, []string{"env", "absent"}), nil)
			tags, _, _ = v.r.ListTagsForResource(ctx, ref, control.Page{})
			if !slices.Equal(tags, []control.Tag{{"Name", "new"}}) {
				t.Errorf("after untag: %v", tags)
			}
		})
	}
	if d, _ := v.r.DescribeFileSystem(ctx, fs.ID); d.Name != "new" {
		t.Errorf("Name %q", d.Name)
	}
	if aps, _, _ := v.r.DescribeAccessPoints(ctx, control.AccessPointQuery{AccessPointID: ap.ID}); aps[0].Name != "new" {
		t.Errorf("access point Name %q", aps[0].Name)
	}
	var fifty []control.Tag
	for i := range 49 {
		fifty = append(fifty, control.Tag{fmt.Sprintf("k%02d", i), "v"})
	}
	wantErr(t, v.r.TagResource(ctx, fs.ID, fifty), nil) // 49 + Name = 50
	wantErr(t, v.r.TagResource(ctx, fs.ID, []control.Tag{{"one-more", ""}}), control.ErrBadRequest)
	wantErr(t, v.r.TagResource(ctx, fs.ID, []control.Tag{{"k00", "overwrite is fine"}}), nil)
	// Paging.
	var all []control.Tag
	p := control.Page{Max: 7}
	pages := 0
	for {
		tags, next, err := v.r.ListTagsForResource(ctx, fs.ID, p)
		wantErr(t, err, nil)
		pages++
		all = append(all, tags...)
		if next == "" {
			break
		}
		p.Marker = next
	}
	if len(all) != 50 || pages != 8 || all[0].Key != "Name" || all[1] != (control.Tag{"k00", "overwrite is fine"}) {
		t.Errorf("%d tags in %d pages: %v", len(all), pages, all[:2])
	}
	for _, tc := range []struct {
		name string
		err  error
		call func() error
	}{
		{"no tags", control.ErrBadRequest, func() error { return v.r.TagResource(ctx, fs.ID, nil) }},
		{"bad tag", control.ErrBadRequest, func() error { return v.r.TagResource(ctx, fs.ID, []control.Tag{{"aws:k", "v"}}) }},
		{"no keys", control.ErrBadRequest, func() error { return v.r.UntagResource(ctx, fs.ID, nil) }},
		{"51 keys", control.ErrBadRequest, func() error { return v.r.UntagResource(ctx, fs.ID, make([]string, 51)) }},
		{"bad key", control.ErrBadRequest, func() error { return v.r.UntagResource(ctx, fs.ID, []string{"a*"}) }},
		{"unknown fs", control.ErrFileSystemNotFound, func() error { return v.r.TagResource(ctx, "fs-0123456789abcdef0", []control.Tag{{"a", "b"}}) }},
		{"unknown ap", control.ErrAccessPointNotFound, func() error { return v.r.TagResource(ctx, "fsap-0123456789abcdef0", []control.Tag{{"a", "b"}}) }},
		{"unknown ap untag", control.ErrAccessPointNotFound, func() error { return v.r.UntagResource(ctx, "fsap-0123456789abcdef0", []string{"a"}) }},
		{"other region", control.ErrFileSystemNotFound, func() error {
			return v.r.TagResource(ctx, "arn:aws:elasticfilesystem:eu-west-1:"+account+":file-system/"+fs.ID, []control.Tag{{"a", "b"}})
		}},
		{"bad id", control.ErrBadRequest, func() error { return v.r.TagResource(ctx, "vol-0123456789abcdef0", []control.Tag{{"a", "b"}}) }},
		{"bad marker", control.ErrBadRequest, func() error {
			_, _, err := v.r.ListTagsForResource(ctx, fs.ID, control.Page{Marker: "zzz"})
			return err
		}},
		{"list unknown", control.ErrAccessPointNotFound, func() error {
			_, _, err := v.r.ListTagsForResource(ctx, "fsap-0123456789abcdef0", control.Page{})
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) { wantErr(t, tc.call(), tc.err) })
	}
}

func TestDeprecatedTags(t *testing.T) {
	v := newEnv(t)
	fs := v.availableFS("old")
	wantErr(t, v.r.CreateTags(ctx, fs.ID, []control.Tag{{"b", "1"}, {"a", "2"}}), nil)
	wantErr(t, v.r.CreateTags(ctx, fs.ID, []control.Tag{{"a", "3"}}), nil)
	tags, next, err := v.r.DescribeTags(ctx, fs.ID, control.Page{})
	if err != nil || next != "" || !slices.Equal(tags, []control.Tag{{"a", "3"}, {"b", "1"}}) {
		t.Fatalf("%v %q %v", tags, next, err)
	}
	p1, next, _ := v.r.DescribeTags(ctx, fs.ID, control.Page{Max: 1})
	p2, next2, _ := v.r.DescribeTags(ctx, fs.ID, control.Page{Max: 1, Marker: next})
	if len(p1) != 1 || len(p2) != 1 || p2[0].Key != "b" || next2 != "" {
		t.Errorf("pages %v %v %q", p1, p2, next2)
	}
	wantErr(t, v.r.DeleteTags(ctx, fs.ID, []string{"a"}), nil)
	tags, _, _ = v.r.DescribeTags(ctx, fs.ID, control.Page{})
	if !slices.Equal(tags, []control.Tag{{"b", "1"}}) {
		t.Error(tags)
	}
	wantErr(t, v.r.CreateTags(ctx, "fs-0123456789abcdef0", []control.Tag{{"a", "b"}}), control.ErrFileSystemNotFound)
	wantErr(t, v.r.DeleteTags(ctx, "fs-0123456789abcdef0", []string{"a"}), control.ErrFileSystemNotFound)
	_, _, err = v.r.DescribeTags(ctx, "fs-0123456789abcdef0", control.Page{})
	wantErr(t, err, control.ErrFileSystemNotFound)
	wantErr(t, v.r.CreateTags(ctx, fs.ID, nil), control.ErrBadRequest)
	wantErr(t, v.r.DeleteTags(ctx, fs.ID, nil), control.ErrBadRequest)
	wantErr(t, v.r.CreateTags(ctx, fs.ID, []control.Tag{{"aws:a", "b"}}), control.ErrBadRequest)
}
