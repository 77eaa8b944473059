package ec2

import (
	"encoding/xml"
	"slices"
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
			return nil, invalidParameter("Invalid region: %s", clip(n))
		}
	}
	var items []regionItem
	for _, r := range all {
		if len(names) > 0 && !slices.Contains(names, r.Name) {
			continue
		}
		it := regionItem{RegionName: r.Name, RegionEndpoint: r.Endpoint, OptInStatus: "opt-in-not-required"}
		ok := true
		for _, f := range filters {
			switch f.name {
			case "region-name":
				ok = ok && anyMatch(f.values, it.RegionName)
			case "endpoint":
				ok = ok && anyMatch(f.values, it.RegionEndpoint)
			case "opt-in-status":
				ok = ok && anyMatch(f.values, it.OptInStatus)
			default:
				return nil, invalidFilter(f.name)
			}
		}
		if ok {
			items = append(items, it)
		}
	}
	return describeRegionsResponse{Xmlns: Namespace, RequestID: p.reqID, Regions: items}, nil
}
