package efs

import (
	"net/http"
	"time"
)

// storageStatusOutput is the answer of GET
// /2015-02-01/regionfs/storage-status: the state of the region's data disk
// (regionfs's own operation, for `regionfs status`; not part of EFS).
type storageStatusOutput struct {
	Region         string
	Known          bool   // false when the region does not watch its disk
	AvailableBytes uint64 `json:",omitempty"`
	TotalBytes     uint64 `json:",omitempty"`
	MinFreeBytes   int64  `json:",omitempty"`
	ReserveBytes   int64  `json:",omitempty"`
	Reserved       bool
	// Full: writes that grow what the region stores are refused (NFS
	// NFS3ERR_NOSPC, API InsufficientThroughputCapacity); deletions work.
	Full          bool
	FullSince     *float64 `json:",omitempty"` // epoch seconds
	RefusedWrites uint64
	Error         string `json:",omitempty"`
}

func regionfsStorageStatus(c *call) error {
	out := storageStatusOutput{Region: c.h.r.Name()}
	if st, ok := c.h.r.StorageStatus(); ok {
		out.Known = true
		out.AvailableBytes, out.TotalBytes = st.AvailableBytes, st.TotalBytes
		out.MinFreeBytes, out.ReserveBytes, out.Reserved = st.MinFreeBytes, st.ReserveBytes, st.Reserved
		out.Full, out.RefusedWrites, out.Error = st.Full, st.Refused, st.Err
		if st.Full && !st.Since.IsZero() {
			s := float64(st.Since.UnixNano()) / float64(time.Second)
			out.FullSince = &s
		}
	}
	return c.reply(http.StatusOK, out)
}
