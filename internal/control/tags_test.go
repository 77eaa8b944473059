package control

import (
	"fmt"
	"slices"
	"testing"
)

func TestTagResource(t *testing.T) {
	v := newEnv(t)
	fs := v.availableFS("tags", func(in *CreateFileSystemInput) { in.Tags = []Tag{{"Name", "old"}} })
	ap, err := v.r.CreateAccessPoint(ctx, CreateAccessPointInput{ClientToken: "t", FileSystemID: fs.ID})
	wantErr(t, err, nil)
	for _, ref := range []string{fs.ID, fs.ARN, ap.ID, ap.ARN} {
		t.Run(ref, func(t *testing.T) {
			wantErr(t, v.r.TagResource(ctx, ref, []Tag{{"env", "prod"}, {"Name", "new"}}), nil)
			tags, next, err := v.r.ListTagsForResource(ctx, ref, Page{})
			if err != nil || next != "" || !slices.Equal(tags, []Tag{{"Name", "new"}, {"env", "prod"}}) {
				t.Errorf("tags %v %q %v", tags, next, err)
			}
			wantErr(t, v.r.UntagResource(ctx, ref, []string{"env", "absent"}), nil)
			tags, _, _ = v.r.ListTagsForResource(ctx, ref, Page{})
			if !slices.Equal(tags, []Tag{{"Name", "new"}}) {
				t.Errorf("after untag: %v", tags)
			}
		})
	}
	if d, _ := v.r.DescribeFileSystem(ctx, fs.ID); d.Name != "new" {
		t.Errorf("Name %q", d.Name)
	}
	if aps, _, _ := v.r.DescribeAccessPoints(ctx, AccessPointQuery{AccessPointID: ap.ID}); aps[0].Name != "new" {
		t.Errorf("access point Name %q", aps[0].Name)
	}
	var fifty []Tag
	for i := range 49 {
		fifty = append(fifty, Tag{fmt.Sprintf("k%02d", i), "v"})
	}
	wantErr(t, v.r.TagResource(ctx, fs.ID, fifty), nil) // 49 + Name = 50
	wantErr(t, v.r.TagResource(ctx, fs.ID, []Tag{{"one-more", ""}}), ErrBadRequest)
	wantErr(t, v.r.TagResource(ctx, fs.ID, []Tag{{"k00", "overwrite is fine"}}), nil)
	// Paging.
	var all []Tag
	p := Page{Max: 7}
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
	if len(all) != 50 || pages != 8 || all[0].Key != "Name" || all[1] != (Tag{"k00", "overwrite is fine"}) {
		t.Errorf("%d tags in %d pages: %v", len(all), pages, all[:2])
	}
	for _, tc := range []struct {
		name string
		err  error
		call func() error
	}{
		{"no tags", ErrBadRequest, func() error { return v.r.TagResource(ctx, fs.ID, nil) }},
		{"bad tag", ErrBadRequest, func() error { return v.r.TagResource(ctx, fs.ID, []Tag{{"aws:k", "v"}}) }},
		{"no keys", ErrBadRequest, func() error { return v.r.UntagResource(ctx, fs.ID, nil) }},
		{"51 keys", ErrBadRequest, func() error { return v.r.UntagResource(ctx, fs.ID, make([]string, 51)) }},
		{"bad key", ErrBadRequest, func() error { return v.r.UntagResource(ctx, fs.ID, []string{"a*"}) }},
		{"unknown fs", ErrFileSystemNotFound, func() error { return v.r.TagResource(ctx, "fs-0123456789abcdef0", []Tag{{"a", "b"}}) }},
		{"unknown ap", ErrAccessPointNotFound, func() error { return v.r.TagResource(ctx, "fsap-0123456789abcdef0", []Tag{{"a", "b"}}) }},
		{"unknown ap untag", ErrAccessPointNotFound, func() error { return v.r.UntagResource(ctx, "fsap-0123456789abcdef0", []string{"a"}) }},
		{"other region", ErrFileSystemNotFound, func() error {
			return v.r.TagResource(ctx, "arn:aws:elasticfilesystem:eu-west-1:"+account+":file-system/"+fs.ID, []Tag{{"a", "b"}})
		}},
		{"bad id", ErrBadRequest, func() error { return v.r.TagResource(ctx, "vol-0123456789abcdef0", []Tag{{"a", "b"}}) }},
		{"bad marker", ErrBadRequest, func() error { _, _, err := v.r.ListTagsForResource(ctx, fs.ID, Page{Marker: "zzz"}); return err }},
		{"list unknown", ErrAccessPointNotFound, func() error {
			_, _, err := v.r.ListTagsForResource(ctx, "fsap-0123456789abcdef0", Page{})
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) { wantErr(t, tc.call(), tc.err) })
	}
}

func TestDeprecatedTags(t *testing.T) {
	v := newEnv(t)
	fs := v.availableFS("old")
	wantErr(t, v.r.CreateTags(ctx, fs.ID, []Tag{{"b", "1"}, {"a", "2"}}), nil)
	wantErr(t, v.r.CreateTags(ctx, fs.ID, []Tag{{"a", "3"}}), nil)
	tags, next, err := v.r.DescribeTags(ctx, fs.ID, Page{})
	if err != nil || next != "" || !slices.Equal(tags, []Tag{{"a", "3"}, {"b", "1"}}) {
		t.Fatalf("%v %q %v", tags, next, err)
	}
	p1, next, _ := v.r.DescribeTags(ctx, fs.ID, Page{Max: 1})
	p2, next2, _ := v.r.DescribeTags(ctx, fs.ID, Page{Max: 1, Marker: next})
	if len(p1) != 1 || len(p2) != 1 || p2[0].Key != "b" || next2 != "" {
		t.Errorf("pages %v %v %q", p1, p2, next2)
	}
	wantErr(t, v.r.DeleteTags(ctx, fs.ID, []string{"a"}), nil)
	tags, _, _ = v.r.DescribeTags(ctx, fs.ID, Page{})
	if !slices.Equal(tags, []Tag{{"b", "1"}}) {
		t.Error(tags)
	}
	wantErr(t, v.r.CreateTags(ctx, "fs-0123456789abcdef0", []Tag{{"a", "b"}}), ErrFileSystemNotFound)
	wantErr(t, v.r.DeleteTags(ctx, "fs-0123456789abcdef0", []string{"a"}), ErrFileSystemNotFound)
	_, _, err = v.r.DescribeTags(ctx, "fs-0123456789abcdef0", Page{})
	wantErr(t, err, ErrFileSystemNotFound)
	wantErr(t, v.r.CreateTags(ctx, fs.ID, nil), ErrBadRequest)
	wantErr(t, v.r.DeleteTags(ctx, fs.ID, nil), ErrBadRequest)
	wantErr(t, v.r.CreateTags(ctx, fs.ID, []Tag{{"aws:a", "b"}}), ErrBadRequest)
}
