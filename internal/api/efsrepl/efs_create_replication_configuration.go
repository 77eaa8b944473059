package efsrepl

import (
	"net/http"

	"github.com/regionfs/regionfs/internal/control/replconf"
)

type createReplicationRequest struct {
	Destinations *[]struct {
		Region               *string `json:"Region"`
		AvailabilityZoneName *string `json:"AvailabilityZoneName"`
		KmsKeyID             *string `json:"KmsKeyId"`
		FileSystemID         *string `json:"FileSystemId"`
		RoleArn              *string `json:"RoleArn"`
	} `json:"Destinations"`
}

// createReplicationConfiguration: POST
// /2015-02-01/file-systems/{SourceFileSystemId}/replication-configuration
// → 200 ReplicationConfigurationDescription.
func (h *Handler) createReplicationConfiguration(w http.ResponseWriter, r *http.Request) {
	src := r.PathValue("SourceFileSystemId")
	if err := checkFSID("SourceFileSystemId", src); err != nil {
		h.fail(w, r, err)
		return
	}
	var req createReplicationRequest
	if err := readJSON(r, &req); err != nil {
		h.fail(w, r, err)
		return
	}
	if req.Destinations == nil {
		h.fail(w, r, badRequest("Destinations is required"))
		return
	}
	var dests []replconf.Destination
	for i, d := range *req.Destinations {
		var spec replconf.Destination
		if d.Region != nil {
			if v := *d.Region; len(v) < 1 || len(v) > 64 || !regionPattern.MatchString(v) {
				h.fail(w, r, badRequest("Destinations[%d].Region %q is not a region name", i, clip(v)))
				return
			}
			spec.Region = *d.Region
		}
		if d.AvailabilityZoneName != nil {
			if v := *d.AvailabilityZoneName; len(v) < 1 || len(v) > 64 {
				h.fail(w, r, badRequest("Destinations[%d].AvailabilityZoneName must be 1 to 64 characters", i))
				return
			}
			spec.AvailabilityZoneName = *d.AvailabilityZoneName
		}
		if d.KmsKeyID != nil {
			if v := *d.KmsKeyID; len(v) > 2048 || !kmsKeyPattern.MatchString(v) {
				h.fail(w, r, badRequest("Destinations[%d].KmsKeyId %q is not a KMS key id, alias or ARN", i, clip(v)))
				return
			}
			spec.KMSKeyID = *d.KmsKeyID
		}
		if d.FileSystemID != nil {
			if err := checkFSID(fmtErr("Destinations[%d].FileSystemId", i), *d.FileSystemID); err != nil {
				h.fail(w, r, err)
				return
			}
			spec.FileSystemID = *d.FileSystemID
		}
		if d.RoleArn != nil {
			if v := *d.RoleArn; len(v) > 2048 || !roleArnPattern.MatchString(v) {
				h.fail(w, r, badRequest("Destinations[%d].RoleArn %q is not an IAM role ARN", i, clip(v)))
				return
			}
			spec.RoleArn = *d.RoleArn
		}
		dests = append(dests, spec)
	}
	d, err := h.m.Create(r.Context(), src, dests)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, describe(d))
}
