package efsrepl

import (
	"net/http"

	"github.com/regionfs/regionfs/internal/control/replconf"
)

// verify (regionfs): POST /2015-02-01/regionfs/verify {"FileSystemId"} →
// 200 with the outcome of one verification pass of the configuration the
// file system (source or destination) takes part in: the seq both sides
// were compared at, what was compared, what differs and what was done
// about it.
func (h *Handler) verify(w http.ResponseWriter, r *http.Request) {
	var req struct {
		FileSystemID string `json:"FileSystemId"`
	}
	if err := readFSRequest(r, &req, &req.FileSystemID); err != nil {
		h.fail(w, r, err)
		return
	}
	d, v, err := h.m.Verify(r.Context(), req.FileSystemID)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, verifyOutput(d.ID, d.SourceFileSystemID, d.DestFileSystemID, string(d.Status), d.StatusMessage, v))
}

type verifyRange struct {
	From string
	To   string
}

type verifyOut struct {
	ReplicationID           string `json:"ReplicationId"`
	SourceFileSystemID      string `json:"SourceFileSystemId"`
	DestinationFileSystemID string `json:"DestinationFileSystemId"`
	Seq                     uint64
	Time                    *epoch
	DurationSeconds         float64
	RangesCompared          int
	BlocksRead              int
	Match                   bool
	DifferingRanges         int
	Differ                  []verifyRange `json:",omitempty"`
	BadBlocks               int
	BadBlockIds             []string `json:",omitempty"`
	Repair                  string   `json:",omitempty"`
	Summary                 string
	Status                  string
	StatusMessage           string `json:",omitempty"`
}

func verifyOutput(id, src, dst, status, msg string, v replconf.VerifyResult) verifyOut {
	o := verifyOut{ReplicationID: id, SourceFileSystemID: src, DestinationFileSystemID: dst, Seq: v.Seq, Time: epochPtr(v.Time),
		DurationSeconds: v.Duration.Seconds(), RangesCompared: v.Ranges, BlocksRead: v.Blocks, Match: !v.Mismatch(),
		DifferingRanges: v.DifferCount, BadBlocks: v.BadBlockCount, BadBlockIds: v.BadBlocks, Repair: v.Repair,
		Summary: v.Summary(), Status: status, StatusMessage: msg}
	for _, r := range v.Differ {
		o.Differ = append(o.Differ, verifyRange{From: r.From, To: r.To})
	}
	return o
}
