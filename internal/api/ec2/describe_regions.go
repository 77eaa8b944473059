package ec2

import (
	"encoding/xml"
	"slices"

	"github.com/regionfs/regionfs/internal/api/awsproto"
)

type describeRegionsResponse struct {
	XMLName   xml.Name     `xml:"DescribeRegionsResponse"`
	Xmlns     string       `xml:"xmlns,attr"`
	RequestID string       `xml:"requestId"`
	Regions   []regionItem `xml:"regionInfo>item"`
}

type regionItem struct {
	RegionName     string `xml:"regionName"`
	RegionEndpoint string `xml:"regionEndpoint"`
	OptInStatus    string `xml:"optInStatus"`
}

// describeRegions lists this region and the regions it replicates with
// (its configured peers): the regions an account of this deployment can
// use. The endpoint is each region's API listener, when known.
func (h *Handler) describeRegions(p params) (any, error) {
	if err := p.checkKnown("RegionName", "Filter", "AllRegions"); err != nil {
		return nil, err
	}
	names, err := p.list("RegionName")
	if err != nil {
		return nil, err
	}
	filters, err := p.filters()
	if err != nil {
		return nil, err
	}
	all := append([]RegionInfo{{Name: h.r.Name, Endpoint: h.r.Endpoint}}, h.r.Peers...)
	for _, n := range names {
		found := false
		for _, r := range all {
			found = found || r.Name == n
		}
		if !found {
			return nil, invalidParameter("Invalid region: %s", awsproto.Clip(n))
		}
	}
	var regions []regionItem
	for _, r := range all {
		if len(names) > 0 && !slices.Contains(names, r.Name) {
			continue
		}
		regions = append(regions, regionItem{RegionName: r.Name, RegionEndpoint: r.Endpoint, OptInStatus: "opt-in-not-required"})
	}
	items, err := filtered(regions, filters, regionMatches)
	if err != nil {
		return nil, err
	}
	return describeRegionsResponse{Xmlns: Namespace, RequestID: p.reqID, Regions: items}, nil
}

func regionMatches(r regionItem, filters []filter) (bool, error) {
	return matchOwn(filters, func(f filter) (ok, known bool) {
		switch f.name {
		case "region-name":
			ok = anyMatch(f.values, r.RegionName)
		case "endpoint":
			ok = anyMatch(f.values, r.RegionEndpoint)
		case "opt-in-status":
			ok = anyMatch(f.values, r.OptInStatus)
		default:
			return false, false
		}
		return ok, true
	})
}
