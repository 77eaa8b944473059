package efs_test

import (
	"errors"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/efs"
	"github.com/aws/aws-sdk-go-v2/service/efs/types"
)

func TestSDKInternalServerError(t *testing.T) {
	s := newServer(t)
	fs := s.createFS("ise")
	s.kv.SetCommitError(func(bool) error { return errors.New("injected commit failure") })
	_, err := s.c.TagResource(ctx, &efs.TagResourceInput{ResourceId: fs.FileSystemId, Tags: []types.Tag{{Key: aws.String("a"), Value: aws.String("b")}}})
	expectError[*types.InternalServerError](t, err, 500)
	_, err = s.c.CreateFileSystem(ctx, &efs.CreateFileSystemInput{CreationToken: aws.String("ise-2")})
	expectError[*types.InternalServerError](t, err, 500)
	s.kv.SetCommitError(nil)
	d := s.waitFS(*fs.FileSystemId, types.LifeCycleStateAvailable)
	if len(d.Tags) != 0 {
		t.Errorf("a failed commit changed the tags: %v", d.Tags)
	}
	out, _ := s.c.DescribeFileSystems(ctx, &efs.DescribeFileSystemsInput{})
	if len(out.FileSystems) != 1 {
		t.Errorf("a failed create left a file system: %d", len(out.FileSystems))
	}
}

func TestSDKReplicationOperationsAnswered(t *testing.T) {
	s := newServer(t)
	fs := s.createFS("r")
	_, err := s.c.CreateReplicationConfiguration(ctx, &efs.CreateReplicationConfigurationInput{SourceFileSystemId: fs.FileSystemId,
		Destinations: []types.DestinationToCreate{{Region: aws.String("us-west-2")}}})
	checkAPIError(t, err, "UnknownOperationException", 404)
	_, err = s.c.DescribeReplicationConfigurations(ctx, &efs.DescribeReplicationConfigurationsInput{})
	checkAPIError(t, err, "UnknownOperationException", 404)
	_, err = s.c.DeleteReplicationConfiguration(ctx, &efs.DeleteReplicationConfigurationInput{SourceFileSystemId: fs.FileSystemId})
	checkAPIError(t, err, "UnknownOperationException", 404)
}

func TestSDKSignatureVerified(t *testing.T) {
	s := newServer(t)
	_, err := s.client(accessKey, "wrong secret").DescribeFileSystems(ctx, &efs.DescribeFileSystemsInput{})
	checkAPIError(t, err, "InvalidSignatureException", 403)
	_, err = s.client("AKIAUNKNOWN000000000", secretKey).DescribeFileSystems(ctx, &efs.DescribeFileSystemsInput{})
	checkAPIError(t, err, "UnrecognizedClientException", 403)
	_, err = s.c.CreateFileSystem(ctx, &efs.CreateFileSystemInput{CreationToken: aws.String("ok")})
	if err != nil {
		t.Fatal(err)
	}
}
