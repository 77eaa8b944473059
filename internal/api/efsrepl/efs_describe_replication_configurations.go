package efsrepl

import (
	"math"
	"net/http"

	"github.com/regionfs/regionfs/internal/pagetoken"
)

const defaultPageSize = 100

// tokenKind is the kind of the configurations' NextTokens (package pagetoken).
const tokenKind byte = 'r'

// describeReplicationConfigurations: GET
// /2015-02-01/file-systems/replication-configurations?FileSystemId&NextToken&MaxResults
// → 200 {Replications, NextToken}. Both regions of a configuration
// describe it, by the id or ARN of either end.
func (h *Handler) describeReplicationConfigurations(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	fsID := q.Get("FileSystemId")
	if q.Has("FileSystemId") {
		if err := checkFSID("FileSystemId", fsID); err != nil {
			h.fail(w, r, err)
			return
		}
	}
	max, ok, err := queryInt(r, "MaxResults")
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if !ok {
		max = defaultPageSize
	}
	if max < 1 {
		h.fail(w, r, badRequest("MaxResults must be at least 1"))
		return
	}
	start := 0
	if q.Has("NextToken") {
		tok := q.Get("NextToken")
		n, ok := pagetoken.DecodeIndex(tokenKind, tok, math.MaxInt)
		if !ok {
			h.fail(w, r, badRequest("NextToken %q is not a token this service issued", clip(tok)))
			return
		}
		start = n
	}
	ds, err := h.m.Describe(r.Context(), fsID)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	resp := struct {
		Replications []descriptionShape `json:"Replications"`
		NextToken    string             `json:"NextToken,omitempty"`
	}{Replications: []descriptionShape{}}
	if start > len(ds) {
		start = len(ds)
	}
	end := min(start+max, len(ds))
	for _, d := range ds[start:end] {
		resp.Replications = append(resp.Replications, describe(d))
	}
	if end < len(ds) {
		resp.NextToken = pagetoken.EncodeIndex(tokenKind, end)
	}
	writeJSON(w, http.StatusOK, resp)
}
