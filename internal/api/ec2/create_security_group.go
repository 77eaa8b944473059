package ec2

import (
	"encoding/xml"

	"github.com/regionfs/regionfs/internal/api/awserr"
)

type createSecurityGroupResponse struct {
	XMLName   xml.Name `xml:"CreateSecurityGroupResponse"`
	Xmlns     string   `xml:"xmlns,attr"`
	RequestID string   `xml:"requestId"`
	Return    bool     `xml:"return"`
	GroupID   string   `xml:"groupId"`
	Arn       string   `xml:"securityGroupArn"`
	Tags      []tag    `xml:"tagSet>item"`
}

func (h *Handler) createSecurityGroup(p params) (any, error) {
	if err := h.needNetwork(); err != nil {
		return nil, err
	}
	if err := p.checkKnown("GroupName", "GroupDescription", "VpcId", "TagSpecification"); err != nil {
		return nil, err
	}
	if p.get("GroupName") == "" {
		return nil, errorf(awserr.ErrEC2MissingParameter, "The request must contain the parameter GroupName")
	}
	if p.get("GroupDescription") == "" {
		return nil, errorf(awserr.ErrEC2MissingParameter, "The request must contain the parameter GroupDescription")
	}
	tags, err := tagSpecs(p, "security-group")
	if err != nil {
		return nil, err
	}
	if p.get("DryRun") == "true" {
		return nil, errorf(awserr.ErrEC2DryRun, "Request would have succeeded, but DryRun flag is set.")
	}
	g, err := h.net.CreateGroup(p.get("GroupName"), p.get("GroupDescription"), p.get("VpcId"), tags, "")
	if err != nil {
		return nil, err
	}
	r := createSecurityGroupResponse{Xmlns: Namespace, RequestID: p.reqID, Return: true, GroupID: g.ID, Arn: h.groupArn(g.ID)}
	for _, t := range g.Tags {
		r.Tags = append(r.Tags, tag{t.Key, t.Value})
	}
	return r, nil
}

func (h *Handler) groupArn(id string) string {
	return "arn:aws:ec2:" + h.r.Name + ":" + h.r.AccountID + ":security-group/" + id
}

type returnResponse struct {
	XMLName   xml.Name
	Xmlns     string `xml:"xmlns,attr"`
	RequestID string `xml:"requestId"`
	Return    bool   `xml:"return"`
	GroupID   string `xml:"groupId,omitempty"`
}

func (h *Handler) deleteSecurityGroup(p params) (any, error) {
	if err := h.needNetwork(); err != nil {
		return nil, err
	}
	if err := p.checkKnown("GroupId", "GroupName"); err != nil {
		return nil, err
	}
	id, err := h.groupID(p)
	if err != nil {
		return nil, err
	}
	if p.get("DryRun") == "true" {
		return nil, errorf(awserr.ErrEC2DryRun, "Request would have succeeded, but DryRun flag is set.")
	}
	if err := h.net.DeleteGroup(id, h.inUse); err != nil {
		return nil, err
	}
	return returnResponse{XMLName: xml.Name{Local: "DeleteSecurityGroupResponse"}, Xmlns: Namespace, RequestID: p.reqID, Return: true, GroupID: id}, nil
}
