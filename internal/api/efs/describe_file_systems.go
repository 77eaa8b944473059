package efs

import (
	"net/http"

	"github.com/regionfs/regionfs/internal/control"
)

type describeFileSystemsOutput struct {
	Marker      string           `json:"Marker,omitempty"`
	FileSystems []fileSystemJSON `json:"FileSystems"`
	NextMarker  string           `json:"NextMarker,omitempty"`
}

// describeFileSystems: GET /2015-02-01/file-systems?MaxItems&Marker&CreationToken&FileSystemId.
func describeFileSystems(c *call) error {
	var q control.FileSystemQuery
	var err error
	if q.Max, err = c.queryInt("MaxItems"); err != nil {
		return err
	}
	if q.Marker, err = c.queryString("Marker", markerRule); err != nil {
		return err
	}
	if q.CreationToken, err = c.queryString("CreationToken", tokenRule); err != nil {
		return err
	}
	if q.FileSystemID, err = c.queryString("FileSystemId", fileSystemIDRule); err != nil {
		return err
	}
	fss, next, err := c.h.r.DescribeFileSystems(c.req.Context(), q)
	if err != nil {
		return err
	}
	out := describeFileSystemsOutput{Marker: q.Marker, FileSystems: make([]fileSystemJSON, len(fss)), NextMarker: next}
	for i, f := range fss {
		out.FileSystems[i] = fileSystemOut(f)
	}
	return c.reply(http.StatusOK, out)
}
