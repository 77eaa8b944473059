//lint:file-ignore SA1019 the deprecated tag operations are part of the API regionfs serves
package efs_test

import (
	"fmt"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/efs"
	"github.com/aws/aws-sdk-go-v2/service/efs/types"
)

func tagMap(tags []types.Tag) map[string]string {
	m := map[string]string{}
	for _, t := range tags {
		m[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return m
}

func TestSDKTagResource(t *testing.T) {
	s := newServer(t)
	fs := s.createFS("t")
	ap, err := s.c.CreateAccessPoint(ctx, &efs.CreateAccessPointInput{ClientToken: aws.String("ap"), FileSystemId: fs.FileSystemId})
	if err != nil {
		t.Fatal(err)
	}
	for _, ref := range []*string{fs.FileSystemId, fs.FileSystemArn, ap.AccessPointId, ap.AccessPointArn} {
		if _, err := s.c.TagResource(ctx, &efs.TagResourceInput{ResourceId: ref, Tags: []types.Tag{
			{Key: aws.String("env"), Value: aws.String("prod")}, {Key: aws.String("k/é :=+-@_."), Value: aws.String("")},
		}}); err != nil {
			t.Fatalf("TagResource %s: %v", *ref, err)
		}
		out, err := s.c.ListTagsForResource(ctx, &efs.ListTagsForResourceInput{ResourceId: ref})
		if m := tagMap(out.Tags); err != nil || m["env"] != "prod" || len(m) != 2 || out.NextToken != nil {
			t.Errorf("ListTagsForResource %s: %v %v", *ref, m, err)
		}
		if _, err := s.c.UntagResource(ctx, &efs.UntagResourceInput{ResourceId: ref, TagKeys: []string{"k/é :=+-@_.", "absent"}}); err != nil {
			t.Fatal(err)
		}
		out, _ = s.c.ListTagsForResource(ctx, &efs.ListTagsForResourceInput{ResourceId: ref})
		if m := tagMap(out.Tags); len(m) != 1 {
			t.Errorf("after untag: %v", m)
		}
	}
	var tags []types.Tag
	for i := range 48 {
		tags = append(tags, types.Tag{Key: aws.String(fmt.Sprintf("k%02d", i)), Value: aws.String("v")})
	}
	if _, err := s.c.TagResource(ctx, &efs.TagResourceInput{ResourceId: fs.FileSystemId, Tags: tags}); err != nil {
		t.Fatal(err)
	}
	p := efs.NewListTagsForResourcePaginator(s.c, &efs.ListTagsForResourceInput{ResourceId: fs.FileSystemId, MaxResults: aws.Int32(10)})
	n, pages := 0, 0
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		n += len(out.Tags)
		pages++
	}
	if n != 49 || pages != 5 {
		t.Errorf("%d tags in %d pages", n, pages)
	}
	_, err = s.c.TagResource(ctx, &efs.TagResourceInput{ResourceId: fs.FileSystemId, Tags: []types.Tag{{Key: aws.String("x1"), Value: aws.String("")}, {Key: aws.String("x2"), Value: aws.String("")}}})
	badRequest(t, err) // 51 tags
	for _, in := range []*efs.TagResourceInput{
		{ResourceId: fs.FileSystemId, Tags: []types.Tag{{Key: aws.String("aws:owner"), Value: aws.String("x")}}},
		{ResourceId: fs.FileSystemId, Tags: []types.Tag{{Key: aws.String("a"), Value: aws.String("semi;colon")}}},
		{ResourceId: aws.String("vol-0123456789abcdef0"), Tags: []types.Tag{{Key: aws.String("a"), Value: aws.String("b")}}},
	} {
		_, err := s.c.TagResource(ctx, in)
		badRequest(t, err)
	}
	_, err = s.c.TagResource(ctx, &efs.TagResourceInput{ResourceId: aws.String("fs-0123456789abcdef0"), Tags: tags[:1]})
	expectError[*types.FileSystemNotFound](t, err, 404)
	_, err = s.c.TagResource(ctx, &efs.TagResourceInput{ResourceId: aws.String("fsap-0123456789abcdef0"), Tags: tags[:1]})
	expectError[*types.AccessPointNotFound](t, err, 404)
	_, err = s.c.UntagResource(ctx, &efs.UntagResourceInput{ResourceId: aws.String("fsap-0123456789abcdef0"), TagKeys: []string{"a"}})
	expectError[*types.AccessPointNotFound](t, err, 404)
	_, err = s.c.ListTagsForResource(ctx, &efs.ListTagsForResourceInput{ResourceId: aws.String("arn:aws:elasticfilesystem:eu-west-1:123456789012:file-system/" + *fs.FileSystemId)})
	expectError[*types.FileSystemNotFound](t, err, 404)
	_, err = s.c.ListTagsForResource(ctx, &efs.ListTagsForResourceInput{ResourceId: fs.FileSystemId, NextToken: aws.String("bogus")})
	badRequest(t, err)
	keys := make([]string, 51)
	for i := range keys {
		keys[i] = fmt.Sprint("k", i)
	}
	_, err = s.c.UntagResource(ctx, &efs.UntagResourceInput{ResourceId: fs.FileSystemId, TagKeys: keys})
	badRequest(t, err)
	if d := s.waitFS(*fs.FileSystemId, types.LifeCycleStateAvailable); len(d.Tags) != 49 {
		t.Errorf("refused calls changed the tags: %d", len(d.Tags))
	}
}

func TestSDKDeprecatedTags(t *testing.T) {
	s := newServer(t)
	fs := s.createFS("old")
	if _, err := s.c.CreateTags(ctx, &efs.CreateTagsInput{FileSystemId: fs.FileSystemId, Tags: []types.Tag{
		{Key: aws.String("Name"), Value: aws.String("legacy")}, {Key: aws.String("a"), Value: aws.String("1")}, {Key: aws.String("b"), Value: aws.String("2")},
	}}); err != nil {
		t.Fatal(err)
	}
	p := efs.NewDescribeTagsPaginator(s.c, &efs.DescribeTagsInput{FileSystemId: fs.FileSystemId, MaxItems: aws.Int32(2)})
	var all []types.Tag
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, out.Tags...)
	}
	if m := tagMap(all); len(m) != 3 || m["Name"] != "legacy" {
		t.Errorf("DescribeTags %v", m)
	}
	if d := s.waitFS(*fs.FileSystemId, types.LifeCycleStateAvailable); aws.ToString(d.Name) != "legacy" {
		t.Errorf("Name %q", aws.ToString(d.Name))
	}
	if _, err := s.c.DeleteTags(ctx, &efs.DeleteTagsInput{FileSystemId: fs.FileSystemId, TagKeys: []string{"a", "Name"}}); err != nil {
		t.Fatal(err)
	}
	out, err := s.c.DescribeTags(ctx, &efs.DescribeTagsInput{FileSystemId: fs.FileSystemArn})
	if m := tagMap(out.Tags); err != nil || len(m) != 1 || m["b"] != "2" {
		t.Errorf("after DeleteTags: %v %v", m, err)
	}
	_, err = s.c.CreateTags(ctx, &efs.CreateTagsInput{FileSystemId: aws.String("fs-0123456789abcdef0"), Tags: []types.Tag{{Key: aws.String("a"), Value: aws.String("b")}}})
	expectError[*types.FileSystemNotFound](t, err, 404)
	_, err = s.c.DeleteTags(ctx, &efs.DeleteTagsInput{FileSystemId: aws.String("fs-0123456789abcdef0"), TagKeys: []string{"a"}})
	expectError[*types.FileSystemNotFound](t, err, 404)
	_, err = s.c.DescribeTags(ctx, &efs.DescribeTagsInput{FileSystemId: aws.String("fs-0123456789abcdef0")})
	expectError[*types.FileSystemNotFound](t, err, 404)
	_, err = s.c.DeleteTags(ctx, &efs.DeleteTagsInput{FileSystemId: fs.FileSystemId, TagKeys: []string{}})
	badRequest(t, err)
	_, err = s.c.CreateTags(ctx, &efs.CreateTagsInput{FileSystemId: fs.FileSystemId, Tags: []types.Tag{{Key: aws.String("AWS:x"), Value: aws.String("b")}}})
	badRequest(t, err)
}
