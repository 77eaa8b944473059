package ec2

import (
	"encoding/xml"
	"slices"
	"strings"

	"github.com/regionfs/regionfs/internal/api/awserr"
	"github.com/regionfs/regionfs/internal/api/awsproto"
	"github.com/regionfs/regionfs/internal/control/network"
)

func (h *Handler) createTags(p params) (any, error) { return h.tags(p, false) }
func (h *Handler) deleteTags(p params) (any, error) { return h.tags(p, true) }

// tags serves CreateTags and DeleteTags on security groups and their rules.
func (h *Handler) tags(p params, remove bool) (any, error) {
	if err := h.needNetwork(); err != nil {
		return nil, err
	}
	if err := p.checkKnown("ResourceId", "Tag"); err != nil {
		return nil, err
	}
	ids, err := p.list("ResourceId")
	if err != nil {
		return nil, err
	}
	if len(ids) == 0 {
		return nil, errorf(awserr.ErrEC2MissingParameter, "The request must contain the parameter resourceIdSet")
	}
	for _, id := range ids {
		if !strings.HasPrefix(id, "sg-") && !strings.HasPrefix(id, "sgr-") {
			return nil, invalidParameter("Resource %s cannot be tagged here: only security groups and security group rules are taggable", awsproto.Clip(id))
		}
	}
	ts, err := p.nested("Tag")
	if err != nil {
		return nil, err
	}
	var tags []network.Tag
	for _, t := range ts {
		tags = append(tags, network.Tag{Key: t["Key"], Value: t["Value"]})
	}
	if !remove && len(tags) == 0 {
		return nil, errorf(awserr.ErrEC2MissingParameter, "The request must contain the parameter tagSet")
	}
	if p.get("DryRun") == "true" {
		return nil, errorf(awserr.ErrEC2DryRun, "Request would have succeeded, but DryRun flag is set.")
	}
	if remove {
		if len(tags) == 0 {
			// DeleteTags without Tag removes every tag: list them first.
			for _, g := range h.net.Groups() {
				if slices.Contains(ids, g.ID) {
					tags = append(tags, g.Tags...)
				}
				for _, r := range g.Rules {
					if slices.Contains(ids, r.ID) {
						tags = append(tags, r.Tags...)
					}
				}
			}
		}
		err = h.net.Tag(ids, nil, tags)
	} else {
		err = h.net.Tag(ids, tags, nil)
	}
	if err != nil {
		return nil, err
	}
	name := "CreateTagsResponse"
	if remove {
		name = "DeleteTagsResponse"
	}
	return returnResponse{XMLName: xml.Name{Local: name}, Xmlns: Namespace, RequestID: p.reqID, Return: true}, nil
}
