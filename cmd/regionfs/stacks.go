package main

import (
	"sort"

	cfnapi "github.com/regionfs/regionfs/internal/api/cloudformation"
	"github.com/regionfs/regionfs/internal/cfn"
	"github.com/regionfs/regionfs/internal/cfn/resources"
)

// openStacks opens the region's CloudFormation stacks (after its control
// plane, replication and monitoring: stacks act through them) and resumes operations
// a restart interrupted.
func openStacks(n *node) (*cfn.Engine, error) {
	ro := resources.Options{Region: n.control.region, Keys: n.keys,
		Network: resources.Network{Network: n.control.net, InUse: n.control.region.MountTargetsUsingGroup}}
	if n.repl != nil {
		ro.Replication = n.repl.mgr
	}
	if n.mon != nil {
		ro.Alarms, ro.Topics = n.mon.mon, n.mon.sns
	}
	zones := map[string]bool{}
	for _, s := range n.cfg.Subnets {
		zones[s.AvailabilityZone] = true
	}
	var azs []string
	for z := range zones {
		azs = append(azs, z)
	}
	sort.Strings(azs)
	e, err := cfn.Open(cfn.Options{
		Region: n.cfg.Region, AccountID: n.cfg.AccountID, KV: n.store, Types: resources.Registry(ro),
		AZs: func(region string) []string {
			if region == n.cfg.Region {
				return azs
			}
			return nil
		},
		Logger: n.log,
	})
	if err != nil {
		return nil, err
	}
	n.apiOpts.CloudFormation = cfnapi.NewHandler(e, n.log)
	return e, nil
}
