package ec2

import (
	"encoding/xml"
	"slices"

	"github.com/regionfs/regionfs/internal/api/awsproto"
	"github.com/regionfs/regionfs/internal/control/network"
)

type describeSecurityGroupRulesResponse struct {
	XMLName   xml.Name   `xml:"DescribeSecurityGroupRulesResponse"`
	Xmlns     string     `xml:"xmlns,attr"`
	RequestID string     `xml:"requestId"`
	Rules     []ruleItem `xml:"securityGroupRuleSet>item"`
	NextToken string     `xml:"nextToken,omitempty"`
}

func (h *Handler) describeSecurityGroupRules(p params) (any, error) {
	if err := h.needNetwork(); err != nil {
		return nil, err
	}
	if err := p.checkKnown("SecurityGroupRuleId", "Filter", "MaxResults", "NextToken"); err != nil {
		return nil, err
	}
	ids, err := p.list("SecurityGroupRuleId")
	if err != nil {
		return nil, err
	}
	filters, err := p.filters()
	if err != nil {
		return nil, err
	}
	var all []ruleItem
	for _, g := range h.net.Groups() {
		for _, r := range g.Rules {
			if len(ids) == 0 || slices.Contains(ids, r.ID) {
				all = append(all, h.ruleItem(g.ID, r))
			}
		}
	}
	items, err := filtered(all, filters, ruleMatches)
	if err != nil {
		return nil, err
	}
	for _, id := range ids {
		if !slices.ContainsFunc(items, func(it ruleItem) bool { return it.RuleID == id }) {
			return nil, errorf(network.ErrRuleNotFound, "The security group rule ID '%s' does not exist", awsproto.Clip(id))
		}
	}
	lo, hi, next, err := p.page(len(items))
	if err != nil {
		return nil, err
	}
	return describeSecurityGroupRulesResponse{Xmlns: Namespace, RequestID: p.reqID, Rules: items[lo:hi], NextToken: next}, nil
}

func ruleMatches(r ruleItem, filters []filter) (bool, error) {
	return matchFilters(filters, r.Tags, func(f filter) (ok, known bool) {
		switch f.name {
		case "group-id":
			ok = anyMatch(f.values, r.GroupID)
		case "security-group-rule-id":
			ok = anyMatch(f.values, r.RuleID)
		default:
			return false, false
		}
		return ok, true
	})
}
