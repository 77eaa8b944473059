package ec2

import (
	"encoding/xml"
	"slices"

	"github.com/regionfs/regionfs/internal/api/awsproto"
)

type describeAvailabilityZonesResponse struct {
	XMLName   xml.Name   `xml:"DescribeAvailabilityZonesResponse"`
	Xmlns     string     `xml:"xmlns,attr"`
	RequestID string     `xml:"requestId"`
	Zones     []zoneItem `xml:"availabilityZoneInfo>item"`
}

type zoneItem struct {
	ZoneName           string `xml:"zoneName"`
	ZoneState          string `xml:"zoneState"`
	RegionName         string `xml:"regionName"`
	ZoneID             string `xml:"zoneId"`
	ZoneType           string `xml:"zoneType"`
	OptInStatus        string `xml:"optInStatus"`
	GroupName          string `xml:"groupName"`
	NetworkBorderGroup string `xml:"networkBorderGroup"`
}

func (h *Handler) describeAvailabilityZones(p params) (any, error) {
	if err := p.checkKnown("ZoneName", "ZoneId", "Filter", "AllAvailabilityZones"); err != nil {
		return nil, err
	}
	names, err := p.list("ZoneName")
	if err != nil {
		return nil, err
	}
	ids, err := p.list("ZoneId")
	if err != nil {
		return nil, err
	}
	filters, err := p.filters()
	if err != nil {
		return nil, err
	}
	zones := h.r.Zones()
	for _, n := range names {
		if !hasZone(zones, func(z Zone) bool { return z.Name == n }) {
			return nil, invalidParameter("Invalid availability zone: [%s]", awsproto.Clip(n))
		}
	}
	for _, id := range ids {
		if !hasZone(zones, func(z Zone) bool { return z.ID == id }) {
			return nil, invalidParameter("Invalid availability zone ID: [%s]", awsproto.Clip(id))
		}
	}
	var all []zoneItem
	for _, z := range zones {
		if len(names) > 0 && !slices.Contains(names, z.Name) || len(ids) > 0 && !slices.Contains(ids, z.ID) {
			continue
		}
		all = append(all, zoneItem{ZoneName: z.Name, ZoneState: "available", RegionName: h.r.Name, ZoneID: z.ID,
			ZoneType: "availability-zone", OptInStatus: "opt-in-not-required", GroupName: h.r.Name, NetworkBorderGroup: h.r.Name})
	}
	items, err := filtered(all, filters, zoneMatches)
	if err != nil {
		return nil, err
	}
	return describeAvailabilityZonesResponse{Xmlns: Namespace, RequestID: p.reqID, Zones: items}, nil
}

func zoneMatches(z zoneItem, filters []filter) (bool, error) {
	return matchOwn(filters, func(f filter) (ok, known bool) {
		switch f.name {
		case "zone-name":
			ok = anyMatch(f.values, z.ZoneName)
		case "zone-id":
			ok = anyMatch(f.values, z.ZoneID)
		case "region-name":
			ok = anyMatch(f.values, z.RegionName)
		case "state":
			ok = anyMatch(f.values, z.ZoneState)
		case "zone-type":
			ok = anyMatch(f.values, z.ZoneType)
		case "group-name":
			ok = anyMatch(f.values, z.GroupName)
		case "opt-in-status":
			ok = anyMatch(f.values, z.OptInStatus)
		case "network-border-group":
			ok = anyMatch(f.values, z.NetworkBorderGroup)
		default:
			return false, false
		}
		return ok, true
	})
}

func hasZone(zs []Zone, pred func(Zone) bool) bool {
	for _, z := range zs {
		if pred(z) {
			return true
		}
	}
	return false
}
