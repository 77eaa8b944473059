package efs

import (
	"net/http"

	"github.com/regionfs/regionfs/internal/control"
)

// createFileSystem: POST /2015-02-01/file-systems → 201 FileSystemDescription.
func createFileSystem(c *call) error {
	b, err := c.bodyReader()
	if err != nil {
		return err
	}
	var in control.CreateFileSystemInput
	var ok bool
	in.CreationToken, ok = b.str("CreationToken")
	b.required("CreationToken", ok)
	b.check("CreationToken", in.CreationToken, tokenRule)
	in.PerformanceMode, _ = b.str("PerformanceMode")
	in.Encrypted, _ = b.boolean("Encrypted")
	if in.KMSKeyID, ok = b.str("KmsKeyId"); ok {
		b.check("KmsKeyId", in.KMSKeyID, kmsKeyIDRule)
	}
	in.ThroughputMode, _ = b.str("ThroughputMode")
	if v, ok := b.number("ProvisionedThroughputInMibps"); ok {
		in.ProvisionedThroughputMibps = &v
	}
	if in.AvailabilityZoneName, ok = b.str("AvailabilityZoneName"); ok {
		b.check("AvailabilityZoneName", in.AvailabilityZoneName, zoneNameRule)
	}
	if v, ok := b.boolean("Backup"); ok {
		in.Backup = &v
	}
	in.Tags, _ = b.tags("Tags")
	if err := *b.err; err != nil {
		return err
	}
	fs, err := c.h.r.CreateFileSystem(c.req.Context(), in)
	if err != nil {
		return err
	}
	return c.reply(http.StatusCreated, fileSystemOut(fs))
}
